/*
 * Unit tests for the AML builder (aml.c).
 *
 * The expected byte strings for whole constructs were produced by compiling
 * the ASL quoted next to them with iasl 20200925 (acpica-tools) and taking the
 * table body after the 36-byte header, so these tests hold the builder to
 * what the reference compiler emits, not to our own reading of the spec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aml.h"

static void assert_built(const struct aml *a)
{
	char err[200] = "";
	if (aml_check(a, err, sizeof(err)))
		fail_msg("aml builder error: %s", err);
}

static void assert_bytes(const struct aml *a, const uint8_t *want, size_t n)
{
	assert_built(a);
	if (a->len != n)
		fail_msg("built %zu bytes, want %zu", a->len, n);
	for (size_t i = 0; i < n; i++)
		if (a->code[i] != want[i])
			fail_msg("byte %zu: got 0x%02x, want 0x%02x", i, a->code[i], want[i]);
}

static void assert_fails_with(const struct aml *a, const char *needle)
{
	char err[200] = "";
	assert_int_equal(aml_check(a, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

/* --- PkgLength ---------------------------------------------------------- */

static void check_pkglength(size_t content, unsigned want_nbytes, const uint8_t *want)
{
	uint8_t b[4];
	unsigned n = aml_pkglength_encode(b, content);
	if (n != want_nbytes)
		fail_msg("content %zu: %u PkgLength bytes, want %u", content, n, want_nbytes);
	if (want)
		for (unsigned i = 0; i < n; i++)
			if (b[i] != want[i])
				fail_msg("content %zu: byte %u is 0x%02x, want 0x%02x", content, i,
					 b[i], want[i]);
	uint32_t value;
	unsigned dn;
	assert_int_equal(aml_pkglength_decode(b, n, &value, &dn), 0);
	assert_int_equal(dn, n);
	/* The value counts the PkgLength itself. */
	assert_int_equal(value, content + n);
}

static void test_pkglength_boundaries(void **state)
{
	/* 1 byte holds values up to 63: content 62 + 1. */
	check_pkglength(0, 1, (const uint8_t[]){ 0x01 });
	check_pkglength(62, 1, (const uint8_t[]){ 0x3f });
	/* Content 63 would make 64: needs 2 bytes, value 65. */
	check_pkglength(63, 2, (const uint8_t[]){ 0x41, 0x04 });
	check_pkglength(64, 2, (const uint8_t[]){ 0x42, 0x04 });
	/* 2 bytes hold 12 bits: up to 4095 = content 4093 + 2. */
	check_pkglength(4093, 2, (const uint8_t[]){ 0x4f, 0xff });
	check_pkglength(4094, 3, (const uint8_t[]){ 0x81, 0x00, 0x01 });   /* 4097 */
	check_pkglength(4095, 3, (const uint8_t[]){ 0x82, 0x00, 0x01 });
	check_pkglength(4096, 3, (const uint8_t[]){ 0x83, 0x00, 0x01 });
	/* 3 bytes hold 20 bits: up to 1048575 = content 1048572 + 3. */
	check_pkglength(1048572, 3, (const uint8_t[]){ 0x8f, 0xff, 0xff });
	check_pkglength(1048573, 4, (const uint8_t[]){ 0xc1, 0x00, 0x00, 0x01 }); /* 1048577 */
	check_pkglength(1048575, 4, (const uint8_t[]){ 0xc3, 0x00, 0x00, 0x01 });
	check_pkglength(1048576, 4, (const uint8_t[]){ 0xc4, 0x00, 0x00, 0x01 });
	/* 4 bytes hold 28 bits; beyond that AML has no encoding. */
	check_pkglength(AML_PKGLENGTH_MAX - 4, 4, (const uint8_t[]){ 0xcf, 0xff, 0xff, 0xff });
	uint8_t b[4];
	assert_int_equal(aml_pkglength_encode(b, AML_PKGLENGTH_MAX - 3), 0);
}

static void test_pkglength_decode_rejects(void **state)
{
	uint32_t v;
	unsigned n;
	/* Truncated multi-byte form. */
	assert_int_equal(aml_pkglength_decode((const uint8_t[]){ 0x81, 0x00 }, 2, &v, &n), -1);
	/* Reserved bits 5-4 set in a multi-byte lead byte. */
	assert_int_equal(aml_pkglength_decode((const uint8_t[]){ 0x50, 0x01 }, 2, &v, &n), -1);
	/* A value smaller than the PkgLength itself. */
	assert_int_equal(aml_pkglength_decode((const uint8_t[]){ 0x00 }, 1, &v, &n), -1);
}

/*
 * A Scope and a Buffer whose bodies are exactly the brief's boundary sizes
 * (63, 64, 4095, 4096, 1048575, 1048576 bytes) must come out with a
 * PkgLength that reaches exactly the end of the construct.
 */
static void test_pkglength_in_constructs(void **state)
{
	static const size_t sizes[] = { 62, 63, 64, 4093, 4094, 4095, 4096,
					1048572, 1048573, 1048575, 1048576 };
	uint8_t *body = calloc(1, 1048576);
	assert_non_null(body);
	memset(body, 0xa5, 1048576);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		struct aml a;
		uint32_t value;
		unsigned pl;

		/* Scope (SCOP) { <n - 4 bytes> }: body = NameSeg + n - 4 bytes. */
		aml_init(&a);
		aml_scope_begin(&a, "SCOP");
		aml_raw(&a, body, n - 4);
		aml_end(&a);
		assert_built(&a);
		assert_int_equal(a.code[0], 0x10);
		assert_int_equal(aml_pkglength_decode(a.code + 1, a.len - 1, &value, &pl), 0);
		if (1 + value != a.len)
			fail_msg("scope body %zu: PkgLength %u ends at %u, construct is %zu bytes",
				 n, value, 1 + value, a.len);
		assert_memory_equal(a.code + 1 + pl, "SCOP", 4);
		aml_release(&a);

		/* Buffer (n) { ... }: PkgLength, BufferSize term, n bytes. */
		aml_init(&a);
		aml_buffer(&a, body, n);
		assert_built(&a);
		assert_int_equal(a.code[0], 0x11);
		assert_int_equal(aml_pkglength_decode(a.code + 1, a.len - 1, &value, &pl), 0);
		assert_int_equal(1 + value, a.len);
		const uint8_t *size = a.code + 1 + pl;
		uint32_t got = size[0] == 0x0a ? size[1]
			     : size[0] == 0x0b ? (uint32_t)(size[1] | size[2] << 8)
			     : (uint32_t)(size[1] | size[2] << 8 | size[3] << 16 | (uint32_t)size[4] << 24);
		assert_int_equal(got, n);
		aml_release(&a);
	}
	free(body);
}

/* --- Data objects ------------------------------------------------------- */

static void check_integer(uint64_t v, const uint8_t *want, size_t n)
{
	struct aml a;
	aml_init(&a);
	aml_integer(&a, v);
	assert_bytes(&a, want, n);
	aml_release(&a);
}

static void test_integers(void **state)
{
	check_integer(0, (const uint8_t[]){ 0x00 }, 1);                   /* Zero */
	check_integer(1, (const uint8_t[]){ 0x01 }, 1);                   /* One */
	check_integer(UINT64_MAX, (const uint8_t[]){ 0xff }, 1);          /* Ones */
	check_integer(2, (const uint8_t[]){ 0x0a, 0x02 }, 2);
	check_integer(0xff, (const uint8_t[]){ 0x0a, 0xff }, 2);
	check_integer(0x100, (const uint8_t[]){ 0x0b, 0x00, 0x01 }, 3);
	check_integer(0xffff, (const uint8_t[]){ 0x0b, 0xff, 0xff }, 3);
	check_integer(0x10000, (const uint8_t[]){ 0x0c, 0x00, 0x00, 0x01, 0x00 }, 5);
	check_integer(0xffffffff, (const uint8_t[]){ 0x0c, 0xff, 0xff, 0xff, 0xff }, 5);
	check_integer(0x100000000ULL,
		      (const uint8_t[]){ 0x0e, 0, 0, 0, 0, 1, 0, 0, 0 }, 9);
	check_integer(0xfffffffffffffffeULL,
		      (const uint8_t[]){ 0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 9);
}

static void test_eisaid(void **state)
{
	uint32_t v;
	assert_int_equal(aml_eisaid_value("PNP0A03", &v), 0);
	assert_int_equal(v, 0x030AD041);
	assert_int_equal(aml_eisaid_value("PNP0A08", &v), 0);
	assert_int_equal(v, 0x080AD041);
	assert_int_equal(aml_eisaid_value("PNP0501", &v), 0);
	assert_int_equal(v, 0x0105D041);
	assert_int_equal(aml_eisaid_value("pnp0a03", &v), -1);
	assert_int_equal(aml_eisaid_value("PNP0A0", &v), -1);
	assert_int_equal(aml_eisaid_value("PNP0A0G", &v), -1);
	assert_int_equal(aml_eisaid_value("1NP0A03", &v), -1);

	/* EisaId() always compiles to a DWordConst. */
	struct aml a;
	aml_init(&a);
	aml_eisaid(&a, "PNP0A03");
	assert_bytes(&a, (const uint8_t[]){ 0x0c, 0x41, 0xd0, 0x0a, 0x03 }, 5);
	aml_eisaid(&a, "PNPXXXX");
	assert_fails_with(&a, "EISA ID");
	aml_release(&a);
}

static void test_strings(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_string(&a, "ACPI0007");
	assert_bytes(&a, (const uint8_t[]){ 0x0d, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0 }, 10);
	aml_string(&a, "caf\xc3\xa9");
	assert_fails_with(&a, "not ASCII");
	aml_release(&a);
}

/* --- Names --------------------------------------------------------------- */

static void check_name(const char *path, const char *want, size_t n)
{
	struct aml a;
	aml_init(&a);
	aml_name_string(&a, path);
	assert_bytes(&a, (const uint8_t *)want, n);
	aml_release(&a);
}

static void check_bad_name(const char *path)
{
	struct aml a;
	aml_init(&a);
	aml_name_string(&a, path);
	assert_fails_with(&a, "bad name");
	aml_release(&a);
}

static void test_names(void **state)
{
	check_name("_SB", "_SB_", 4);
	check_name("PCI0", "PCI0", 4);
	check_name("\\_S5", "\\_S5_", 5);
	check_name("\\_SB.PCI0", "\\\x2e_SB_PCI0", 10);
	check_name("\\_SB.PCI0.C000", "\\\x2f\x03_SB_PCI0C000", 15);
	check_name("^^PCI0", "^^PCI0", 6);
	check_name("\\", "\\\0", 2);   /* the root alone: NullName */
	check_bad_name("");
	check_bad_name("PCI00");
	check_bad_name("0ABC");
	check_bad_name("pci0");
	check_bad_name("A..B");
	check_bad_name("A.");
	check_bad_name("A-B");

	/* Name (_UID, 0x05) */
	struct aml a;
	aml_init(&a);
	aml_name(&a, "_UID");
	aml_integer(&a, 5);
	assert_bytes(&a, (const uint8_t[]){ 0x08, '_', 'U', 'I', 'D', 0x0a, 0x05 }, 7);
	aml_release(&a);
}

/* --- Whole constructs against iasl -------------------------------------- */

/*
 * Scope (\_SB) { Device (COM1) {
 *     Name (_HID, EisaId ("PNP0501"))
 *     Name (_UID, One)
 *     Name (_CRS, ResourceTemplate () {
 *         IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
 *         IRQNoFlags () {4} })
 *     Method (_STA, 0, NotSerialized) { Return (0x0F) }
 *     Method (_OSC, 4, Serialized) { Return (Arg3) }
 *     Name (PKGS, Package (0x02) {
 *         Package (0x04) { 0x0001FFFF, One, Zero, 0x11 }, "ACPI0007" })
 *     Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 })
 * } }
 */
static const uint8_t iasl_com1_device[] = {
	0x10, 0x47, 0x07, 0x5c, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x4e, 0x06, 0x43, 0x4f,
	0x4d, 0x31, 0x08, 0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x05, 0x01, 0x08, 0x5f,
	0x55, 0x49, 0x44, 0x01, 0x08, 0x5f, 0x43, 0x52, 0x53, 0x11, 0x10, 0x0a, 0x0d, 0x47,
	0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00, 0x14, 0x09,
	0x5f, 0x53, 0x54, 0x41, 0x00, 0xa4, 0x0a, 0x0f, 0x14, 0x08, 0x5f, 0x4f, 0x53, 0x43,
	0x0c, 0xa4, 0x6b, 0x08, 0x50, 0x4b, 0x47, 0x53, 0x12, 0x18, 0x02, 0x12, 0x0b, 0x04,
	0x0c, 0xff, 0xff, 0x01, 0x00, 0x01, 0x00, 0x0a, 0x11, 0x0d, 0x41, 0x43, 0x50, 0x49,
	0x30, 0x30, 0x30, 0x37, 0x00, 0x08, 0x5f, 0x4d, 0x41, 0x54, 0x11, 0x0b, 0x0a, 0x08,
	0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
};

static void test_device_matches_iasl(void **state)
{
	static const uint8_t mat[8] = { 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 };
	struct aml a;
	aml_init(&a);
	aml_scope_begin(&a, "\\_SB");
	aml_device_begin(&a, "COM1");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0501");
	aml_name(&a, "_UID");
	aml_integer(&a, 1);
	aml_name(&a, "_CRS");
	aml_resource_template_begin(&a);
	aml_res_io(&a, 0x3f8, 0x3f8, 0x01, 0x08);
	aml_res_irq_noflags(&a, 4);
	aml_end(&a);
	aml_method_begin(&a, "_STA", 0, false);
	aml_return(&a);
	aml_integer(&a, 0x0f);
	aml_end(&a);
	aml_method_begin(&a, "_OSC", 4, true);
	aml_return(&a);
	aml_arg(&a, 3);
	aml_end(&a);
	aml_name(&a, "PKGS");
	aml_package_begin(&a, 2);
	aml_package_begin(&a, 4);
	aml_integer(&a, 0x1ffff);
	aml_integer(&a, 1);
	aml_integer(&a, 0);
	aml_integer(&a, 0x11);
	aml_end(&a);
	aml_string(&a, "ACPI0007");
	aml_end(&a);
	aml_name(&a, "_MAT");
	aml_buffer(&a, mat, sizeof(mat));
	aml_end(&a);
	aml_end(&a);
	assert_bytes(&a, iasl_com1_device, sizeof(iasl_com1_device));

	/* Round trip: walk back down the nesting by the encoded lengths. */
	uint32_t value;
	unsigned pl;
	assert_int_equal(aml_pkglength_decode(a.code + 1, a.len - 1, &value, &pl), 0);
	assert_int_equal(1 + value, a.len);                       /* Scope spans all */
	const uint8_t *dev = a.code + 1 + pl + 5;                 /* after RootChar, "_SB_" */
	assert_int_equal(dev[0], 0x5b);
	assert_int_equal(dev[1], 0x82);
	assert_int_equal(aml_pkglength_decode(dev + 2, a.len - (size_t)(dev + 2 - a.code),
					      &value, &pl), 0);
	assert_ptr_equal(dev + 2 + value, a.code + a.len);       /* Device ends with Scope */
	assert_memory_equal(dev + 2 + pl, "COM1", 4);
	aml_release(&a);
}

/*
 * Name (_CRS, ResourceTemplate () {
 *   WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *                  0x0000, 0x0000, 0x00FF, 0x0000, 0x0100,,,)
 *   WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
 *           0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300,,,, TypeStatic, DenseTranslation)
 *   DWordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
 *            0x00000000, 0x00000D00, 0x0000FFFF, 0x00000000, 0x0000F300,,,,
 *            TypeStatic, DenseTranslation)
 *   DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
 *                ReadWrite, 0x00000000, 0xC0000000, 0xFEBFFFFF, 0x00000000, 0x3EC00000)
 *   QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable,
 *                ReadWrite, 0x0, 0x8000000000, 0xFFFFFFFFFF, 0x0, 0x8000000000)
 *   Interrupt (ResourceConsumer, Level, ActiveLow, Shared, ,, ) {0x10}
 *   Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) {0x123} })
 */
static const uint8_t iasl_crs[] = {
	0x08, 0x5f, 0x43, 0x52, 0x53, 0x11, 0x4a, 0x09, 0x0a, 0x96, 0x88, 0x0d, 0x00, 0x02,
	0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x0d,
	0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3,
	0x87, 0x17, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf3, 0x00, 0x00, 0x87, 0x17,
	0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xff, 0xff,
	0xbf, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3e, 0x8a, 0x2b, 0x00, 0x00,
	0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x80, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
	0x89, 0x06, 0x00, 0x0d, 0x01, 0x10, 0x00, 0x00, 0x00, 0x89, 0x06, 0x00, 0x03, 0x01,
	0x23, 0x01, 0x00, 0x00, 0x79, 0x00,
};

static void test_resource_template_matches_iasl(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_name(&a, "_CRS");
	aml_resource_template_begin(&a);
	aml_res_word_bus_number(&a, 0x00, 0xff);
	aml_res_word_io(&a, 0x0d00, 0xffff);
	aml_res_dword_io(&a, 0x0d00, 0xffff);
	aml_res_dword_memory(&a, 0xc0000000, 0xfebfffff, false);
	aml_res_qword_memory(&a, 0x8000000000ULL, 0xffffffffffULL, true);
	aml_res_interrupt(&a, 0x10, true, true, true);
	aml_res_interrupt(&a, 0x123, false, false, false);
	aml_end(&a);
	assert_bytes(&a, iasl_crs, sizeof(iasl_crs));
	aml_release(&a);
}

/*
 * Method code, an operation region and fields: what the CPU hotplug AML
 * (acpi.c) is made of.
 *
 * Device (HPC) {
 *     OperationRegion (PRST, SystemIO, 0x0CD8, 0x20)
 *     Field (PRST, DWordAcc, NoLock, WriteAsZeros) { CSEL, 32 }
 *     Field (PRST, ByteAcc, NoLock, Preserve) {
 *         Offset (0x04), CPEN, 1, CINS, 1, , 6, WIDE, 100 }
 *     Mutex (CPLK, 0x00)
 *     Method (CSTA, 1, NotSerialized) {
 *         Acquire (CPLK, 0xFFFF)
 *         CSEL = Arg0
 *         Local0 = Zero
 *         If (CPEN) { Local0 = 0x0F }
 *         Release (CPLK)
 *         Return (Local0)
 *     }
 * }
 * Method (SCAN, 0, NotSerialized) {
 *     Local0 = 0x02
 *     While ((Local0 < 0x04)) {
 *         If ((\HPC.CSTA (Local0) == 0x0F)) { Notify (\HPC, One) }
 *         Local0++
 *     }
 * }
 */
static const uint8_t iasl_method_code[] = {
	0x5b, 0x82, 0x4c, 0x06, 0x48, 0x50, 0x43, 0x5f, 0x5b, 0x80, 0x50, 0x52,
	0x53, 0x54, 0x01, 0x0b, 0xd8, 0x0c, 0x0a, 0x20, 0x5b, 0x81, 0x0b, 0x50,
	0x52, 0x53, 0x54, 0x43, 0x43, 0x53, 0x45, 0x4c, 0x20, 0x5b, 0x81, 0x1a,
	0x50, 0x52, 0x53, 0x54, 0x01, 0x00, 0x20, 0x43, 0x50, 0x45, 0x4e, 0x01,
	0x43, 0x49, 0x4e, 0x53, 0x01, 0x00, 0x06, 0x57, 0x49, 0x44, 0x45, 0x44,
	0x06, 0x5b, 0x01, 0x43, 0x50, 0x4c, 0x4b, 0x00, 0x14, 0x29, 0x43, 0x53,
	0x54, 0x41, 0x01, 0x5b, 0x23, 0x43, 0x50, 0x4c, 0x4b, 0xff, 0xff, 0x70,
	0x68, 0x43, 0x53, 0x45, 0x4c, 0x70, 0x00, 0x60, 0xa0, 0x09, 0x43, 0x50,
	0x45, 0x4e, 0x70, 0x0a, 0x0f, 0x60, 0x5b, 0x27, 0x43, 0x50, 0x4c, 0x4b,
	0xa4, 0x60, 0x14, 0x29, 0x53, 0x43, 0x41, 0x4e, 0x00, 0x70, 0x0a, 0x02,
	0x60, 0xa2, 0x1e, 0x95, 0x60, 0x0a, 0x04, 0xa0, 0x16, 0x93, 0x5c, 0x2e,
	0x48, 0x50, 0x43, 0x5f, 0x43, 0x53, 0x54, 0x41, 0x60, 0x0a, 0x0f, 0x86,
	0x5c, 0x48, 0x50, 0x43, 0x5f, 0x01, 0x75, 0x60,
};

static void test_method_code_matches_iasl(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_device_begin(&a, "HPC");
	aml_operation_region(&a, "PRST", AML_REGION_SYSTEM_IO, 0x0cd8, 0x20);
	aml_field_begin(&a, "PRST", AML_FIELD_DWORD_ACC, AML_FIELD_WRITE_AS_ZEROS);
	aml_field_unit(&a, "CSEL", 32);
	aml_end(&a);
	aml_field_begin(&a, "PRST", AML_FIELD_BYTE_ACC, AML_FIELD_PRESERVE);
	aml_field_unit(&a, NULL, 32);      /* Offset (0x04) */
	aml_field_unit(&a, "CPEN", 1);
	aml_field_unit(&a, "CINS", 1);
	aml_field_unit(&a, NULL, 6);
	aml_field_unit(&a, "WIDE", 100);   /* two-byte bit count */
	aml_end(&a);
	aml_mutex(&a, "CPLK", 0);
	aml_method_begin(&a, "CSTA", 1, false);
	aml_acquire(&a, "CPLK", 0xffff);
	aml_store(&a);
	aml_arg(&a, 0);
	aml_name_string(&a, "CSEL");
	aml_store(&a);
	aml_integer(&a, 0);
	aml_local(&a, 0);
	aml_if_begin(&a);
	aml_name_string(&a, "CPEN");
	aml_store(&a);
	aml_integer(&a, 0x0f);
	aml_local(&a, 0);
	aml_end(&a);
	aml_release_mutex(&a, "CPLK");
	aml_return(&a);
	aml_local(&a, 0);
	aml_end(&a);
	aml_end(&a);

	aml_method_begin(&a, "SCAN", 0, false);
	aml_store(&a);
	aml_integer(&a, 2);
	aml_local(&a, 0);
	aml_while_begin(&a);
	aml_lless(&a);
	aml_local(&a, 0);
	aml_integer(&a, 4);
	aml_if_begin(&a);
	aml_lequal(&a);
	aml_call(&a, "\\HPC.CSTA");
	aml_local(&a, 0);
	aml_integer(&a, 0x0f);
	aml_notify(&a);
	aml_name_string(&a, "\\HPC");
	aml_integer(&a, 1);
	aml_end(&a);
	aml_increment(&a);
	aml_local(&a, 0);
	aml_end(&a);
	aml_end(&a);
	assert_bytes(&a, iasl_method_code, sizeof(iasl_method_code));
	aml_release(&a);
}

/* --- Misuse is caught and reported once --------------------------------- */

static void test_misuse(void **state)
{
	struct aml a;

	aml_init(&a);
	aml_res_io(&a, 0x3f8, 0x3f8, 1, 8);
	assert_fails_with(&a, "outside a resource template");
	aml_release(&a);

	aml_init(&a);
	aml_end(&a);
	assert_fails_with(&a, "without a matching");
	aml_release(&a);

	aml_init(&a);
	aml_device_begin(&a, "DEV0");
	assert_fails_with(&a, "left open");
	aml_release(&a);

	aml_init(&a);
	aml_resource_template_begin(&a);
	aml_res_irq_noflags(&a, 16);
	aml_end(&a);
	assert_fails_with(&a, "ISA IRQs are 0-15");
	aml_release(&a);

	aml_init(&a);
	aml_resource_template_begin(&a);
	aml_res_dword_memory(&a, 0x2000, 0x1000, false);
	aml_end(&a);
	assert_fails_with(&a, "empty");
	aml_release(&a);

	/* The first error sticks; later calls do nothing. */
	aml_init(&a);
	aml_name_string(&a, "bad!");
	size_t len = a.len;
	aml_integer(&a, 42);
	aml_method_begin(&a, "_STA", 9, false);
	assert_int_equal(a.len, len);
	assert_fails_with(&a, "bad name 'bad!'");
	aml_release(&a);

	aml_init(&a);
	aml_field_unit(&a, "CSEL", 32);
	assert_fails_with(&a, "outside a Field");
	aml_release(&a);

	aml_init(&a);
	aml_field_begin(&a, "PRST", AML_FIELD_BYTE_ACC, AML_FIELD_PRESERVE);
	aml_field_unit(&a, "\\CSEL", 8);
	aml_end(&a);
	assert_fails_with(&a, "one NameSeg");
	aml_release(&a);

	aml_init(&a);
	aml_field_begin(&a, "PRST", AML_FIELD_BYTE_ACC, AML_FIELD_PRESERVE);
	aml_field_unit(&a, "CSEL", 0);
	aml_end(&a);
	assert_fails_with(&a, "of 0 bits");
	aml_release(&a);

	aml_init(&a);
	aml_mutex(&a, "CPLK", 16);
	assert_fails_with(&a, "SyncLevel");
	aml_release(&a);

	aml_init(&a);
	aml_while_begin(&a);
	aml_integer(&a, 1);
	assert_fails_with(&a, "left open");
	aml_release(&a);

	aml_init(&a);
	for (int i = 0; i <= AML_MAX_NESTING; i++)
		aml_scope_begin(&a, "DEEP");
	assert_fails_with(&a, "nested deeper");
	aml_release(&a);
}

/* More than 255 elements need VarPackageOp with the count as a term. */
static void test_var_package(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_package_begin(&a, 300);
	for (int i = 0; i < 300; i++)
		aml_integer(&a, 0);
	aml_end(&a);
	assert_built(&a);
	assert_int_equal(a.code[0], 0x13);
	uint32_t value;
	unsigned pl;
	assert_int_equal(aml_pkglength_decode(a.code + 1, a.len - 1, &value, &pl), 0);
	assert_int_equal(1 + value, a.len);
	assert_int_equal(a.code[1 + pl], 0x0b);   /* WordConst 300 */
	assert_int_equal(a.code[2 + pl] | a.code[3 + pl] << 8, 300);
	aml_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglength_boundaries),
		cmocka_unit_test(test_pkglength_decode_rejects),
		cmocka_unit_test(test_pkglength_in_constructs),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_device_matches_iasl),
		cmocka_unit_test(test_resource_template_matches_iasl),
		cmocka_unit_test(test_method_code_matches_iasl),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_var_package),
	};
	return cmocka_run_group_tests_name("aml", tests, NULL, NULL);
}
