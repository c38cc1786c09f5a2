/*
 * JSON for the control protocol (control.c): a writer the control thread
 * builds responses with, and a strict reader khyvectl parses them with.
 *
 * Both are deliberately small and bounded. The writer caps its output and
 * nesting and turns any overflow into a "failed" flag, never a truncated
 * document. The reader accepts exactly RFC 8259 (no comments, no trailing
 * commas, no leading zeros, no raw control characters in strings, no
 * trailing garbage), limits nesting to JSON_MAX_DEPTH and refuses strings
 * that contain NUL (\u0000), so every string it returns is a C string.
 * Neither allocates in proportion to anything but the input it was given.
 */
#include "control.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---- */

void jw_init(struct json_writer *w, size_t limit)
{
	memset(w, 0, sizeof(*w));
	w->limit = limit;
	w->first[0] = true;
}

void jw_free(struct json_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

static void put(struct json_writer *w, const char *s, size_t n)
{
	if (w->failed)
		return;
	if (w->len + n + 1 > w->limit) {
		w->failed = true;
		return;
	}
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n + 1)
			cap *= 2;
		if (cap > w->limit)
			cap = w->limit;
		char *nb = realloc(w->buf, cap);
		if (!nb) {
			w->failed = true;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void puts_(struct json_writer *w, const char *s) { put(w, s, strlen(s)); }

static void put_string(struct json_writer *w, const char *s)
{
	put(w, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		switch (*p) {
		case '"': puts_(w, "\\\""); break;
		case '\\': puts_(w, "\\\\"); break;
		case '\n': puts_(w, "\\n"); break;
		case '\r': puts_(w, "\\r"); break;
		case '\t': puts_(w, "\\t"); break;
		default:
			/* Control characters and anything non-ASCII: \u escapes, so
			 * the output is plain ASCII whatever bytes a message holds. */
			if (*p < 0x20 || *p >= 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				puts_(w, esc);
			} else {
				put(w, (const char *)p, 1);
			}
		}
	}
	put(w, "\"", 1);
}

static void member(struct json_writer *w, const char *key)
{
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = false;
	if (key) {
		put_string(w, key);
		put(w, ":", 1);
	}
}

static void open_(struct json_writer *w, const char *key, const char *brace)
{
	member(w, key);
	if (w->depth >= JSON_MAX_DEPTH) {
		w->failed = true;
		return;
	}
	puts_(w, brace);
	w->first[++w->depth] = true;
}

static void close_(struct json_writer *w, const char *brace)
{
	if (w->depth == 0) {
		w->failed = true;
		return;
	}
	w->depth--;
	puts_(w, brace);
}

void jw_begin_object(struct json_writer *w, const char *key) { open_(w, key, "{"); }
void jw_end_object(struct json_writer *w) { close_(w, "}"); }
void jw_begin_array(struct json_writer *w, const char *key) { open_(w, key, "["); }
void jw_end_array(struct json_writer *w) { close_(w, "]"); }

void jw_string(struct json_writer *w, const char *key, const char *val)
{
	member(w, key);
	put_string(w, val ? val : "");
}

void jw_uint(struct json_writer *w, const char *key, uint64_t val)
{
	char b[24];
	member(w, key);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)val);
	puts_(w, b);
}

void jw_bool(struct json_writer *w, const char *key, bool val)
{
	member(w, key);
	puts_(w, val ? "true" : "false");
}

void jw_hex(struct json_writer *w, const char *key, uint64_t val, int digits)
{
	char b[32];
	member(w, key);
	snprintf(b, sizeof(b), "\"0x%0*llx\"", digits, (unsigned long long)val);
	puts_(w, b);
}

/* ---- reader ---- */

struct reader {
	const char *p, *end;
	char *err;
	size_t errlen;
	const char *start;
	bool failed;
};

static bool rfail(struct reader *r, const char *fmt, ...)
{
	if (r->failed)
		return false;
	r->failed = true;
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(r->err, r->errlen, "%s at byte %zu", msg, (size_t)(r->p - r->start));
	return false;
}

static void skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static void free_contents(struct json_value *v)
{
	free(v->text);
	for (size_t i = 0; i < v->n; i++) {
		free_contents(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	memset(v, 0, sizeof(*v));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static bool read_hex4(struct reader *r, unsigned *out)
{
	if (r->end - r->p < 4)
		return rfail(r, "short \\u escape");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(r->p[i]);
		if (h < 0)
			return rfail(r, "bad \\u escape");
		v = v << 4 | (unsigned)h;
	}
	r->p += 4;
	*out = v;
	return true;
}

/* The string starting at the opening quote; a malloc'd C string in *out. */
static bool read_string(struct reader *r, char **out)
{
	r->p++;
	/* The decoded string is never longer than its encoding. */
	const char *q = r->p;
	while (q < r->end && *q != '"') {
		if (*q == '\\' && q + 1 < r->end)
			q++;
		q++;
	}
	char *s = malloc((size_t)(q - r->p) + 1), *o = s;
	if (!s)
		return rfail(r, "out of memory");
	while (true) {
		if (r->p >= r->end) {
			free(s);
			return rfail(r, "unterminated string");
		}
		unsigned char c = (unsigned char)*r->p;
		if (c == '"') {
			r->p++;
			break;
		}
		if (c < 0x20) {
			free(s);
			return rfail(r, "raw control character in a string");
		}
		if (c != '\\') {
			*o++ = (char)c;
			r->p++;
			continue;
		}
		r->p++;
		if (r->p >= r->end) {
			free(s);
			return rfail(r, "unterminated escape");
		}
		char e = *r->p++;
		unsigned cp;
		switch (e) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (!read_hex4(r, &cp)) {
				free(s);
				return false;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') {
					free(s);
					return rfail(r, "lone surrogate");
				}
				r->p += 2;
				if (!read_hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					free(s);
					return rfail(r, "bad surrogate pair");
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				free(s);
				return rfail(r, "lone surrogate");
			}
			if (cp == 0) {
				free(s);
				return rfail(r, "NUL in a string");
			}
			/* UTF-8: at most 4 bytes, from at least 6 of input. */
			if (cp < 0x80) {
				*o++ = (char)cp;
			} else if (cp < 0x800) {
				*o++ = (char)(0xc0 | cp >> 6);
				*o++ = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*o++ = (char)(0xe0 | cp >> 12);
				*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*o++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*o++ = (char)(0xf0 | cp >> 18);
				*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
				*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*o++ = (char)(0x80 | (cp & 0x3f));
			}
			break;
		default:
			free(s);
			return rfail(r, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
		}
	}
	*o = '\0';
	*out = s;
	return true;
}

static bool digits(struct reader *r)
{
	const char *s = r->p;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
		r->p++;
	return r->p > s;
}

static bool read_number(struct reader *r, struct json_value *v)
{
	const char *s = r->p;
	if (*r->p == '-')
		r->p++;
	if (r->p < r->end && *r->p == '0')
		r->p++;
	else if (!digits(r))
		return rfail(r, "bad number");
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!digits(r))
			return rfail(r, "bad number");
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!digits(r))
			return rfail(r, "bad number");
	}
	size_t n = (size_t)(r->p - s);
	v->type = JSON_NUMBER;
	v->text = malloc(n + 1);
	if (!v->text)
		return rfail(r, "out of memory");
	memcpy(v->text, s, n);
	v->text[n] = '\0';
	return true;
}

static bool read_value(struct reader *r, struct json_value *v, int depth);

static bool grow(struct reader *r, struct json_value *v, size_t *cap, bool keys)
{
	if (v->n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 8;
	struct json_value *ni = realloc(v->items, nc * sizeof(*ni));
	if (!ni)
		return rfail(r, "out of memory");
	v->items = ni;
	if (keys) {
		char **nk = realloc(v->keys, nc * sizeof(*nk));
		if (!nk)
			return rfail(r, "out of memory");
		v->keys = nk;
	}
	*cap = nc;
	return true;
}

static bool read_container(struct reader *r, struct json_value *v, int depth, bool object)
{
	if (depth >= JSON_MAX_DEPTH)
		return rfail(r, "nested deeper than %d", JSON_MAX_DEPTH);
	char close = object ? '}' : ']';
	v->type = object ? JSON_OBJECT : JSON_ARRAY;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return true;
	}
	size_t cap = 0;
	while (true) {
		if (!grow(r, v, &cap, object))
			return false;
		struct json_value *item = &v->items[v->n];
		memset(item, 0, sizeof(*item));
		if (object) {
			skip_ws(r);
			if (r->p >= r->end || *r->p != '"')
				return rfail(r, "expected a member name");
			char *key;
			if (!read_string(r, &key))
				return false;
			v->keys[v->n] = key;
			v->n++;   /* counted now, so its key is freed on failure */
			skip_ws(r);
			if (r->p >= r->end || *r->p != ':')
				return rfail(r, "expected ':'");
			r->p++;
		} else {
			v->n++;
		}
		if (!read_value(r, item, depth + 1))
			return false;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == close) {
			r->p++;
			return true;
		}
		return rfail(r, "expected ',' or '%c'", close);
	}
}

static bool literal(struct reader *r, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return rfail(r, "unexpected character");
	r->p += n;
	return true;
}

static bool read_value(struct reader *r, struct json_value *v, int depth)
{
	skip_ws(r);
	if (r->p >= r->end)
		return rfail(r, "unexpected end");
	switch (*r->p) {
	case '{': return read_container(r, v, depth, true);
	case '[': return read_container(r, v, depth, false);
	case '"':
		v->type = JSON_STRING;
		return read_string(r, &v->text);
	case 't':
		v->type = JSON_BOOL;
		v->boolean = true;
		return literal(r, "true");
	case 'f':
		v->type = JSON_BOOL;
		return literal(r, "false");
	case 'n':
		v->type = JSON_NULL;
		return literal(r, "null");
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return read_number(r, v);
		return rfail(r, "unexpected character");
	}
}

struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct reader r = { text, text + len, err, errlen, text, false };
	struct json_value *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (read_value(&r, v, 0)) {
		skip_ws(&r);
		if (r.p != r.end)
			rfail(&r, "trailing characters");
	}
	if (r.failed) {
		json_free(v);
		return NULL;
	}
	return v;
}

void json_free(struct json_value *v)
{
	if (!v)
		return;
	free_contents(v);
	free(v);
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return &obj->items[i];
	return NULL;
}

bool json_u64(const struct json_value *v, uint64_t *out)
{
	if (!v)
		return false;
	const char *s = v->text;
	int base = 10;
	if (v->type == JSON_STRING && s[0] == '0' && s[1] == 'x' && s[2]) {
		s += 2;
		base = 16;
	} else if (v->type != JSON_NUMBER || s[0] == '-') {
		return false;
	}
	uint64_t x = 0;
	for (; *s; s++) {
		int d = hexval(*s);
		if (d < 0 || d >= base)
			return false;
		if (x > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		x = x * (uint64_t)base + (uint64_t)d;
	}
	*out = x;
	return true;
}

const char *json_str(const struct json_value *v)
{
	return v && v->type == JSON_STRING ? v->text : NULL;
}
