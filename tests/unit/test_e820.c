/* Unit tests for the e820 map built from the memory map (e820.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "boot_layout.h"
#include "e820.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
/* A RAM segment by address and length; e820 never looks at the host side. */
#define SEG(gpa_, len_) { .gpa = (gpa_), .len = (len_) }

/* e820 looks at addresses only; no host memory is needed behind them. */
static unsigned build_ok(const struct mem_segment *segs, size_t n,
			 struct boot_e820_entry *out)
{
	struct memmap m = { .segs = (struct mem_segment *)segs, .nsegs = n };
	char err[256] = "";
	unsigned count = 0;
	if (e820_build(&m, out, E820_MAX_ENTRIES_ZEROPAGE, &count, err, sizeof(err)) != 0)
		fail_msg("e820_build failed: %s", err);
	/* Invariants of every map: sorted, non-empty, no overlap, window reserved. */
	int reserved_seen = 0;
	for (unsigned i = 0; i < count; i++) {
		assert_true(out[i].size > 0);
		if (i > 0)
			assert_true(out[i - 1].addr + out[i - 1].size <= out[i].addr);
		if (out[i].type == E820_TYPE_RESERVED && out[i].addr == BOOT_LOW_RAM_END &&
		    out[i].size == BOOT_HIGH_RAM_GPA - BOOT_LOW_RAM_END)
			reserved_seen = 1;
		/* Nothing RAM in the legacy window or the PCI hole. */
		if (out[i].type == E820_TYPE_RAM) {
			uint64_t end = out[i].addr + out[i].size;
			assert_false(out[i].addr < BOOT_HIGH_RAM_GPA && end > BOOT_LOW_RAM_END);
			assert_false(out[i].addr < BOOT_PCI_HOLE_END && end > BOOT_PCI_HOLE_GPA);
		}
	}
	assert_true(reserved_seen);
	return count;
}

static void expect(const struct boot_e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	if (e->addr != addr || e->size != size || e->type != type)
		fail_msg("entry {0x%llx, 0x%llx, %u}, expected {0x%llx, 0x%llx, %u}",
			 (unsigned long long)e->addr, (unsigned long long)e->size, e->type,
			 (unsigned long long)addr, (unsigned long long)size, type);
}

static void test_128m(void **state)
{
	struct mem_segment s[] = { SEG(0, 128 * MiB) };
	struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
	assert_int_equal(build_ok(s, 1, e), 3);
	expect(&e[0], 0, BOOT_LOW_RAM_END, E820_TYPE_RAM);
	expect(&e[1], BOOT_LOW_RAM_END, BOOT_HIGH_RAM_GPA - BOOT_LOW_RAM_END, E820_TYPE_RESERVED);
	expect(&e[2], BOOT_HIGH_RAM_GPA, 128 * MiB - BOOT_HIGH_RAM_GPA, E820_TYPE_RAM);
}

static void test_3g_up_to_the_hole(void **state)
{
	struct mem_segment s[] = { SEG(0, 3 * GiB) };
	struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
	assert_int_equal(build_ok(s, 1, e), 3);
	expect(&e[2], BOOT_HIGH_RAM_GPA, BOOT_PCI_HOLE_GPA - BOOT_HIGH_RAM_GPA, E820_TYPE_RAM);
}

static void test_5g_split_around_hole(void **state)
{
	/* Given out of order on purpose: the map must come out sorted. */
	struct mem_segment s[] = { SEG(BOOT_PCI_HOLE_END, 2 * GiB),
				   SEG(0, BOOT_PCI_HOLE_GPA) };
	struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
	assert_int_equal(build_ok(s, 2, e), 4);
	expect(&e[0], 0, BOOT_LOW_RAM_END, E820_TYPE_RAM);
	expect(&e[1], BOOT_LOW_RAM_END, BOOT_HIGH_RAM_GPA - BOOT_LOW_RAM_END, E820_TYPE_RESERVED);
	expect(&e[2], BOOT_HIGH_RAM_GPA, BOOT_PCI_HOLE_GPA - BOOT_HIGH_RAM_GPA, E820_TYPE_RAM);
	expect(&e[3], 4 * GiB, 2 * GiB, E820_TYPE_RAM);
	uint64_t ram = 0;
	for (int i = 0; i < 4; i++)
		if (e[i].type == E820_TYPE_RAM)
			ram += e[i].size;
	/* 5 GiB minus the 385 KiB legacy window. */
	assert_int_equal(ram, 5 * GiB - (BOOT_HIGH_RAM_GPA - BOOT_LOW_RAM_END));
}

static void test_adjacent_segments_merge(void **state)
{
	struct mem_segment s[] = { SEG(64 * MiB, 64 * MiB),
				   SEG(0, 1 * MiB),
				   SEG(1 * MiB, 63 * MiB),
				   SEG(200 * MiB, 0) };  /* empty: ignored */
	struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
	assert_int_equal(build_ok(s, 4, e), 3);
	expect(&e[2], BOOT_HIGH_RAM_GPA, 127 * MiB, E820_TYPE_RAM);
}

static void test_no_low_ram_and_gaps(void **state)
{
	/* RAM only from 1 MiB, with a gap: window still reserved, gap stays a gap. */
	struct mem_segment s[] = { SEG(1 * MiB, 15 * MiB), SEG(32 * MiB, 32 * MiB) };
	struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
	assert_int_equal(build_ok(s, 2, e), 3);
	expect(&e[0], BOOT_LOW_RAM_END, BOOT_HIGH_RAM_GPA - BOOT_LOW_RAM_END, E820_TYPE_RESERVED);
	expect(&e[1], 1 * MiB, 15 * MiB, E820_TYPE_RAM);
	expect(&e[2], 32 * MiB, 32 * MiB, E820_TYPE_RAM);
}

static void build_bad(const struct mem_segment *segs, size_t n, unsigned max, const char *needle)
{
	struct memmap m = { .segs = (struct mem_segment *)segs, .nsegs = n };
	struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
	char err[256] = "";
	unsigned count = 99;
	assert_int_equal(e820_build(&m, e, max, &count, err, sizeof(err)), -1);
	assert_int_equal(count, 0);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_rejects(void **state)
{
	struct mem_segment overlap[] = { SEG(0, 64 * MiB), SEG(32 * MiB, 64 * MiB) };
	build_bad(overlap, 2, E820_MAX_ENTRIES_ZEROPAGE, "overlap");
	struct mem_segment in_hole[] = { SEG(0, 3 * GiB + 1) };
	build_bad(in_hole, 1, E820_MAX_ENTRIES_ZEROPAGE, "PCI hole");
	struct mem_segment wraps[] = { SEG(UINT64_MAX - 4095, 8192) };
	build_bad(wraps, 1, E820_MAX_ENTRIES_ZEROPAGE, "wraps");
	struct mem_segment two[] = { SEG(0, 16 * MiB) };
	build_bad(two, 1, 2, "exceed the limit of 2");
}

static void test_entry_bound(void **state)
{
	/* 200 disjoint 1 MiB pieces above 4 GiB: more than the zero page holds. */
	static struct mem_segment s[201];
	s[0] = (struct mem_segment)SEG(0, 64 * MiB);
	for (int i = 1; i <= 200; i++)
		s[i] = (struct mem_segment)SEG(4 * GiB + (uint64_t)i * 2 * MiB, 1 * MiB);
	build_bad(s, 201, E820_MAX_ENTRIES_ZEROPAGE, "exceed");
	/* 125 pieces + the 3 low entries is exactly 128: accepted. */
	struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
	assert_int_equal(build_ok(s, 126, e), E820_MAX_ENTRIES_ZEROPAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_128m),
		cmocka_unit_test(test_3g_up_to_the_hole),
		cmocka_unit_test(test_5g_split_around_hole),
		cmocka_unit_test(test_adjacent_segments_merge),
		cmocka_unit_test(test_no_low_ram_and_gaps),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_entry_bound),
	};
	return cmocka_run_group_tests_name("e820", tests, NULL, NULL);
}
