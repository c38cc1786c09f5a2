/*
 * e820 construction: cut every RAM segment against the legacy reserved
 * window, add that window as reserved, sort, refuse overlaps (they would
 * mean the memory map itself is wrong), merge neighbours, then bound the
 * count. Working on a private list first keeps the caller's array untouched
 * on failure and lets the bound apply to the merged result, which is what
 * the guest actually receives.
 */
#include "e820.h"
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "boot_layout.h"

struct e820_range {
	uint64_t start, end;  /* [start, end) */
	uint32_t type;
};

static int by_start(const void *a, const void *b)
{
	const struct e820_range *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

/* Append [start, end) ∩ [lo, hi) if non-empty. */
static void add_clipped(struct e820_range *r, size_t *count, uint64_t start, uint64_t end,
			uint64_t lo, uint64_t hi)
{
	uint64_t s = start > lo ? start : lo;
	uint64_t e = end < hi ? end : hi;
	if (s < e)
		r[(*count)++] = (struct e820_range){ s, e, E820_TYPE_RAM };
}

int e820_build(const struct memmap *mem, struct boot_e820_entry *out, unsigned max,
	       unsigned *n, char *err, size_t errlen)
{
	*n = 0;
	/* Each segment yields at most a low and a high piece, plus the window. */
	if (mem->nsegs > (SIZE_MAX / sizeof(struct e820_range) - 1) / 2)
		return fail_with(err, errlen, "e820: %zu memory segments is absurd", mem->nsegs);
	struct e820_range *r = malloc((2 * mem->nsegs + 1) * sizeof(*r));
	if (!r)
		return fail_with(err, errlen, "e820: out of memory");

	size_t count = 0;
	for (size_t i = 0; i < mem->nsegs; i++) {
		const struct mem_segment *s = &mem->segs[i];
		if (s->len == 0)
			continue;
		if (s->gpa + s->len < s->gpa) {
			free(r);
			return fail_with(err, errlen, "e820: memory segment at 0x%llx length 0x%llx wraps",
				    (unsigned long long)s->gpa, (unsigned long long)s->len);
		}
		uint64_t end = s->gpa + s->len;
		if (s->gpa < BOOT_PCI_HOLE_END && end > BOOT_PCI_HOLE_GPA) {
			free(r);
			return fail_with(err, errlen,
				    "e820: memory segment 0x%llx-0x%llx overlaps the PCI hole 0x%llx-0x%llx",
				    (unsigned long long)s->gpa, (unsigned long long)end - 1,
				    BOOT_PCI_HOLE_GPA, BOOT_PCI_HOLE_END - 1);
		}
		add_clipped(r, &count, s->gpa, end, 0, BOOT_LOW_RAM_END);
		add_clipped(r, &count, s->gpa, end, BOOT_HIGH_RAM_GPA, UINT64_MAX);
	}
	r[count++] = (struct e820_range){ BOOT_LOW_RAM_END, BOOT_HIGH_RAM_GPA,
					  E820_TYPE_RESERVED };
	qsort(r, count, sizeof(*r), by_start);

	size_t merged = 0;
	for (size_t i = 0; i < count; i++) {
		struct e820_range *last = merged ? &r[merged - 1] : NULL;
		if (last && r[i].start < last->end) {
			int rc = fail_with(err, errlen,
				      "e820: ranges 0x%llx-0x%llx and 0x%llx-0x%llx overlap (memory segments overlap each other)",
				      (unsigned long long)last->start,
				      (unsigned long long)last->end - 1,
				      (unsigned long long)r[i].start,
				      (unsigned long long)r[i].end - 1);
			free(r);
			return rc;
		}
		if (last && r[i].start == last->end && r[i].type == last->type)
			last->end = r[i].end;
		else
			r[merged++] = r[i];
	}
	if (merged > max) {
		free(r);
		return fail_with(err, errlen, "e820: %zu entries exceed the limit of %u", merged, max);
	}
	for (size_t i = 0; i < merged; i++)
		out[i] = (struct boot_e820_entry){ .addr = r[i].start,
						   .size = r[i].end - r[i].start,
						   .type = r[i].type };
	*n = (unsigned)merged;
	free(r);
	return 0;
}
