/*
 * A small AML (ACPI Machine Language) byte-code builder, enough to write the
 * DSDT khyve hands to the guest: names, integers, strings, buffers,
 * packages, methods, devices, scopes and resource templates.
 *
 * Theory. AML is a prefix encoding: every construct that contains others
 * (Scope, Device, Method, Package, Buffer) starts with its opcode and a
 * PkgLength that counts the bytes that follow it, including the PkgLength
 * itself. The length is known only when the construct is complete, and its
 * own size (1 to 4 bytes) depends on the length, so the builder writes the
 * contents first and inserts the encoded length at the construct's start when
 * it is closed. Open constructs live on a small stack: every *_begin() call
 * is matched by one aml_end(), which knows what it closes (a resource
 * template gets its EndTag, a buffer its size).
 *
 * Everything else is emitted in AML's own order: aml_name("_UID") is followed
 * by exactly one data object (aml_integer(), aml_string(), ...), aml_return()
 * by exactly one term. That keeps the builder a thin, checkable mirror of
 * the ASL it replaces; the comments in acpi.c show that ASL.
 *
 * Errors (a malformed name, unbalanced begin/end, running out of memory,
 * a resource descriptor outside a resource template) are sticky: the first
 * one is recorded, later calls do nothing, and aml_check() reports it once.
 * Building a table is then straight-line code with one check at the end.
 *
 * Code in methods follows the same prefix rule: aml_store() is followed by
 * its source and then its target, aml_if_begin() by its predicate and then
 * the body up to aml_end(), a method call (aml_call) by its arguments.
 */
#ifndef KHYVE_AML_H
#define KHYVE_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How deeply constructs may nest; the DSDT needs 5 (Scope, Method, While, If, ...). */
#define AML_MAX_NESTING 16

/* Largest value a 4-byte PkgLength can carry (28 bits). */
#define AML_PKGLENGTH_MAX 0x0fffffffu

struct aml {
	uint8_t *code;      /* the byte code so far */
	size_t len, cap;
	struct {
		size_t mark;    /* offset where the PkgLength goes */
		uint8_t kind;   /* what aml_end() closes (aml.c) */
	} open[AML_MAX_NESTING];
	unsigned depth;
	char error[160];    /* first error; "" while all is well */
};

void aml_init(struct aml *a);
void aml_release(struct aml *a);

/* 0 if everything built so far is well formed and closed, else -1 + reason. */
int aml_check(const struct aml *a, char *err, size_t errlen);

/*
 * PkgLength for a construct whose contents (after the PkgLength) are
 * content_len bytes. Writes 1-4 bytes to out and returns how many, or 0 if
 * the construct is too large for AML. The encoded value includes the
 * PkgLength's own bytes, which is why the boundaries sit at 62/63 and
 * 4093/4094 bytes of content, not at 63/64 and 4095/4096.
 */
unsigned aml_pkglength_encode(uint8_t out[4], size_t content_len);

/*
 * Decode a PkgLength at p (avail bytes readable). On success stores the
 * encoded value (bytes from the PkgLength's start to the construct's end)
 * and the PkgLength's own size, and returns 0; -1 if malformed or truncated.
 */
int aml_pkglength_decode(const uint8_t *p, size_t avail, uint32_t *value,
			 unsigned *nbytes);

/*
 * EISA ID compression ("PNP0A03" -> 0x030AD041): three upper-case letters
 * then four hex digits. 0 and the value, or -1 if id is not of that form.
 */
int aml_eisaid_value(const char *id, uint32_t *out);

/* Raw bytes, for what the builder has no helper for (e.g. a _MAT buffer). */
void aml_raw(struct aml *a, const void *bytes, size_t n);

/*
 * A NameString: "NAME", "\\_SB.PCI0.C000", "^PCI0". Segments shorter than
 * four characters are padded with '_' as ASL does; characters must be
 * A-Z, 0-9 or '_' and a segment may not start with a digit.
 */
void aml_name_string(struct aml *a, const char *path);

/* Name(path, <next object>): follow with exactly one data object. */
void aml_name(struct aml *a, const char *path);

/* Smallest encoding: Zero, One, Ones, then Byte/Word/DWord/QWord prefix. */
void aml_integer(struct aml *a, uint64_t value);

/* DWordConst regardless of value (what ASL's EisaId() compiles to). */
void aml_dword_const(struct aml *a, uint32_t value);

/* EisaId("PNP0A08"): a DWordConst; records an error for a malformed id. */
void aml_eisaid(struct aml *a, const char *id);

/* String constant; must be 7-bit ASCII without NUL (the AML rule). */
void aml_string(struct aml *a, const char *s);

/* Buffer(n) { bytes }. */
void aml_buffer(struct aml *a, const void *bytes, size_t n);

/* Return(<next term>): follow with exactly one term. */
void aml_return(struct aml *a);

/* Arg0..Arg6 and Local0..Local7 as terms. */
void aml_arg(struct aml *a, unsigned n);
void aml_local(struct aml *a, unsigned n);

/*
 * Constructs with contents; each is closed by aml_end(). Packages take their
 * element count up front (VarPackage above 255 elements), methods their
 * argument count (0-7) and whether they are Serialized.
 */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *name);
void aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized);
void aml_package_begin(struct aml *a, uint32_t nelements);
void aml_buffer_begin(struct aml *a);
void aml_resource_template_begin(struct aml *a);
void aml_end(struct aml *a);

/*
 * Control flow inside a method: If (<predicate>) { ... } and
 * While (<predicate>) { ... }. Follow *_begin() with exactly one term, the
 * predicate, then the body; close with aml_end().
 */
void aml_if_begin(struct aml *a);
void aml_while_begin(struct aml *a);

/*
 * Operators, each followed by its operands in ASL order:
 *   aml_store: Store (<source>, <target>)       ASL: target = source
 *   aml_lequal, aml_lless: (<a> == <b>), (<a> < <b>)
 *   aml_increment: Increment (<target>)         ASL: target++
 *   aml_notify: Notify (<object>, <value>)
 * A target is a name (aml_name_string), a Local or an Arg.
 */
void aml_store(struct aml *a);
void aml_lequal(struct aml *a);
void aml_lless(struct aml *a);
void aml_increment(struct aml *a);
void aml_notify(struct aml *a);

/*
 * A method invocation: the method's name, then exactly as many terms as it
 * takes arguments. (The argument count is not encoded: a reader learns it
 * from the method's declaration, so declare methods before calling them.)
 */
void aml_call(struct aml *a, const char *method);

/* Mutex (name, SyncLevel); Acquire (mutex, timeout in ms, 0xFFFF = forever); Release (mutex). */
void aml_mutex(struct aml *a, const char *name, unsigned sync_level);
void aml_acquire(struct aml *a, const char *mutex, uint16_t timeout_ms);
void aml_release_mutex(struct aml *a, const char *mutex);

/* OperationRegion (name, space, offset, length). */
enum aml_region_space {
	AML_REGION_SYSTEM_MEMORY = 0,
	AML_REGION_SYSTEM_IO = 1,
};
void aml_operation_region(struct aml *a, const char *name, enum aml_region_space space,
			  uint64_t offset, uint64_t len);

/*
 * Field (region, access, NoLock, update) { units }: aml_field_begin(), then
 * aml_field_unit() for each unit in order, then aml_end(). A NULL name is a
 * reserved (unnamed) run of bits, which is what ASL's Offset() compiles to.
 */
enum aml_field_access {
	AML_FIELD_ANY_ACC = 0,
	AML_FIELD_BYTE_ACC = 1,
	AML_FIELD_WORD_ACC = 2,
	AML_FIELD_DWORD_ACC = 3,
};
enum aml_field_update {
	AML_FIELD_PRESERVE = 0,
	AML_FIELD_WRITE_AS_ONES = 1,
	AML_FIELD_WRITE_AS_ZEROS = 2,
};
void aml_field_begin(struct aml *a, const char *region, enum aml_field_access access,
		     enum aml_field_update update);
void aml_field_unit(struct aml *a, const char *name, uint32_t bits);

/*
 * Resource descriptors, valid only inside a resource template. Address-space
 * windows are what a bridge produces (ResourceProducer, MinFixed, MaxFixed,
 * PosDecode) with granularity and translation 0; min/max are inclusive and
 * the length is derived, as in every host-bridge _CRS.
 */
void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_io(struct aml *a, uint32_t min, uint32_t max);
void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max, bool cacheable);
void aml_res_qword_memory(struct aml *a, uint64_t min, uint64_t max, bool cacheable);
/* IO (Decode16, min, max, alignment, length): a device's own ports. */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t alignment,
		uint8_t length);
/* IRQNoFlags () {irq}: one ISA IRQ (0-15), edge-triggered, active-high. */
void aml_res_irq_noflags(struct aml *a, unsigned irq);
/* Interrupt (ResourceConsumer, level/edge, low/high, shared?) {gsi}. */
void aml_res_interrupt(struct aml *a, uint32_t gsi, bool level, bool active_low,
		       bool shared);

#endif
