/*
 * Loading an x86-64 vmlinux ELF into guest memory.
 *
 * A vmlinux is an ET_EXEC ELF64 whose PT_LOAD segments carry both the
 * kernel's virtual link address (p_vaddr, 0xffffffff81000000...) and the
 * physical address it expects to run at (p_paddr, LOAD_PHYSICAL_ADDR
 * 0x1000000 onwards). Like the kernel's own extractor (parse_elf() in
 * arch/x86/boot/compressed/misc.c), we place every PT_LOAD at p_paddr;
 * e_entry is the physical address of startup_64 (the linker script says
 * ENTRY(phys_startup_64)).
 *
 * The file is untrusted: every header field, offset and length is checked
 * before use, and every destination range goes through memmap_translate as a
 * whole, so a hostile ELF can neither read past the image nor write outside
 * guest RAM. The image is read either from memory (a decompressed bzImage
 * payload, which may lie in guest RAM itself, overlapping where its segments
 * go) or straight from a file descriptor with pread, so a plain vmlinux
 * (possibly hundreds of MiB with debug info) is never copied whole into host
 * memory.
 */
#ifndef KHYVE_ELF_LOAD_H
#define KHYVE_ELF_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memmap.h"

/* Where the ELF bytes come from: buf when non-NULL, else pread on fd. */
struct elf_source {
	const char *name;      /* for error messages, e.g. the file path */
	const uint8_t *buf;
	int fd;
	uint64_t size;         /* bytes available (file or buffer size) */
};

struct elf_image {
	uint64_t entry;        /* guest-physical entry point */
	uint64_t load_start;   /* lowest p_paddr of a PT_LOAD */
	uint64_t load_end;     /* highest p_paddr + p_memsz (bss included) */
	unsigned nsegments;    /* PT_LOADs loaded */
	bool copied_aside;     /* the in-memory image overlapped its segments so that
				  no move order was safe: it was copied first */
};

/* Bound on program headers; a vmlinux has about 5. */
#define ELF_MAX_PHDRS 64

/* True when the bytes start with the ELF magic. */
bool elf_has_magic(const uint8_t *p, size_t len);

/*
 * Load every PT_LOAD of an ELF64 x86-64 ET_EXEC image at its p_paddr,
 * zeroing the bss tail. Segments must lie wholly in guest RAM at or above
 * min_gpa (khyve's boot structures live below it). Returns 0, or -1 with a
 * one-line reason in err. On failure guest memory may be partly written.
 */
int elf_load(const struct elf_source *src, const struct memmap *mem, uint64_t min_gpa,
	     struct elf_image *out, char *err, size_t errlen);

#endif
