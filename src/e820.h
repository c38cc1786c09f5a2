/*
 * The guest's e820 memory map, derived from the memory map and the fixed
 * low-memory layout (boot_layout.h), so the firmware-style map Linux reads
 * from the zero page always agrees with what is really backed.
 *
 *   [0, BOOT_LOW_RAM_END)                  RAM (where backed)
 *   [BOOT_LOW_RAM_END, BOOT_HIGH_RAM_GPA)  reserved: EBDA, ACPI tables, RSDP,
 *                                          BIOS ROM window, as on a PC
 *   RAM segments from BOOT_HIGH_RAM_GPA    RAM, in whatever pieces the memory
 *                                          map has (typically split around
 *                                          the PCI hole)
 *
 * The result is sorted by address, adjacent entries of one type are merged,
 * and nothing overlaps. RAM inside the 32-bit PCI hole is refused rather
 * than advertised, because the guest will place device BARs there.
 */
#ifndef KHYVE_E820_H
#define KHYVE_E820_H

#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>

#include "memmap.h"

#define E820_TYPE_RAM      1
#define E820_TYPE_RESERVED 2

/*
 * Fill out[0..*n) (at most max entries; the zero page holds
 * E820_MAX_ENTRIES_ZEROPAGE). Returns 0, or -1 with a one-line reason in err
 * (segments overlapping each other or the PCI hole, too many entries).
 */
int e820_build(const struct memmap *mem, struct boot_e820_entry *out, unsigned max,
	       unsigned *n, char *err, size_t errlen);

#endif
