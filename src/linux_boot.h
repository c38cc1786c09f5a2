/*
 * Direct boot of an unmodified Linux kernel: put the kernel, its command
 * line, an optional initrd and a zero page (struct boot_params) into guest
 * memory, and say where the vCPU must start. No firmware, no real-mode code:
 * the guest enters the kernel in 64-bit mode, as the x86 boot protocol's
 * "64-bit boot protocol" section describes.
 *
 * Three ways in, chosen by what the kernel file is and by `classic`:
 *
 *   vmlinux ELF       every PT_LOAD at p_paddr, entry e_entry (startup_64),
 *                     a zero page built from scratch (as Firecracker does).
 *   bzImage (default) the compressed payload is decompressed on the host
 *                     (kernel_decompress.c) and loaded like a vmlinux ELF;
 *                     the zero page carries the bzImage's own setup header.
 *                     Faster than letting the guest decompress, and the
 *                     same kernel behaviour as a bootloader + decompressor.
 *   bzImage, classic  the protected-mode part is copied to its load address
 *                     and entered at +0x200 (the compressed kernel's 64-bit
 *                     startup_64), which decompresses the kernel itself and
 *                     can apply KASLR. Needed for bzip2/lzo kernels.
 *
 * Guest-physical placement follows boot_layout.h: zero page at
 * BOOT_ZERO_PAGE_GPA, command line at BOOT_CMDLINE_GPA, kernel at or above
 * BOOT_HIGH_RAM_GPA, initrd as high as the kernel allows. The e820 map comes
 * from e820.c, and acpi_rsdp_addr points at BOOT_RSDP_GPA (the ACPI builder
 * writes the tables; we only tell the kernel where they are).
 *
 * What the caller must set up before entry (the boot protocol's rules):
 * long mode with paging, identity mapping covering the kernel (init_size
 * from the load address on the classic path), the zero page and the command
 * line; a GDT with flat 4 GiB __BOOT_CS (selector 0x10, execute/read) and
 * __BOOT_DS (0x18, read/write); CS=0x10, DS=ES=SS=0x18; interrupts off
 * (RFLAGS.IF=0); RIP=entry.rip, RSI=entry.rsi; other GPRs 0 is fine.
 */
#ifndef KHYVE_LINUX_BOOT_H
#define KHYVE_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memmap.h"

struct linux_boot_params_in {
	const char *kernel_path;   /* bzImage or vmlinux ELF */
	const char *initrd_path;   /* may be NULL */
	const char *cmdline;       /* may be NULL -> "" */
	bool classic;              /* true: load the bzImage as is and let the guest decompress itself */
};

struct linux_boot_entry {
	uint64_t rip;              /* 64-bit entry point (guest-physical, identity-mapped) */
	uint64_t rsi;              /* zero page gpa (BOOT_ZERO_PAGE_GPA) */
	const char *how;           /* "vmlinux ELF", "bzImage, host-decompressed lz4", "bzImage, classic" ... for a log line */

	/* Where things went, for logs and tests. */
	uint64_t kernel_start;     /* first guest-physical byte of the kernel */
	uint64_t kernel_end;       /* end of what the kernel needs (bss / init_size) */
	uint64_t initrd_gpa;       /* 0 when no initrd */
	uint64_t initrd_size;
	uint64_t decompressed_size;/* vmlinux bytes produced on the host, else 0 */
	unsigned e820_entries;
	uint16_t protocol;         /* boot protocol version of the bzImage (0x020f for a vmlinux) */
};

/* Bound on a bzImage file; it is read into host memory whole. */
#define LINUX_BOOT_BZIMAGE_MAX (512ULL << 20)

/*
 * Load the kernel (and initrd) into guest memory and write the command line
 * and zero page. Returns 0 and fills *out, or -1 with a one-line reason in
 * err naming the file and field at fault. On failure guest memory may be
 * partly written (the VM is not started then).
 */
int linux_boot_load(const struct linux_boot_params_in *in, const struct memmap *mem,
		    struct linux_boot_entry *out, char *err, size_t errlen);

#endif
