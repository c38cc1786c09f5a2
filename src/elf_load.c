/*
 * vmlinux ELF loader. Two passes over the program headers: the first
 * validates every PT_LOAD (file range, memory range, RAM coverage) without
 * touching guest memory, the second copies. So a malformed ELF is refused
 * before any byte of guest RAM changes, and the error names the first bad
 * segment rather than whatever happened to be copied last.
 */
#include "elf_load.h"
#include "errmsg.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool elf_has_magic(const uint8_t *p, size_t len)
{
	return len >= SELFMAG && memcmp(p, ELFMAG, SELFMAG) == 0;
}

/* Copy [off, off+len) of the image to dst; the range must be inside it. */
static int source_read(const struct elf_source *src, uint64_t off, void *dst, uint64_t len,
		       char *err, size_t errlen)
{
	if (off > src->size || len > src->size - off)
		return fail_with(err, errlen, "%s: bytes 0x%llx+0x%llx lie past the end of the %llu-byte image",
			    src->name, (unsigned long long)off, (unsigned long long)len,
			    (unsigned long long)src->size);
	if (src->buf) {
		memcpy(dst, src->buf + off, len);
		return 0;
	}
	uint8_t *p = dst;
	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pread(src->fd, p, chunk, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_with(err, errlen, "%s: read at offset %llu failed: %s", src->name,
				    (unsigned long long)off, strerror(errno));
		if (n == 0)
			return fail_with(err, errlen, "%s: file is truncated at offset %llu", src->name,
				    (unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int check_header(const struct elf_source *src, const Elf64_Ehdr *eh, char *err,
			size_t errlen)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return fail_with(err, errlen, "%s: not an ELF file (bad magic)", src->name);
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return fail_with(err, errlen, "%s: ELF class %u is not ELF64", src->name,
			    eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return fail_with(err, errlen, "%s: ELF data encoding %u is not little-endian", src->name,
			    eh->e_ident[EI_DATA]);
	if (eh->e_machine != EM_X86_64)
		return fail_with(err, errlen, "%s: ELF e_machine %u is not x86-64 (%u)", src->name,
			    eh->e_machine, EM_X86_64);
	if (eh->e_type != ET_EXEC)
		return fail_with(err, errlen, "%s: ELF e_type %u is not ET_EXEC", src->name, eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return fail_with(err, errlen, "%s: ELF e_phentsize %u is not %zu", src->name,
			    eh->e_phentsize, sizeof(Elf64_Phdr));
	if (eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
		return fail_with(err, errlen, "%s: ELF e_phnum %u is outside 1..%u", src->name,
			    eh->e_phnum, ELF_MAX_PHDRS);
	return 0;
}

static int check_segment(const struct elf_source *src, const struct memmap *mem,
			 uint64_t min_gpa, unsigned i, const Elf64_Phdr *ph, char *err,
			 size_t errlen)
{
	if (ph->p_filesz > ph->p_memsz)
		return fail_with(err, errlen, "%s: PT_LOAD %u has p_filesz 0x%llx > p_memsz 0x%llx",
			    src->name, i, (unsigned long long)ph->p_filesz,
			    (unsigned long long)ph->p_memsz);
	if (ph->p_offset > src->size || ph->p_filesz > src->size - ph->p_offset)
		return fail_with(err, errlen,
			    "%s: PT_LOAD %u file range p_offset 0x%llx + p_filesz 0x%llx is past the end of the %llu-byte image",
			    src->name, i, (unsigned long long)ph->p_offset,
			    (unsigned long long)ph->p_filesz, (unsigned long long)src->size);
	if (ph->p_paddr < min_gpa)
		return fail_with(err, errlen,
			    "%s: PT_LOAD %u at p_paddr 0x%llx is below 0x%llx, where khyve keeps its boot structures",
			    src->name, i, (unsigned long long)ph->p_paddr,
			    (unsigned long long)min_gpa);
	if (ph->p_memsz && !memmap_translate(mem, ph->p_paddr, ph->p_memsz))
		return fail_with(err, errlen,
			    "%s: PT_LOAD %u at p_paddr 0x%llx size 0x%llx is not inside guest RAM",
			    src->name, i, (unsigned long long)ph->p_paddr,
			    (unsigned long long)ph->p_memsz);
	return 0;
}

/*
 * e_entry of a vmlinux is physical; an ELF whose entry is virtual is mapped
 * through the PT_LOAD containing it, which is what the linker meant.
 */
static bool resolve_entry(const Elf64_Phdr *ph, unsigned n, uint64_t e_entry, uint64_t *entry)
{
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && e_entry >= ph[i].p_paddr &&
		    e_entry - ph[i].p_paddr < ph[i].p_memsz) {
			*entry = e_entry;
			return true;
		}
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && e_entry >= ph[i].p_vaddr &&
		    e_entry - ph[i].p_vaddr < ph[i].p_memsz) {
			*entry = ph[i].p_paddr + (e_entry - ph[i].p_vaddr);
			return true;
		}
	return false;
}

/* Second pass for a file: pread each segment into place, zero its bss. */
static int read_segments(const struct elf_source *src, const struct memmap *mem,
			 const Elf64_Phdr *ph, unsigned n, char *err, size_t errlen)
{
	for (unsigned i = 0; i < n; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		uint8_t *dst = memmap_translate(mem, ph[i].p_paddr, ph[i].p_memsz);
		if (source_read(src, ph[i].p_offset, dst, ph[i].p_filesz, err, errlen) != 0)
			return -1;
		memset(dst + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
	}
	return 0;
}

struct segment_move {
	uint8_t *dst;
	const uint8_t *src;
	uint64_t filesz, memsz;
};

static bool moves_down(const struct segment_move *m)
{
	return (uintptr_t)m->dst <= (uintptr_t)m->src;
}

/* Downward moves first, lowest destination first; then upward, highest first. */
static int move_order(const void *a, const void *b)
{
	const struct segment_move *x = a, *y = b;
	if (moves_down(x) != moves_down(y))
		return moves_down(x) ? -1 : 1;
	if (x->dst == y->dst)
		return 0;
	bool x_lower = (uintptr_t)x->dst < (uintptr_t)y->dst;
	return moves_down(x) == x_lower ? -1 : 1;
}

static bool overlap(const void *a, uint64_t alen, const void *b, uint64_t blen)
{
	uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
	return alen && blen && pa < pb + blen && pb < pa + alen;
}

/*
 * Second pass for an image in memory. The image may be staged in guest RAM
 * itself -- linux_boot.c decompresses a bzImage payload there so that most
 * of the kernel is already where it belongs -- and then a segment's
 * destination can overlap its own source or another segment's. So every
 * segment is moved with memmove, in an order in which no move overwrites
 * bytes a later move still has to read: the segments moving down in
 * ascending order, then those moving up in descending order. Should a
 * (contrived) layout conflict even in that order, the image is copied aside
 * first. The bss tails are zeroed only after every move, for the same
 * reason.
 */
static int move_segments(const struct elf_source *src, const struct memmap *mem,
			 const Elf64_Phdr *ph, unsigned n, bool *copied_aside, char *err,
			 size_t errlen)
{
	struct segment_move m[ELF_MAX_PHDRS];
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_memsz != 0)
			m[k++] = (struct segment_move){
				.dst = memmap_translate(mem, ph[i].p_paddr, ph[i].p_memsz),
				.src = src->buf + ph[i].p_offset,
				.filesz = ph[i].p_filesz, .memsz = ph[i].p_memsz };
	qsort(m, k, sizeof(m[0]), move_order);

	bool conflict = false;
	for (unsigned i = 0; i < k && !conflict; i++)
		for (unsigned j = i + 1; j < k && !conflict; j++)
			conflict = overlap(m[i].dst, m[i].filesz, m[j].src, m[j].filesz);
	uint8_t *aside = NULL;
	*copied_aside = conflict;
	if (conflict) {
		aside = malloc(src->size);
		if (!aside)
			return fail_with(err, errlen, "%s: cannot allocate %llu bytes to load it from",
				    src->name, (unsigned long long)src->size);
		memcpy(aside, src->buf, src->size);
		for (unsigned i = 0; i < k; i++)
			m[i].src = aside + (m[i].src - src->buf);
	}
	for (unsigned i = 0; i < k; i++)
		if (m[i].dst != m[i].src)
			memmove(m[i].dst, m[i].src, m[i].filesz);
	for (unsigned i = 0; i < k; i++)
		memset(m[i].dst + m[i].filesz, 0, m[i].memsz - m[i].filesz);
	free(aside);
	return 0;
}

int elf_load(const struct elf_source *src, const struct memmap *mem, uint64_t min_gpa,
	     struct elf_image *out, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	if (src->size < sizeof(eh))
		return fail_with(err, errlen, "%s: %llu bytes is too short for an ELF header", src->name,
			    (unsigned long long)src->size);
	if (source_read(src, 0, &eh, sizeof(eh), err, errlen) != 0)
		return -1;
	if (check_header(src, &eh, err, errlen) != 0)
		return -1;

	Elf64_Phdr ph[ELF_MAX_PHDRS];
	uint64_t phbytes = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
	if (eh.e_phoff > src->size || phbytes > src->size - eh.e_phoff)
		return fail_with(err, errlen,
			    "%s: program headers at e_phoff 0x%llx (%u entries) are past the end of the image",
			    src->name, (unsigned long long)eh.e_phoff, eh.e_phnum);
	if (source_read(src, eh.e_phoff, ph, phbytes, err, errlen) != 0)
		return -1;

	struct elf_image img = { .load_start = UINT64_MAX };
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (check_segment(src, mem, min_gpa, i, &ph[i], err, errlen) != 0)
			return -1;
		if (ph[i].p_memsz == 0)
			continue;
		img.nsegments++;
		if (ph[i].p_paddr < img.load_start)
			img.load_start = ph[i].p_paddr;
		/* No overflow: memmap_translate accepted the whole range. */
		if (ph[i].p_paddr + ph[i].p_memsz > img.load_end)
			img.load_end = ph[i].p_paddr + ph[i].p_memsz;
	}
	if (img.nsegments == 0)
		return fail_with(err, errlen, "%s: ELF has no non-empty PT_LOAD segment", src->name);
	if (!resolve_entry(ph, eh.e_phnum, eh.e_entry, &img.entry))
		return fail_with(err, errlen, "%s: ELF entry point 0x%llx is not inside any PT_LOAD",
			    src->name, (unsigned long long)eh.e_entry);

	int r = src->buf ? move_segments(src, mem, ph, eh.e_phnum, &img.copied_aside, err, errlen)
			 : read_segments(src, mem, ph, eh.e_phnum, err, errlen);
	if (r != 0)
		return -1;
	*out = img;
	return 0;
}
