/*
 * AML byte-code builder (see aml.h for the model). Encodings follow the ACPI
 * 6.5 specification, chapter 20 ("ACPI Machine Language Specification") and
 * section 6.4 (resource descriptors); the expected bytes in
 * tests/unit/test_aml.c were produced by compiling the equivalent ASL with
 * iasl, so the builder and the reference compiler agree byte for byte.
 */
#include "aml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes (ACPI 6.5, 20.3). */
enum {
	AML_ZERO_OP = 0x00,
	AML_ONE_OP = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0a,
	AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c,
	AML_STRING_PREFIX = 0x0d,
	AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_VAR_PACKAGE_OP = 0x13,
	AML_METHOD_OP = 0x14,
	AML_DUAL_NAME_PREFIX = 0x2e,
	AML_MULTI_NAME_PREFIX = 0x2f,
	AML_EXT_OP_PREFIX = 0x5b,
	AML_ROOT_CHAR = 0x5c,
	AML_PARENT_PREFIX_CHAR = 0x5e,
	AML_LOCAL0_OP = 0x60,
	AML_ARG0_OP = 0x68,
	AML_STORE_OP = 0x70,
	AML_INCREMENT_OP = 0x75,
	AML_NOTIFY_OP = 0x86,
	AML_LEQUAL_OP = 0x93,
	AML_LLESS_OP = 0x95,
	AML_IF_OP = 0xa0,
	AML_WHILE_OP = 0xa2,
	AML_RETURN_OP = 0xa4,
	AML_ONES_OP = 0xff,
	/* After AML_EXT_OP_PREFIX: */
	AML_EXT_MUTEX_OP = 0x01,
	AML_EXT_ACQUIRE_OP = 0x23,
	AML_EXT_RELEASE_OP = 0x27,
	AML_EXT_REGION_OP = 0x80,
	AML_EXT_FIELD_OP = 0x81,
	AML_EXT_DEVICE_OP = 0x82,
};

/* Resource descriptor tags (ACPI 6.5, 6.4.2 small and 6.4.3 large items). */
enum {
	RES_IRQ_NOFLAGS = 0x22,       /* small item 0x04, 2 bytes */
	RES_IO = 0x47,                /* small item 0x08, 7 bytes */
	RES_END_TAG = 0x79,           /* small item 0x0f, 1 byte */
	RES_DWORD_ADDRESS = 0x87,
	RES_WORD_ADDRESS = 0x88,
	RES_EXT_INTERRUPT = 0x89,
	RES_QWORD_ADDRESS = 0x8a,
};

/* Address-space descriptor fields. */
enum {
	RES_TYPE_MEMORY = 0,
	RES_TYPE_IO = 1,
	RES_TYPE_BUS_NUMBER = 2,
	/* General flags: producer (bit 0 clear), positive decode (bit 1 clear),
	 * minimum fixed (bit 2), maximum fixed (bit 3). */
	RES_WINDOW_FLAGS = 0x0c,
	RES_IO_ENTIRE_RANGE = 0x03,   /* ISA and non-ISA ranges */
	RES_MEM_READ_WRITE = 0x01,
	RES_MEM_CACHEABLE = 0x02,     /* MEM field = 1 (bits 2:1) */
};

/* What aml_end() closes. */
enum {
	OPEN_SCOPE = 1,
	OPEN_DEVICE,
	OPEN_METHOD,
	OPEN_PACKAGE,
	OPEN_BUFFER,
	OPEN_RESOURCE_TEMPLATE,
	OPEN_IF,
	OPEN_WHILE,
	OPEN_FIELD,
};

static void set_error(struct aml *a, const char *fmt, ...)
{
	if (a->error[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->error, sizeof(a->error), fmt, ap);
	va_end(ap);
	if (!a->error[0])
		snprintf(a->error, sizeof(a->error), "aml: error");
}

static bool failed(const struct aml *a) { return a->error[0] != '\0'; }

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_release(struct aml *a)
{
	free(a->code);
	memset(a, 0, sizeof(*a));
}

int aml_check(const struct aml *a, char *err, size_t errlen)
{
	if (failed(a)) {
		snprintf(err, errlen, "%s", a->error);
		return -1;
	}
	if (a->depth) {
		snprintf(err, errlen, "aml: %u construct(s) left open (missing aml_end)",
			 a->depth);
		return -1;
	}
	return 0;
}

static bool reserve(struct aml *a, size_t more)
{
	if (failed(a))
		return false;
	if (more <= a->cap - a->len)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap - a->len < more) {
		if (cap > SIZE_MAX / 2) {
			set_error(a, "aml: out of memory");
			return false;
		}
		cap *= 2;
	}
	uint8_t *p = realloc(a->code, cap);
	if (!p) {
		set_error(a, "aml: out of memory (%zu bytes)", cap);
		return false;
	}
	a->code = p;
	a->cap = cap;
	return true;
}

void aml_raw(struct aml *a, const void *bytes, size_t n)
{
	if (!reserve(a, n))
		return;
	memcpy(a->code + a->len, bytes, n);
	a->len += n;
}

static void emit(struct aml *a, uint8_t byte) { aml_raw(a, &byte, 1); }

static void emit_le(struct aml *a, uint64_t v, unsigned width)
{
	uint8_t b[8];
	for (unsigned i = 0; i < width; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_raw(a, b, width);
}

/* Insert bytes at offset at, moving what follows (a closed construct's body). */
static void insert(struct aml *a, size_t at, const uint8_t *bytes, size_t n)
{
	if (!reserve(a, n))
		return;
	memmove(a->code + at + n, a->code + at, a->len - at);
	memcpy(a->code + at, bytes, n);
	a->len += n;
}

/* --- PkgLength --------------------------------------------------------- */

unsigned aml_pkglength_encode(uint8_t out[4], size_t content_len)
{
	/*
	 * The value counts the PkgLength's own bytes, so pick the smallest
	 * size whose range holds content + size: 1 byte holds 6 bits (0-63),
	 * 2 bytes 12 bits, 3 bytes 20 bits, 4 bytes 28 bits.
	 */
	static const uint32_t limit[5] = { 0, 0x3f, 0xfff, 0xfffff, AML_PKGLENGTH_MAX };
	for (unsigned n = 1; n <= 4; n++) {
		if (content_len > limit[n] - n)
			continue;
		uint32_t v = (uint32_t)content_len + n;
		if (n == 1) {
			out[0] = (uint8_t)v;
			return 1;
		}
		/* Lead byte: bits 7-6 = following byte count, bits 3-0 = low nibble. */
		out[0] = (uint8_t)(((n - 1) << 6) | (v & 0x0f));
		for (unsigned i = 1; i < n; i++)
			out[i] = (uint8_t)(v >> (4 + 8 * (i - 1)));
		return n;
	}
	return 0;
}

int aml_pkglength_decode(const uint8_t *p, size_t avail, uint32_t *value,
			 unsigned *nbytes)
{
	if (avail < 1)
		return -1;
	unsigned n = (p[0] >> 6) + 1;
	if (avail < n)
		return -1;
	if (n == 1) {
		*value = p[0] & 0x3f;
	} else {
		if (p[0] & 0x30)   /* bits 5-4 are reserved in multi-byte forms */
			return -1;
		uint32_t v = p[0] & 0x0f;
		for (unsigned i = 1; i < n; i++)
			v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
		*value = v;
	}
	if (*value < n)
		return -1;
	*nbytes = n;
	return 0;
}

/* --- Names ------------------------------------------------------------- */

static bool name_lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(char c) { return name_lead_char(c) || (c >= '0' && c <= '9'); }

void aml_name_string(struct aml *a, const char *path)
{
	if (failed(a))
		return;
	const char *p = path;
	uint8_t prefix[64];
	size_t np = 0;
	if (*p == '\\') {
		prefix[np++] = AML_ROOT_CHAR;
		p++;
	} else {
		while (*p == '^' && np < sizeof(prefix))
			prefix[np++] = AML_PARENT_PREFIX_CHAR, p++;
	}

	/* Parse the dot-separated segments into padded 4-byte NameSegs. */
	uint8_t segs[255][4];
	unsigned nsegs = 0;
	while (*p) {
		size_t len = strcspn(p, ".");
		if (len == 0 || len > 4 || nsegs == 255) {
			set_error(a, "aml: bad name '%s'", path);
			return;
		}
		if (!name_lead_char(p[0])) {
			set_error(a, "aml: bad name '%s' (segment must start with A-Z or _)", path);
			return;
		}
		for (size_t i = 0; i < 4; i++) {
			char c = i < len ? p[i] : '_';
			if (!name_char(c)) {
				set_error(a, "aml: bad name '%s' (only A-Z, 0-9 and _)", path);
				return;
			}
			segs[nsegs][i] = (uint8_t)c;
		}
		nsegs++;
		p += len;
		if (*p == '.') {
			p++;
			if (!*p) {
				set_error(a, "aml: bad name '%s' (trailing '.')", path);
				return;
			}
		}
	}
	if (np == sizeof(prefix)) {
		set_error(a, "aml: bad name '%s' (too many '^')", path);
		return;
	}
	if (np == 0 && nsegs == 0) {
		set_error(a, "aml: bad name '' (empty)");
		return;
	}

	aml_raw(a, prefix, np);
	if (nsegs == 0) {
		emit(a, AML_ZERO_OP);  /* NullName: "\" on its own */
	} else if (nsegs == 2) {
		emit(a, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		emit(a, AML_MULTI_NAME_PREFIX);
		emit(a, (uint8_t)nsegs);
	}
	aml_raw(a, segs, 4 * (size_t)nsegs);
}

void aml_name(struct aml *a, const char *path)
{
	emit(a, AML_NAME_OP);
	aml_name_string(a, path);
}

/* --- Data objects ------------------------------------------------------ */

/* Integer term into out (up to 9 bytes); returns its size. */
static unsigned encode_integer(uint8_t out[9], uint64_t v)
{
	unsigned width;
	if (v == 0) {
		out[0] = AML_ZERO_OP;
		return 1;
	}
	if (v == 1) {
		out[0] = AML_ONE_OP;
		return 1;
	}
	if (v == UINT64_MAX) {   /* Ones is all 64 bits in a revision-2 table */
		out[0] = AML_ONES_OP;
		return 1;
	}
	if (v <= 0xff)
		out[0] = AML_BYTE_PREFIX, width = 1;
	else if (v <= 0xffff)
		out[0] = AML_WORD_PREFIX, width = 2;
	else if (v <= 0xffffffff)
		out[0] = AML_DWORD_PREFIX, width = 4;
	else
		out[0] = AML_QWORD_PREFIX, width = 8;
	for (unsigned i = 0; i < width; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + width;
}

void aml_integer(struct aml *a, uint64_t value)
{
	uint8_t b[9];
	aml_raw(a, b, encode_integer(b, value));
}

void aml_dword_const(struct aml *a, uint32_t value)
{
	emit(a, AML_DWORD_PREFIX);
	emit_le(a, value, 4);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int aml_eisaid_value(const char *id, uint32_t *out)
{
	if (!id || strlen(id) != 7)
		return -1;
	/* Vendor: three letters, 5 bits each ('A' = 1), in a big-endian word. */
	uint32_t vendor = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -1;
		vendor = (vendor << 5) | (uint32_t)(id[i] - 'A' + 1);
	}
	uint32_t product = 0;
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);
		if (d < 0)
			return -1;
		product = (product << 4) | (uint32_t)d;
	}
	/* The ID is stored as big-endian bytes: vendor word, then product. */
	uint32_t be = (vendor << 16) | product;
	*out = __builtin_bswap32(be);
	return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v;
	if (aml_eisaid_value(id, &v)) {
		set_error(a, "aml: bad EISA ID '%s' (want e.g. PNP0A03)", id ? id : "(null)");
		return;
	}
	aml_dword_const(a, v);
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7f) {
			set_error(a, "aml: string '%s' is not ASCII", s);
			return;
		}
	}
	emit(a, AML_STRING_PREFIX);
	aml_raw(a, s, strlen(s) + 1);
}

void aml_buffer(struct aml *a, const void *bytes, size_t n)
{
	aml_buffer_begin(a);
	aml_raw(a, bytes, n);
	aml_end(a);
}

void aml_return(struct aml *a) { emit(a, AML_RETURN_OP); }

void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6)
		set_error(a, "aml: Arg%u does not exist (Arg0-Arg6)", n);
	else
		emit(a, (uint8_t)(AML_ARG0_OP + n));
}

void aml_local(struct aml *a, unsigned n)
{
	if (n > 7)
		set_error(a, "aml: Local%u does not exist (Local0-Local7)", n);
	else
		emit(a, (uint8_t)(AML_LOCAL0_OP + n));
}

/* --- Operators --------------------------------------------------------- */

void aml_store(struct aml *a) { emit(a, AML_STORE_OP); }
void aml_lequal(struct aml *a) { emit(a, AML_LEQUAL_OP); }
void aml_lless(struct aml *a) { emit(a, AML_LLESS_OP); }
void aml_increment(struct aml *a) { emit(a, AML_INCREMENT_OP); }
void aml_notify(struct aml *a) { emit(a, AML_NOTIFY_OP); }

void aml_call(struct aml *a, const char *method) { aml_name_string(a, method); }

void aml_mutex(struct aml *a, const char *name, unsigned sync_level)
{
	if (sync_level > 15) {
		set_error(a, "aml: mutex %s with SyncLevel %u (0-15)", name, sync_level);
		return;
	}
	emit(a, AML_EXT_OP_PREFIX);
	emit(a, AML_EXT_MUTEX_OP);
	aml_name_string(a, name);
	emit(a, (uint8_t)sync_level);
}

void aml_acquire(struct aml *a, const char *mutex, uint16_t timeout_ms)
{
	emit(a, AML_EXT_OP_PREFIX);
	emit(a, AML_EXT_ACQUIRE_OP);
	aml_name_string(a, mutex);
	emit_le(a, timeout_ms, 2);
}

void aml_release_mutex(struct aml *a, const char *mutex)
{
	emit(a, AML_EXT_OP_PREFIX);
	emit(a, AML_EXT_RELEASE_OP);
	aml_name_string(a, mutex);
}

void aml_operation_region(struct aml *a, const char *name, enum aml_region_space space,
			  uint64_t offset, uint64_t len)
{
	emit(a, AML_EXT_OP_PREFIX);
	emit(a, AML_EXT_REGION_OP);
	aml_name_string(a, name);
	emit(a, (uint8_t)space);
	aml_integer(a, offset);
	aml_integer(a, len);
}

/* --- Constructs with a PkgLength --------------------------------------- */

/* Remember where the construct's PkgLength goes (the current end). */
static void open_construct(struct aml *a, uint8_t kind)
{
	if (failed(a))
		return;
	if (a->depth == AML_MAX_NESTING) {
		set_error(a, "aml: constructs nested deeper than %d", AML_MAX_NESTING);
		return;
	}
	a->open[a->depth].mark = a->len;
	a->open[a->depth].kind = kind;
	a->depth++;
}

void aml_scope_begin(struct aml *a, const char *path)
{
	emit(a, AML_SCOPE_OP);
	open_construct(a, OPEN_SCOPE);
	aml_name_string(a, path);
}

void aml_device_begin(struct aml *a, const char *name)
{
	emit(a, AML_EXT_OP_PREFIX);
	emit(a, AML_EXT_DEVICE_OP);
	open_construct(a, OPEN_DEVICE);
	aml_name_string(a, name);
}

void aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	if (nargs > 7) {
		set_error(a, "aml: method %s with %u arguments (at most 7)", name, nargs);
		return;
	}
	emit(a, AML_METHOD_OP);
	open_construct(a, OPEN_METHOD);
	aml_name_string(a, name);
	/* MethodFlags: ArgCount in bits 2-0, SerializeFlag bit 3, SyncLevel 0. */
	emit(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_package_begin(struct aml *a, uint32_t nelements)
{
	if (nelements <= 255) {
		emit(a, AML_PACKAGE_OP);
		open_construct(a, OPEN_PACKAGE);
		emit(a, (uint8_t)nelements);
	} else {
		/* NumElements is a byte; larger packages carry it as a term. */
		emit(a, AML_VAR_PACKAGE_OP);
		open_construct(a, OPEN_PACKAGE);
		aml_integer(a, nelements);
	}
}

void aml_buffer_begin(struct aml *a)
{
	emit(a, AML_BUFFER_OP);
	open_construct(a, OPEN_BUFFER);
}

void aml_resource_template_begin(struct aml *a)
{
	emit(a, AML_BUFFER_OP);
	open_construct(a, OPEN_RESOURCE_TEMPLATE);
}

void aml_if_begin(struct aml *a)
{
	emit(a, AML_IF_OP);
	open_construct(a, OPEN_IF);
}

void aml_while_begin(struct aml *a)
{
	emit(a, AML_WHILE_OP);
	open_construct(a, OPEN_WHILE);
}

void aml_field_begin(struct aml *a, const char *region, enum aml_field_access access,
		     enum aml_field_update update)
{
	emit(a, AML_EXT_OP_PREFIX);
	emit(a, AML_EXT_FIELD_OP);
	open_construct(a, OPEN_FIELD);
	aml_name_string(a, region);
	/* FieldFlags: AccessType bits 3-0, LockRule bit 4 (NoLock), UpdateRule bits 6-5. */
	emit(a, (uint8_t)((access & 0x0f) | (update & 3) << 5));
}

void aml_field_unit(struct aml *a, const char *name, uint32_t bits)
{
	if (failed(a))
		return;
	if (a->depth == 0 || a->open[a->depth - 1].kind != OPEN_FIELD) {
		set_error(a, "aml: field unit %s outside a Field", name ? name : "(reserved)");
		return;
	}
	/*
	 * NamedField := NameSeg PkgLength, ReservedField := 0x00 PkgLength; here
	 * the PkgLength encoding carries a bit count that does not include the
	 * encoding's own bytes.
	 */
	uint8_t len[4];
	unsigned n;
	if (bits == 0 || bits > AML_PKGLENGTH_MAX) {
		set_error(a, "aml: field unit %s of %u bits", name ? name : "(reserved)", bits);
		return;
	}
	if (bits <= 0x3f) {
		len[0] = (uint8_t)bits;
		n = 1;
	} else {
		n = bits <= 0xfff ? 2 : bits <= 0xfffff ? 3 : 4;
		len[0] = (uint8_t)(((n - 1) << 6) | (bits & 0x0f));
		for (unsigned i = 1; i < n; i++)
			len[i] = (uint8_t)(bits >> (4 + 8 * (i - 1)));
	}
	if (name) {
		size_t l = strlen(name);
		if (l == 0 || l > 4 || strchr(name, '.') || strchr(name, '\\') ||
		    strchr(name, '^')) {
			set_error(a, "aml: field unit name '%s' must be one NameSeg", name);
			return;
		}
		aml_name_string(a, name);
	} else {
		emit(a, 0x00);
	}
	aml_raw(a, len, n);
}

void aml_end(struct aml *a)
{
	if (failed(a))
		return;
	if (a->depth == 0) {
		set_error(a, "aml: aml_end() without a matching *_begin()");
		return;
	}
	uint8_t kind = a->open[a->depth - 1].kind;
	size_t mark = a->open[a->depth - 1].mark;

	/* Prefix inserted at mark: PkgLength, then for buffers the BufferSize. */
	uint8_t prefix[4 + 9];
	unsigned nprefix = 0;
	uint8_t size_term[9];
	unsigned nsize = 0;
	if (kind == OPEN_RESOURCE_TEMPLATE) {
		/* EndTag; checksum 0 means "treat as valid", as iasl emits it. */
		uint8_t end_tag[2] = { RES_END_TAG, 0x00 };
		aml_raw(a, end_tag, sizeof(end_tag));
	}
	if (kind == OPEN_BUFFER || kind == OPEN_RESOURCE_TEMPLATE)
		nsize = encode_integer(size_term, a->len - mark);
	if (failed(a))
		return;

	size_t content = a->len - mark + nsize;
	nprefix = aml_pkglength_encode(prefix, content);
	if (nprefix == 0) {
		set_error(a, "aml: construct of %zu bytes is too large for a PkgLength", content);
		return;
	}
	memcpy(prefix + nprefix, size_term, nsize);
	insert(a, mark, prefix, nprefix + nsize);
	a->depth--;
}

/* --- Resource descriptors ---------------------------------------------- */

static bool in_resource_template(struct aml *a, const char *what)
{
	if (failed(a))
		return false;
	if (a->depth == 0 || a->open[a->depth - 1].kind != OPEN_RESOURCE_TEMPLATE) {
		set_error(a, "aml: %s outside a resource template", what);
		return false;
	}
	return true;
}

/*
 * Word/DWord/QWord Address Space Descriptor (ACPI 6.5, 6.4.3.5.1-3): tag,
 * length, resource type, general flags, type-specific flags, then five
 * fields of width bytes: granularity, minimum, maximum, translation, length.
 */
static void res_address_window(struct aml *a, const char *what, uint8_t tag,
			       unsigned width, uint8_t res_type, uint8_t type_flags,
			       uint64_t min, uint64_t max)
{
	if (!in_resource_template(a, what))
		return;
	if (min > max || (min == 0 && max == UINT64_MAX)) {
		set_error(a, "aml: %s window 0x%llx-0x%llx is empty or has no length", what,
			  (unsigned long long)min, (unsigned long long)max);
		return;
	}
	emit(a, tag);
	emit_le(a, 3 + 5 * width, 2);
	emit(a, res_type);
	emit(a, RES_WINDOW_FLAGS);
	emit(a, type_flags);
	emit_le(a, 0, width);              /* granularity */
	emit_le(a, min, width);
	emit_le(a, max, width);
	emit_le(a, 0, width);              /* translation offset */
	emit_le(a, max - min + 1, width);  /* length */
}

void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max)
{
	res_address_window(a, "WordBusNumber", RES_WORD_ADDRESS, 2, RES_TYPE_BUS_NUMBER, 0,
			   min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	res_address_window(a, "WordIO", RES_WORD_ADDRESS, 2, RES_TYPE_IO,
			   RES_IO_ENTIRE_RANGE, min, max);
}

void aml_res_dword_io(struct aml *a, uint32_t min, uint32_t max)
{
	res_address_window(a, "DWordIO", RES_DWORD_ADDRESS, 4, RES_TYPE_IO,
			   RES_IO_ENTIRE_RANGE, min, max);
}

void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max, bool cacheable)
{
	res_address_window(a, "DWordMemory", RES_DWORD_ADDRESS, 4, RES_TYPE_MEMORY,
			   RES_MEM_READ_WRITE | (cacheable ? RES_MEM_CACHEABLE : 0), min, max);
}

void aml_res_qword_memory(struct aml *a, uint64_t min, uint64_t max, bool cacheable)
{
	res_address_window(a, "QWordMemory", RES_QWORD_ADDRESS, 8, RES_TYPE_MEMORY,
			   RES_MEM_READ_WRITE | (cacheable ? RES_MEM_CACHEABLE : 0), min, max);
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t alignment,
		uint8_t length)
{
	if (!in_resource_template(a, "IO"))
		return;
	emit(a, RES_IO);
	emit(a, 0x01);   /* Decode16: the device decodes all 16 address bits */
	emit_le(a, min, 2);
	emit_le(a, max, 2);
	emit(a, alignment);
	emit(a, length);
}

void aml_res_irq_noflags(struct aml *a, unsigned irq)
{
	if (!in_resource_template(a, "IRQNoFlags"))
		return;
	if (irq > 15) {
		set_error(a, "aml: IRQNoFlags {%u}: ISA IRQs are 0-15", irq);
		return;
	}
	emit(a, RES_IRQ_NOFLAGS);
	emit_le(a, 1u << irq, 2);
}

void aml_res_interrupt(struct aml *a, uint32_t gsi, bool level, bool active_low,
		       bool shared)
{
	if (!in_resource_template(a, "Interrupt"))
		return;
	/* Flags: consumer (bit 0), edge (bit 1), active-low (bit 2), shared (bit 3). */
	uint8_t flags = 0x01 | (level ? 0 : 0x02) | (active_low ? 0x04 : 0) |
			(shared ? 0x08 : 0);
	emit(a, RES_EXT_INTERRUPT);
	emit_le(a, 2 + 4, 2);   /* flags, count, one interrupt number */
	emit(a, flags);
	emit(a, 1);
	emit_le(a, gsi, 4);
}
