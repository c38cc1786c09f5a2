/*
 * Booting a flat binary instead of Linux: how khyve's micro-guests (tests/
 * guests/) run. The binary is copied to a fixed address and entered in
 * real mode (CS:IP = 0:0x8000, like a boot sector's successor) or in 64-bit
 * long mode at 0x100000 with the same page tables and GDT Linux gets.
 */
#ifndef KHYVE_RAW_BOOT_H
#define KHYVE_RAW_BOOT_H

#include <stddef.h>

#define RAW_REAL_MODE_GPA 0x8000ULL
#define RAW_LONG_MODE_GPA 0x100000ULL

struct vm;

/* mode is "real" or "long". Sets up the boot vCPU's registers too. */
int raw_boot_load(struct vm *vm, const char *path, const char *mode, char *err,
		  size_t errlen);

#endif
