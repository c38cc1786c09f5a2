#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

static struct config_entry *find(const struct config *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->entries[i].key, key) == 0)
			return &c->entries[i];
	return NULL;
}

int config_set(struct config *c, const char *key, const char *value)
{
	struct config_entry *e = find(c, key);
	char *v = strdup(value);
	if (!v)
		return -1;
	if (e) {
		free(e->value);
		e->value = v;
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct config_entry *ne = realloc(c->entries, cap * sizeof(*ne));
		if (!ne) {
			free(v);
			return -1;
		}
		c->entries = ne;
		c->cap = cap;
	}
	char *k = strdup(key);
	if (!k) {
		free(v);
		return -1;
	}
	c->entries[c->n++] = (struct config_entry){ k, v };
	return 0;
}

const char *config_get(const struct config *c, const char *key)
{
	struct config_entry *e = find(c, key);
	return e ? e->value : NULL;
}

const char *config_get_default(const struct config *c, const char *key, const char *dflt)
{
	const char *v = config_get(c, key);
	return v ? v : dflt;
}

static int valid_key(const char *k, size_t len)
{
	if (len == 0 || k[0] == '.' || k[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = k[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
		if (ch == '.' && k[i + 1] == '.')
			return 0;
	}
	return 1;
}

int config_set_pair(struct config *c, const char *pair, char *err, size_t errlen)
{
	const char *eq = strchr(pair, '=');
	if (!eq) {
		snprintf(err, errlen, "config: '%s' is not key=value", pair);
		return -1;
	}
	size_t klen = (size_t)(eq - pair);
	if (!valid_key(pair, klen)) {
		snprintf(err, errlen, "config: bad key '%.*s' (letters, digits, '.', '_', '-')",
			 (int)klen, pair);
		return -1;
	}
	char *key = strndup(pair, klen);
	int r = key ? config_set(c, key, eq + 1) : -1;
	free(key);
	if (r)
		snprintf(err, errlen, "config: out of memory");
	return r;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	int r = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		char sub[256];
		if (config_set_pair(c, p, sub, sizeof(sub))) {
			snprintf(err, errlen, "config file %s line %u: %s", path, lineno, sub);
			r = -1;
			break;
		}
	}
	free(line);
	fclose(f);
	return r;
}

int config_get_bool(const struct config *c, const char *key, bool dflt, bool *out,
		    char *err, size_t errlen)
{
	const char *v = config_get(c, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	snprintf(err, errlen, "config: %s=%s is not a boolean (true/false)", key, v);
	return -1;
}
