/*
 * Linux direct boot: kernel image, command line, initrd, zero page.
 *
 * The order matters. The kernel goes in first because its extent decides
 * where the initrd may go; the command line and initrd follow; the zero page
 * is assembled in host memory throughout and copied into the guest last, so
 * nothing loaded later can clobber it and a failure never leaves a
 * half-written zero page looking valid.
 *
 * The bzImage is untrusted input. Its setup header is copied only as far as
 * the header says it extends (0x202 + the byte at 0x201, capped at the
 * struct we know), and every field we act on - setup_sects, payload
 * offset/length, init_size, kernel_alignment, pref_address - is checked
 * against the file size and against guest RAM (memmap_translate) before use.
 * The initrd is read straight from its file into guest memory.
 */
#include "linux_boot.h"
#include "errmsg.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot_layout.h"
#include "e820.h"
#include "elf_load.h"
#include "kernel_decompress.h"

/* Where the setup header sits in a bzImage, and what we require of it. */
#define SETUP_HEADER_OFFSET   0x1f1
#define SETUP_HEADER_LEN_BYTE 0x201   /* header end = 0x202 + this byte */
#define SETUP_HDRS_OFFSET     0x202
#define HDRS_MAGIC            0x53726448u  /* "HdrS" little-endian */
#define BOOT_FLAG_MAGIC       0xaa55
#define MIN_PROTOCOL          0x020c  /* 2.12: xloadflags, 64-bit entry */
#define RSDP_PROTOCOL         0x020e  /* 2.14: acpi_rsdp_addr honoured */
#define VMLINUX_PROTOCOL      0x020f  /* what we claim in a scratch zero page */
#define SECTOR                512
#define DEFAULT_SETUP_SECTS   4       /* setup_sects == 0 means 4 */
#define CLASSIC_ENTRY_OFFSET  0x200   /* 64-bit startup_64 of the compressed kernel */
#define LOADER_TYPE_UNDEFINED 0xff    /* no registered boot loader ID */
/*
 * End of the real-mode setup heap, relative to the setup segment. Only the
 * real-mode setup code uses it and we skip that code, but CAN_USE_HEAP
 * promises a sensible value: the usual 0xfe00 (64 KiB segment minus the
 * 512-byte stack margin).
 */
#define SETUP_HEAP_END        0xfe00
/* What x86-64 kernels advertise; used for a vmlinux, which has no header. */
#define VMLINUX_INITRD_ADDR_MAX   0x7fffffffu
#define VMLINUX_KERNEL_ALIGNMENT  0x1000000u
#define PAGE_SIZE_4K          0x1000ULL
#define FOUR_GIB              0x100000000ULL

/* Offset just past init_size, the last header field we depend on. */
#define HDR_NEEDED_END (SETUP_HEADER_OFFSET + offsetof(struct setup_header, init_size) + 4)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int open_regular(const char *what, const char *path, int *fd, uint64_t *size,
			char *err, size_t errlen)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return fail_with(err, errlen, "%s %s: %s", what, path, strerror(errno));
	struct stat st;
	const char *why = NULL;
	if (fstat(*fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	if (why) {
		close(*fd);
		*fd = -1;
		return fail_with(err, errlen, "%s %s: %s", what, path, why);
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Read exactly len bytes at off into dst; a short file is an error. */
static int read_exact(int fd, const char *what, const char *path, uint64_t off, void *dst,
		      uint64_t len, char *err, size_t errlen)
{
	uint8_t *p = dst;
	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pread(fd, p, chunk, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_with(err, errlen, "%s %s: read failed: %s", what, path,
				    strerror(errno));
		if (n == 0)
			return fail_with(err, errlen, "%s %s: file is truncated at offset %llu", what,
				    path, (unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* ---- the bzImage setup header ---- */

struct bzimage {
	const char *path;
	const uint8_t *file;
	uint64_t size;
	struct setup_header hdr;   /* bytes past the header's own end are 0 */
	uint64_t pm_offset;        /* protected-mode code: file offset ... */
	uint64_t pm_size;          /* ... and length */
};

static int parse_setup_header(struct bzimage *bz, char *err, size_t errlen)
{
	const uint8_t *f = bz->file;
	if (bz->size < SETUP_HDRS_OFFSET + 6)
		return fail_with(err, errlen, "kernel %s: truncated setup header (%llu bytes)", bz->path,
			    (unsigned long long)bz->size);
	uint16_t version = (uint16_t)(f[0x206] | f[0x207] << 8);
	if (version < MIN_PROTOCOL)
		return fail_with(err, errlen,
			    "kernel %s: boot protocol %u.%02u is too old (2.12 or later required)",
			    bz->path, version >> 8, version & 0xff);
	uint64_t hdr_end = SETUP_HDRS_OFFSET + (uint64_t)f[SETUP_HEADER_LEN_BYTE];
	if (hdr_end < HDR_NEEDED_END)
		return fail_with(err, errlen,
			    "kernel %s: setup header ends at 0x%llx, before init_size (0x%zx) which protocol 2.12 has",
			    bz->path, (unsigned long long)hdr_end, (size_t)HDR_NEEDED_END);
	if (hdr_end > bz->size)
		return fail_with(err, errlen, "kernel %s: file is truncated inside the setup header",
			    bz->path);
	uint64_t known_end = SETUP_HEADER_OFFSET + sizeof(struct setup_header);
	memset(&bz->hdr, 0, sizeof(bz->hdr));
	memcpy(&bz->hdr, f + SETUP_HEADER_OFFSET,
	       (hdr_end < known_end ? hdr_end : known_end) - SETUP_HEADER_OFFSET);

	const struct setup_header *h = &bz->hdr;
	if (h->boot_flag != BOOT_FLAG_MAGIC)
		return fail_with(err, errlen, "kernel %s: boot_flag is 0x%04x, not 0xaa55", bz->path,
			    h->boot_flag);
	if (!(h->xloadflags & XLF_KERNEL_64))
		return fail_with(err, errlen,
			    "kernel %s: xloadflags 0x%x lacks XLF_KERNEL_64 (not a 64-bit kernel)",
			    bz->path, h->xloadflags);
	if (!(h->loadflags & LOADED_HIGH))
		return fail_with(err, errlen,
			    "kernel %s: loadflags 0x%x lacks LOADED_HIGH (a zImage, not a bzImage)",
			    bz->path, h->loadflags);
	unsigned sects = h->setup_sects ? h->setup_sects : DEFAULT_SETUP_SECTS;
	bz->pm_offset = (uint64_t)(sects + 1) * SECTOR;
	if (bz->pm_offset >= bz->size)
		return fail_with(err, errlen,
			    "kernel %s: setup_sects %u puts the kernel at offset %llu, past the %llu-byte file",
			    bz->path, h->setup_sects, (unsigned long long)bz->pm_offset,
			    (unsigned long long)bz->size);
	bz->pm_size = bz->size - bz->pm_offset;
	return 0;
}

/* ---- loading the kernel image ---- */

struct loaded_kernel {
	uint64_t entry, start, end, decompressed;
	const char *how;
};

static const char *host_decompressed_how(const char *format)
{
	static const char *const names[][2] = {
		{ "gzip", "bzImage, host-decompressed gzip" },
		{ "xz", "bzImage, host-decompressed xz" },
		{ "lzma", "bzImage, host-decompressed lzma" },
		{ "lz4", "bzImage, host-decompressed lz4" },
		{ "zstd", "bzImage, host-decompressed zstd" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i][0], format) == 0)
			return names[i][1];
	return "bzImage, host-decompressed";
}

static bool ram_covers(const struct memmap *mem, uint64_t gpa, uint64_t len)
{
	return gpa + len >= gpa && memmap_translate(mem, gpa, len) != NULL;
}

/*
 * Where in guest RAM to decompress the payload, so that the kernel is
 * mostly in place the moment decompression ends. Every x86-64 vmlinux is
 * linked with its first PT_LOAD at file offset 2 MiB (the linker aligns
 * segments to the 2 MiB max-page-size) and physical address LOAD_PHYSICAL_ADDR,
 * which the bzImage announces as pref_address; and its later segments
 * follow at the same distance between file and memory, but for the small
 * per-CPU segment and what comes after it (moved down by a few hundred KiB).
 * Staged at pref_address - 2 MiB, text, rodata and data need no copy at all
 * and the rest moves a short way within pages already faulted in; with the
 * image decompressed into a buffer of its own instead, every byte would be
 * written twice and some 50 MiB of fresh host pages faulted in for nothing:
 * measured in the testbox, where faulting pages dominates host-side costs,
 * that is about a third of a second of the boot. A guess, not a
 * requirement: elf_load moves any layout correctly (memmove, in a safe
 * order). Returns the staging address, or 0 when the image does not fit in
 * RAM above khyve's boot structures (the caller then uses a buffer).
 */
static uint64_t staging_gpa(const struct setup_header *h, const struct memmap *mem,
			    size_t declared)
{
	const uint64_t first_segment_offset = 2ULL << 20;
	uint64_t gpa = h->pref_address - first_segment_offset;
	if (h->pref_address < first_segment_offset || gpa < BOOT_HIGH_RAM_GPA || gpa % 4096)
		return 0;
	return ram_covers(mem, gpa, declared) ? gpa : 0;
}

/* Zero [gpa, gpa+len) of guest RAM; it lies in one segment (caller checked). */
static void zero_guest(const struct memmap *mem, uint64_t gpa, uint64_t len)
{
	if (len)
		memset(memmap_translate(mem, gpa, len), 0, len);
}

static int load_bzimage_decompressed(const struct bzimage *bz, const struct memmap *mem,
				     struct loaded_kernel *k, char *err, size_t errlen)
{
	const struct setup_header *h = &bz->hdr;
	if (h->payload_offset > bz->pm_size || h->payload_length > bz->pm_size - h->payload_offset)
		return fail_with(err, errlen,
			    "kernel %s: payload_offset 0x%x + payload_length 0x%x exceed the %llu-byte protected-mode image",
			    bz->path, h->payload_offset, h->payload_length,
			    (unsigned long long)bz->pm_size);
	const uint8_t *payload = bz->file + bz->pm_offset + h->payload_offset;

	size_t vmlinux_len;
	const char *format;
	char why[192];
	if (kernel_payload_probe(payload, h->payload_length, &vmlinux_len, &format, why,
				 sizeof(why)) != 0)
		return fail_with(err, errlen, "kernel %s: %s", bz->path, why);
	uint64_t stage = staging_gpa(h, mem, vmlinux_len);
	uint8_t *vmlinux = stage ? memmap_translate(mem, stage, vmlinux_len) : malloc(vmlinux_len);
	if (!vmlinux)
		return fail_with(err, errlen, "kernel %s: cannot allocate %zu bytes for the decompressed kernel",
			    bz->path, vmlinux_len);
	int r = kernel_decompress_into(payload, h->payload_length, vmlinux, vmlinux_len, why,
				       sizeof(why));
	if (r != 0)
		fail_with(err, errlen, "kernel %s: %s", bz->path, why);
	else if (!elf_has_magic(vmlinux, vmlinux_len))
		r = fail_with(err, errlen, "kernel %s: decompressed %s payload is not an ELF vmlinux",
			      bz->path, format);
	/*
	 * The stream may end with the KASLR relocation table after the ELF;
	 * it is never needed, because we load at the link address (p_paddr),
	 * so the ELF loader simply never reads that far.
	 */
	struct elf_image img;
	if (r == 0) {
		char name[160];
		snprintf(name, sizeof(name), "kernel %s (decompressed payload)", bz->path);
		struct elf_source src = { .name = name, .buf = vmlinux, .fd = -1,
					  .size = vmlinux_len };
		r = elf_load(&src, mem, BOOT_HIGH_RAM_GPA, &img, err, errlen);
	}
	if (stage) {
		/*
		 * What the kernel image does not cover (the ELF headers below it,
		 * the relocation table above; everything, on failure) goes back
		 * to zero: guest RAM holds nothing but what we loaded on purpose.
		 */
		uint64_t end = stage + vmlinux_len;
		uint64_t lo = r == 0 ? img.load_start : end, hi = r == 0 ? img.load_end : end;
		if (lo > stage)
			zero_guest(mem, stage, (lo < end ? lo : end) - stage);
		if (hi < end)
			zero_guest(mem, hi > stage ? hi : stage, end - (hi > stage ? hi : stage));
	} else {
		free(vmlinux);
	}
	if (r != 0)
		return -1;
	/*
	 * After decompression the kernel needs only its image up to _end (brk
	 * included): init_size covers the decompressor's own working space,
	 * which we never run. So the initrd may start right after the image.
	 */
	*k = (struct loaded_kernel){ .entry = img.entry, .start = img.load_start,
				     .end = img.load_end, .decompressed = vmlinux_len,
				     .how = host_decompressed_how(format) };
	return 0;
}

/*
 * Classic load: where the protected-mode kernel goes, and where its
 * decompressor will then run. A relocatable kernel goes at pref_address when
 * that is aligned and fits, else at the first kernel_alignment boundary above
 * 1 MiB; a non-relocatable one at 1 MiB (it moves itself to pref_address).
 * The decompressor's run address is the load address rounded up to
 * kernel_alignment but never below LOAD_PHYSICAL_ADDR (= pref_address),
 * exactly as arch/x86/boot/compressed/head_64.S computes it, and it needs
 * init_size bytes of RAM from there.
 */
static int load_bzimage_classic(const struct bzimage *bz, const struct memmap *mem,
				struct loaded_kernel *k, char *err, size_t errlen)
{
	const struct setup_header *h = &bz->hdr;
	if (bz->pm_size <= CLASSIC_ENTRY_OFFSET)
		return fail_with(err, errlen,
			    "kernel %s: protected-mode image of %llu bytes has no 64-bit entry at +0x200",
			    bz->path, (unsigned long long)bz->pm_size);
	uint64_t align = h->kernel_alignment;
	if (align < PAGE_SIZE_4K || align > (1ULL << 30) || (align & (align - 1)))
		return fail_with(err, errlen,
			    "kernel %s: kernel_alignment 0x%x is not a power of two between 4 KiB and 1 GiB",
			    bz->path, h->kernel_alignment);
	uint64_t pref = h->pref_address;
	uint64_t span = bz->pm_size > h->init_size ? bz->pm_size : h->init_size;
	uint64_t load, run;
	if (h->relocatable_kernel) {
		if (pref >= BOOT_HIGH_RAM_GPA && pref % align == 0 && ram_covers(mem, pref, span))
			load = pref;
		else
			load = align_up(BOOT_HIGH_RAM_GPA, align);
		run = align_up(load, align);
		if (run < pref)
			run = pref;
	} else {
		load = BOOT_HIGH_RAM_GPA;
		run = pref;
	}
	if (!ram_covers(mem, load, bz->pm_size))
		return fail_with(err, errlen,
			    "kernel %s: %llu-byte protected-mode image at 0x%llx is not inside guest RAM",
			    bz->path, (unsigned long long)bz->pm_size, (unsigned long long)load);
	if (run < BOOT_HIGH_RAM_GPA || !ram_covers(mem, run, h->init_size))
		return fail_with(err, errlen,
			    "kernel %s: init_size 0x%x at run address 0x%llx is not inside guest RAM (too little memory?)",
			    bz->path, h->init_size, (unsigned long long)run);
	memcpy(memmap_translate(mem, load, bz->pm_size), bz->file + bz->pm_offset, bz->pm_size);
	uint64_t end = load + bz->pm_size;
	if (run + h->init_size > end)
		end = run + h->init_size;
	*k = (struct loaded_kernel){ .entry = load + CLASSIC_ENTRY_OFFSET,
				     .start = load < run ? load : run, .end = end,
				     .how = "bzImage, classic (guest decompresses)" };
	return 0;
}

/* Read a bzImage into memory whole; it is small and needed at random. */
static int read_bzimage(int fd, const char *path, uint64_t size, uint8_t **file, char *err,
			size_t errlen)
{
	if (size > LINUX_BOOT_BZIMAGE_MAX)
		return fail_with(err, errlen, "kernel %s: %llu bytes exceeds the %llu MiB bzImage limit",
			    path, (unsigned long long)size, LINUX_BOOT_BZIMAGE_MAX >> 20);
	*file = malloc(size);
	if (!*file)
		return fail_with(err, errlen, "kernel %s: cannot allocate %llu bytes", path,
			    (unsigned long long)size);
	if (read_exact(fd, "kernel", path, 0, *file, size, err, errlen) != 0) {
		free(*file);
		*file = NULL;
		return -1;
	}
	return 0;
}

/* ---- command line, initrd, zero page ---- */

static int write_cmdline(const char *cmdline, uint64_t max_chars, const struct memmap *mem,
			 char *err, size_t errlen)
{
	if (!cmdline)
		cmdline = "";
	size_t len = strlen(cmdline);
	if (max_chars > BOOT_CMDLINE_MAX - 1)
		max_chars = BOOT_CMDLINE_MAX - 1;
	if (len > max_chars)
		return fail_with(err, errlen,
			    "kernel command line is %zu bytes; this kernel accepts at most %llu",
			    len, (unsigned long long)max_chars);
	char *dst = memmap_translate(mem, BOOT_CMDLINE_GPA, len + 1);
	if (!dst)
		return fail_with(err, errlen, "guest RAM does not cover the command line at 0x%llx",
			    BOOT_CMDLINE_GPA);
	memcpy(dst, cmdline, len + 1);
	return 0;
}

/* Highest page-aligned start for size bytes within [lo, hi), or 0 if none. */
static uint64_t highest_fit(uint64_t lo, uint64_t hi, uint64_t size)
{
	lo = align_up(lo, PAGE_SIZE_4K);
	if (hi <= lo || hi - lo < size)
		return 0;
	uint64_t start = (hi - size) & ~(PAGE_SIZE_4K - 1);
	return start >= lo ? start : 0;
}

/*
 * The initrd goes as high as possible below limit, in one RAM segment,
 * clear of the kernel [kstart, kend) and of low memory. Linux does the same
 * search itself when it relocates an initrd; starting high keeps the space
 * right above the kernel free for its early allocations.
 */
static uint64_t place_initrd(const struct memmap *mem, uint64_t size, uint64_t limit,
			     uint64_t kstart, uint64_t kend)
{
	uint64_t best = 0;
	for (size_t i = 0; i < mem->nsegs; i++) {
		uint64_t lo = mem->segs[i].gpa, hi = lo + mem->segs[i].len;
		if (hi < lo)
			continue;
		if (hi > limit)
			hi = limit;
		/* Window above the kernel, then window between 1 MiB and the kernel. */
		uint64_t above = highest_fit(lo > kend ? lo : kend, hi, size);
		uint64_t blo = lo > BOOT_HIGH_RAM_GPA ? lo : BOOT_HIGH_RAM_GPA;
		uint64_t below = highest_fit(blo, hi < kstart ? hi : kstart, size);
		if (above > best)
			best = above;
		if (below > best)
			best = below;
	}
	return best;
}

static int load_initrd(const char *path, const struct memmap *mem, uint32_t initrd_addr_max,
		       const struct loaded_kernel *k, struct boot_params *bp,
		       struct linux_boot_entry *out, char *err, size_t errlen)
{
	int fd;
	uint64_t size;
	if (open_regular("initrd", path, &fd, &size, err, errlen) != 0)
		return -1;
	if (size == 0) {
		close(fd);
		return fail_with(err, errlen, "initrd %s: file is empty", path);
	}
	uint64_t limit = (uint64_t)initrd_addr_max + 1;
	if (limit > FOUR_GIB)
		limit = FOUR_GIB;
	uint64_t gpa = size < limit ? place_initrd(mem, size, limit, k->start, k->end) : 0;
	if (gpa == 0) {
		close(fd);
		return fail_with(err, errlen,
			    "initrd %s: %llu bytes do not fit in guest RAM below 0x%llx outside the kernel at 0x%llx-0x%llx",
			    path, (unsigned long long)size, (unsigned long long)limit,
			    (unsigned long long)k->start, (unsigned long long)k->end);
	}
	int r = read_exact(fd, "initrd", path, 0, memmap_translate(mem, gpa, size), size, err,
			   errlen);
	close(fd);
	if (r != 0)
		return -1;
	bp->hdr.ramdisk_image = (uint32_t)gpa;
	bp->ext_ramdisk_image = (uint32_t)(gpa >> 32);
	bp->hdr.ramdisk_size = (uint32_t)size;
	bp->ext_ramdisk_size = (uint32_t)(size >> 32);
	out->initrd_gpa = gpa;
	out->initrd_size = size;
	return 0;
}

/* The setup header of a kernel that has none (a vmlinux), as Firecracker writes it. */
static void scratch_setup_header(struct setup_header *h)
{
	h->boot_flag = BOOT_FLAG_MAGIC;
	h->header = HDRS_MAGIC;
	h->version = VMLINUX_PROTOCOL;
	h->kernel_alignment = VMLINUX_KERNEL_ALIGNMENT;
	h->initrd_addr_max = VMLINUX_INITRD_ADDR_MAX;
	h->cmdline_size = BOOT_CMDLINE_MAX - 1;
	h->xloadflags = XLF_KERNEL_64;
	h->relocatable_kernel = 1;
}

/* Loader-owned fields, common to all three ways in. */
static void fill_loader_fields(struct boot_params *bp)
{
	struct setup_header *h = &bp->hdr;
	h->type_of_loader = LOADER_TYPE_UNDEFINED;
	/*
	 * Keep the kernel's own bits, add what a 64-bit loader promises, and
	 * drop the flags that are outputs or obsolete: KASLR_FLAG is set by
	 * the decompressor when it randomised, which the host path did not do.
	 */
	h->loadflags = (uint8_t)((h->loadflags & ~(KASLR_FLAG | KEEP_SEGMENTS)) | LOADED_HIGH |
				 CAN_USE_HEAP);
	h->heap_end_ptr = SETUP_HEAP_END;
	h->cmd_line_ptr = (uint32_t)BOOT_CMDLINE_GPA;
	bp->ext_cmd_line_ptr = (uint32_t)(BOOT_CMDLINE_GPA >> 32);
	/*
	 * We pass no setup_data list and set the ramdisk only if we load one:
	 * never forward a pointer from the file.
	 */
	h->setup_data = 0;
	h->ramdisk_image = h->ramdisk_size = 0;
	if (h->version >= RSDP_PROTOCOL)
		bp->acpi_rsdp_addr = BOOT_RSDP_GPA;
}

int linux_boot_load(const struct linux_boot_params_in *in, const struct memmap *mem,
		    struct linux_boot_entry *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!in->kernel_path)
		return fail_with(err, errlen, "no kernel file given");
	uint8_t *zero_page = memmap_translate(mem, BOOT_ZERO_PAGE_GPA, sizeof(struct boot_params));
	if (!zero_page)
		return fail_with(err, errlen, "guest RAM does not cover the zero page at 0x%llx",
			    BOOT_ZERO_PAGE_GPA);

	int fd;
	uint64_t size;
	if (open_regular("kernel", in->kernel_path, &fd, &size, err, errlen) != 0)
		return -1;
	uint8_t head[SETUP_HDRS_OFFSET + 4] = { 0 };
	size_t headlen = size < sizeof(head) ? (size_t)size : sizeof(head);
	if (read_exact(fd, "kernel", in->kernel_path, 0, head, headlen, err, errlen) != 0) {
		close(fd);
		return -1;
	}

	/* Assembled on the heap (4 KiB), copied into the guest last. */
	struct boot_params *bp = calloc(1, sizeof(*bp));
	if (!bp) {
		close(fd);
		return fail_with(err, errlen, "out of memory for the zero page");
	}
	struct loaded_kernel k = { 0 };
	int r;
	if (elf_has_magic(head, headlen)) {
		if (in->classic) {
			r = fail_with(err, errlen,
				 "kernel %s: classic boot needs a bzImage, this is a vmlinux ELF",
				 in->kernel_path);
		} else {
			struct elf_source src = { .name = in->kernel_path, .fd = fd, .size = size };
			struct elf_image img;
			r = elf_load(&src, mem, BOOT_HIGH_RAM_GPA, &img, err, errlen);
			if (r == 0)
				k = (struct loaded_kernel){ .entry = img.entry,
							    .start = img.load_start,
							    .end = img.load_end,
							    .how = "vmlinux ELF" };
			scratch_setup_header(&bp->hdr);
		}
		close(fd);
	} else if (headlen == sizeof(head) &&
		   memcmp(head + SETUP_HDRS_OFFSET, "HdrS", 4) == 0) {
		struct bzimage bz = { .path = in->kernel_path, .size = size };
		uint8_t *file = NULL;
		r = read_bzimage(fd, in->kernel_path, size, &file, err, errlen);
		close(fd);
		if (r == 0) {
			bz.file = file;
			r = parse_setup_header(&bz, err, errlen);
			if (r == 0 && in->classic)
				r = load_bzimage_classic(&bz, mem, &k, err, errlen);
			else if (r == 0)
				r = load_bzimage_decompressed(&bz, mem, &k, err, errlen);
			if (r == 0) {
				bp->hdr = bz.hdr;
				if (in->classic)
					bp->hdr.code32_start = (uint32_t)(k.entry - CLASSIC_ENTRY_OFFSET);
			}
			free(file);
		}
	} else {
		close(fd);
		r = fail_with(err, errlen,
			 "kernel %s: neither a bzImage (no \"HdrS\" at 0x202) nor an ELF vmlinux",
			 in->kernel_path);
	}
	if (r != 0)
		goto out;

	fill_loader_fields(bp);
	r = write_cmdline(in->cmdline, bp->hdr.cmdline_size, mem, err, errlen);
	if (r == 0 && in->initrd_path)
		r = load_initrd(in->initrd_path, mem, bp->hdr.initrd_addr_max, &k, bp, out, err,
				errlen);
	if (r != 0)
		goto out;

	struct boot_e820_entry map[E820_MAX_ENTRIES_ZEROPAGE];
	unsigned n;
	r = e820_build(mem, map, E820_MAX_ENTRIES_ZEROPAGE, &n, err, errlen);
	if (r != 0)
		goto out;
	memcpy(bp->e820_table, map, n * sizeof(map[0]));
	bp->e820_entries = (uint8_t)n;

	memcpy(zero_page, bp, sizeof(*bp));
	out->rip = k.entry;
	out->rsi = BOOT_ZERO_PAGE_GPA;
	out->how = k.how;
	out->kernel_start = k.start;
	out->kernel_end = k.end;
	out->decompressed_size = k.decompressed;
	out->e820_entries = n;
	out->protocol = bp->hdr.version;
out:
	free(bp);
	return r;
}
