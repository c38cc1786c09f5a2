/*
 * Fixed guest-physical layout of what khyve places in low memory before the
 * first instruction runs. One place, so the loader, the ACPI builder, the e820
 * map and the early page tables cannot disagree.
 *
 *   0x00000500  GDT for the 64-bit entry
 *   0x00007000  zero page (struct boot_params), handed over in RSI
 *   0x00008ff0  initial stack top (unused by Linux, set for micro-guests)
 *   0x00009000  PML4, then PDPT at 0xa000, then 4 page directories (0xb000..)
 *               identity-mapping the first 4 GiB with 2 MiB pages
 *   0x00020000  kernel command line (up to BOOT_CMDLINE_MAX bytes)
 *   0x0009fc00  start of the legacy reserved area (EBDA .. BIOS ROM)
 *   0x000a0000  ACPI tables (XSDT, MADT, FADT, DSDT, ...) up to 0xe0000
 *   0x000e0000  RSDP (inside the 0xe0000-0xfffff window Linux scans)
 *   0x00100000  start of high RAM; bzImage protected-mode code in classic boot
 *   0x01000000  vmlinux's own physical load address (LOAD_PHYSICAL_ADDR)
 *   top of RAM  initrd, page aligned, as high as the kernel allows
 */
#ifndef KHYVE_BOOT_LAYOUT_H
#define KHYVE_BOOT_LAYOUT_H

#define BOOT_GDT_GPA          0x500ULL
#define BOOT_ZERO_PAGE_GPA    0x7000ULL
#define BOOT_STACK_GPA        0x8ff0ULL
#define BOOT_PML4_GPA         0x9000ULL
#define BOOT_PDPT_GPA         0xa000ULL
#define BOOT_PD_GPA           0xb000ULL   /* 4 pages: 0xb000-0xefff */
#define BOOT_CMDLINE_GPA      0x20000ULL
#define BOOT_CMDLINE_MAX      0x10000ULL  /* bytes including the NUL */
#define BOOT_LOW_RAM_END      0x9fc00ULL
#define BOOT_ACPI_TABLES_GPA  0xa0000ULL
#define BOOT_ACPI_TABLES_END  0xe0000ULL
#define BOOT_RSDP_GPA         0xe0000ULL
#define BOOT_HIGH_RAM_GPA     0x100000ULL

/* RAM above this would overlap the 32-bit PCI hole; it moves above 4 GiB. */
#define BOOT_PCI_HOLE_GPA     0xc0000000ULL
#define BOOT_PCI_HOLE_END     0x100000000ULL

#endif
