/*
 * Guest-physical memory map: the list of RAM segments backing the guest.
 *
 * A segment is a contiguous guest-physical range backed by one contiguous
 * host mapping. Translation of a guest range succeeds only when the whole
 * range lies inside one segment; anything else (holes, ranges straddling two
 * segments, wrap-around, absurd lengths) returns NULL, because every caller
 * is ultimately driven by guest-controlled addresses.
 *
 * This header is deliberately free of locking: the VM layer (vm.h) owns the
 * memory map and decides who may read it when (see the theory statement in
 * vm_lock.c once it exists).
 */
#ifndef KHYVE_MEMMAP_H
#define KHYVE_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

struct mem_segment {
	uint64_t gpa;     /* first guest-physical byte */
	uint64_t len;     /* length in bytes */
	uint8_t *hva;     /* host mapping of gpa */
	uint32_t slot;    /* the KVM memory slot backing it (vm.c) */
};

struct memmap {
	struct mem_segment *segs;
	size_t nsegs;
};

/* Host pointer for [gpa, gpa+len) or NULL if not wholly inside one segment. */
void *memmap_translate(const struct memmap *map, uint64_t gpa, uint64_t len);

/* Highest guest-physical address of RAM + 1 (0 for an empty map). */
uint64_t memmap_ram_top(const struct memmap *map);

#endif
