/*
 * Unit tests for Linux direct boot (linux_boot.c, elf_load.c).
 *
 * Fixtures are synthesised at test time in a private temporary directory: a
 * minimal vmlinux ELF (text PT_LOAD, data PT_LOAD with a bss tail, a
 * PT_NOTE, and trailing bytes standing in for the relocation table the real
 * payload carries), and bzImages wrapping a gzip- or xz-compressed copy of
 * it behind a protocol 2.15 setup header. They are loaded into a malloc'd
 * 64 MiB guest, pre-filled with 0xcc so that untouched, zeroed and copied
 * bytes are all distinguishable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <elf.h>
#include <lzma.h>
#include <zlib.h>

#include "boot_layout.h"
#include "e820.h"
#include "elf_load.h"
#include "linux_boot.h"
#include "payload.h"

#define MiB (1ULL << 20)
#define GUEST_RAM (64 * MiB)
#define FILL 0xcc

/* The synthetic vmlinux. */
#define TEXT_PADDR  0x1000000ULL
#define TEXT_VADDR  0xffffffff81000000ULL
#define TEXT_OFF    0x1000
#define TEXT_SIZE   0x3000
#define DATA_PADDR  0x1200000ULL
#define DATA_OFF    0x4000
#define DATA_FILESZ 0x1000
#define DATA_MEMSZ  0x5000     /* 0x4000 bytes of bss */
#define RELOCS_SIZE 0x800
#define ELF_SIZE    (DATA_OFF + DATA_FILESZ + RELOCS_SIZE)

/* The synthetic bzImage: 4 setup sectors, then the protected-mode part. */
#define SETUP_SECTS  4
#define PM_OFFSET    ((SETUP_SECTS + 1) * 512)
#define PAYLOAD_OFF  0x400     /* payload_offset, within the protected-mode part */
#define PM_TAIL      0x100
#define INIT_SIZE    0x800000

static uint8_t *guest;
static struct mem_segment guest_seg;
static struct memmap guest_mem = { .segs = &guest_seg, .nsegs = 1 };
static char tmpdir[] = "/tmp/khyve-test-linux-boot-XXXXXX";
static char kernel_path[128], initrd_path[128];

static uint8_t text_byte(size_t i) { return (uint8_t)(i * 7 + 1); }
static uint8_t data_byte(size_t i) { return (uint8_t)(i * 13 + 5); }

static Elf64_Ehdr *ehdr(struct buf *b) { return (Elf64_Ehdr *)b->p; }
static Elf64_Phdr *phdr(struct buf *b, int i)
{
	return (Elf64_Phdr *)(b->p + sizeof(Elf64_Ehdr)) + i;
}

/* An x86-64 ET_EXEC header, program headers right after it. */
static void elf_header(Elf64_Ehdr *eh, uint64_t entry, uint16_t phnum)
{
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = phnum;
}

/* vmlinux: PT_LOAD text, PT_NOTE, PT_LOAD data+bss, relocs after. */
static struct buf make_vmlinux(uint64_t text_paddr, uint64_t data_paddr)
{
	struct buf b = { calloc(1, ELF_SIZE), ELF_SIZE };
	assert_non_null(b.p);
	Elf64_Ehdr *eh = ehdr(&b);
	elf_header(eh, text_paddr /* phys_startup_64 */, 3);
	*phdr(&b, 0) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X,
				     .p_offset = TEXT_OFF, .p_vaddr = TEXT_VADDR,
				     .p_paddr = text_paddr, .p_filesz = TEXT_SIZE,
				     .p_memsz = TEXT_SIZE, .p_align = 0x200000 };
	*phdr(&b, 1) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x100, .p_vaddr = 0,
				     .p_paddr = 0, .p_filesz = 0x20, .p_memsz = 0x20 };
	*phdr(&b, 2) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_W,
				     .p_offset = DATA_OFF,
				     .p_vaddr = TEXT_VADDR + (data_paddr - text_paddr),
				     .p_paddr = data_paddr, .p_filesz = DATA_FILESZ,
				     .p_memsz = DATA_MEMSZ, .p_align = 0x200000 };
	for (size_t i = 0; i < TEXT_SIZE; i++)
		b.p[TEXT_OFF + i] = text_byte(i);
	for (size_t i = 0; i < DATA_FILESZ; i++)
		b.p[DATA_OFF + i] = data_byte(i);
	memset(b.p + DATA_OFF + DATA_FILESZ, 0xee, RELOCS_SIZE);
	return b;
}

static struct setup_header *bz_hdr(struct buf *b)
{
	return (struct setup_header *)(b->p + 0x1f1);
}

static struct buf make_bzimage(const struct buf *payload)
{
	size_t len = PM_OFFSET + PAYLOAD_OFF + payload->len + PM_TAIL;
	struct buf b = { calloc(1, len), len };
	assert_non_null(b.p);
	struct setup_header h = {
		.setup_sects = SETUP_SECTS,
		.boot_flag = 0xaa55,
		.jump = 0x6aeb,                 /* jmp over the header; 0x6a = its length */
		.header = 0x53726448,           /* "HdrS" */
		.version = 0x020f,
		.loadflags = LOADED_HIGH,
		.ramdisk_image = 0x12345678,    /* junk a loader must overwrite */
		.kernel_alignment = 0x200000,
		.relocatable_kernel = 1,
		.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
		.cmdline_size = 2047,
		.initrd_addr_max = 0x7fffffff,
		.payload_offset = PAYLOAD_OFF,
		.payload_length = (uint32_t)payload->len,
		.setup_data = 0xdeadbeef,       /* likewise */
		.pref_address = 0x1000000,
		.init_size = INIT_SIZE,
	};
	memcpy(b.p + 0x1f1, &h, sizeof(h));
	assert_int_equal(b.p[0x201], 0x6a);
	assert_int_equal(0x202 + b.p[0x201], 0x1f1 + sizeof(h));
	/* Protected-mode code: startup_32, then startup_64 at +0x200. */
	for (size_t i = 0; i < PAYLOAD_OFF; i++)
		b.p[PM_OFFSET + i] = (uint8_t)(0x40 + i);
	b.p[PM_OFFSET + 0x200] = 0xfc;  /* cld */
	b.p[PM_OFFSET + 0x201] = 0xfa;  /* cli */
	memcpy(b.p + PM_OFFSET + PAYLOAD_OFF, payload->p, payload->len);
	memset(b.p + len - PM_TAIL, 0x99, PM_TAIL);
	return b;
}

static struct buf make_bzimage_gzip(void)
{
	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	struct buf pl = compress_gzip(&elf);
	struct buf bz = make_bzimage(&pl);
	free(elf.p);
	free(pl.p);
	return bz;
}

static void write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_kernel(const struct buf *b) { write_file(kernel_path, b->p, b->len); }

static struct buf write_initrd(size_t len)
{
	struct buf b = { malloc(len), len };
	for (size_t i = 0; i < len; i++)
		b.p[i] = (uint8_t)(i * 31 + (i >> 12));
	write_file(initrd_path, b.p, len);
	return b;
}

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(kernel_path, sizeof(kernel_path), "%s/kernel", tmpdir);
	snprintf(initrd_path, sizeof(initrd_path), "%s/initrd", tmpdir);
	guest = malloc(GUEST_RAM);
	guest_seg = (struct mem_segment){ .gpa = 0, .len = GUEST_RAM, .hva = guest };
	return guest ? 0 : -1;
}

static int group_teardown(void **state)
{
	unlink(kernel_path);
	unlink(initrd_path);
	rmdir(tmpdir);
	free(guest);
	return 0;
}

static int fill_guest(void **state)
{
	memset(guest, FILL, GUEST_RAM);
	unlink(initrd_path);
	return 0;
}

static struct boot_params *zero_page(void)
{
	return (struct boot_params *)(guest + BOOT_ZERO_PAGE_GPA);
}

static struct linux_boot_entry load_ok(const char *cmdline, bool initrd, bool classic)
{
	struct linux_boot_params_in in = { kernel_path, initrd ? initrd_path : NULL, cmdline,
					   classic };
	struct linux_boot_entry e;
	char err[256] = "";
	if (linux_boot_load(&in, &guest_mem, &e, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
	assert_int_equal(e.rsi, BOOT_ZERO_PAGE_GPA);
	assert_non_null(e.how);
	return e;
}

static bool all_bytes(uint64_t gpa, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (guest[gpa + i] != v)
			return false;
	return true;
}

/* The ELF's segments, where they belong, bss zeroed, neighbours untouched. */
static void check_elf_in_guest(uint64_t text_paddr, uint64_t data_paddr)
{
	for (size_t i = 0; i < TEXT_SIZE; i++)
		if (guest[text_paddr + i] != text_byte(i))
			fail_msg("text byte %zu wrong", i);
	for (size_t i = 0; i < DATA_FILESZ; i++)
		if (guest[data_paddr + i] != data_byte(i))
			fail_msg("data byte %zu wrong", i);
	assert_true(all_bytes(data_paddr + DATA_FILESZ, DATA_MEMSZ - DATA_FILESZ, 0));
	assert_int_equal(guest[data_paddr + DATA_MEMSZ], FILL);
	assert_int_equal(guest[text_paddr + TEXT_SIZE], FILL);
}

/* Fields every way in must set the same. */
static void check_common_zero_page(const char *cmdline, const struct linux_boot_entry *e)
{
	struct boot_params *bp = zero_page();
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.loadflags & (LOADED_HIGH | CAN_USE_HEAP),
			 LOADED_HIGH | CAN_USE_HEAP);
	assert_int_equal(bp->hdr.loadflags & (KASLR_FLAG | KEEP_SEGMENTS), 0);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_GPA);
	assert_int_equal(bp->ext_cmd_line_ptr, 0);
	assert_string_equal((char *)guest + BOOT_CMDLINE_GPA, cmdline);
	assert_int_equal(bp->hdr.setup_data, 0);
	assert_int_equal(bp->acpi_rsdp_addr, BOOT_RSDP_GPA);
	assert_int_equal(bp->sentinel, 0);
	assert_int_equal(bp->e820_entries, 3);
	assert_int_equal(e->e820_entries, 3);
	assert_int_equal(bp->e820_table[0].addr, 0);
	assert_int_equal(bp->e820_table[0].type, E820_TYPE_RAM);
	assert_int_equal(bp->e820_table[1].addr, BOOT_LOW_RAM_END);
	assert_int_equal(bp->e820_table[1].type, E820_TYPE_RESERVED);
	assert_int_equal(bp->e820_table[2].addr + bp->e820_table[2].size, GUEST_RAM);
	/* Nothing of ours was written past the zero page's 4 KiB. */
	assert_int_equal(guest[BOOT_ZERO_PAGE_GPA + sizeof(struct boot_params)], FILL);
}

/* The initrd: highest page below the limit, clear of the kernel, bytes intact. */
static void check_initrd(const struct buf *rd, const struct linux_boot_entry *e, uint64_t limit)
{
	struct boot_params *bp = zero_page();
	uint64_t gpa = bp->hdr.ramdisk_image | (uint64_t)bp->ext_ramdisk_image << 32;
	assert_int_equal(gpa, e->initrd_gpa);
	assert_int_equal(bp->hdr.ramdisk_size, rd->len);
	assert_int_equal(bp->ext_ramdisk_size, 0);
	assert_int_equal(e->initrd_size, rd->len);
	assert_int_equal(gpa % 4096, 0);
	assert_int_equal(gpa, (limit - rd->len) & ~0xfffULL);
	assert_true(gpa >= e->kernel_end || gpa + rd->len <= e->kernel_start);
	assert_memory_equal(guest + gpa, rd->p, rd->len);
}

static void test_vmlinux_elf(void **state)
{
	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	write_kernel(&elf);
	struct buf rd = write_initrd(MiB + 123);
	const char *cmdline = "console=ttyS0 root=/dev/vda rw";
	struct linux_boot_entry e = load_ok(cmdline, true, false);

	assert_int_equal(e.rip, TEXT_PADDR);
	assert_string_equal(e.how, "vmlinux ELF");
	assert_int_equal(e.kernel_start, TEXT_PADDR);
	assert_int_equal(e.kernel_end, DATA_PADDR + DATA_MEMSZ);
	assert_int_equal(e.decompressed_size, 0);
	check_elf_in_guest(TEXT_PADDR, DATA_PADDR);
	check_common_zero_page(cmdline, &e);
	check_initrd(&rd, &e, GUEST_RAM);
	/* A scratch header, as Firecracker writes it. */
	struct boot_params *bp = zero_page();
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.kernel_alignment, 0x1000000);
	assert_int_equal(bp->hdr.cmdline_size, BOOT_CMDLINE_MAX - 1);
	free(elf.p);
	free(rd.p);
}

static void check_bzimage_host(struct buf *bz, const char *how)
{
	write_kernel(bz);
	struct buf rd = write_initrd(3 * MiB + 1);
	const char *cmdline = "quiet";
	struct linux_boot_entry e = load_ok(cmdline, true, false);
	assert_int_equal(e.rip, TEXT_PADDR);
	assert_string_equal(e.how, how);
	assert_int_equal(e.decompressed_size, ELF_SIZE);
	assert_int_equal(e.kernel_end, DATA_PADDR + DATA_MEMSZ);
	assert_int_equal(e.protocol, 0x020f);
	check_elf_in_guest(TEXT_PADDR, DATA_PADDR);
	check_common_zero_page(cmdline, &e);
	check_initrd(&rd, &e, GUEST_RAM);
	/* Decompressed at pref_address - 2 MiB, then zeroed where not kernel. */
	assert_true(all_bytes(TEXT_PADDR - 2 * MiB, ELF_SIZE, 0));
	assert_int_equal(guest[TEXT_PADDR - 2 * MiB + ELF_SIZE], FILL);
	/* The bzImage's own header travels in the zero page. */
	struct boot_params *bp = zero_page();
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.init_size, INIT_SIZE);
	assert_int_equal(bp->hdr.pref_address, 0x1000000);
	assert_int_equal(bp->hdr.kernel_alignment, 0x200000);
	assert_int_equal(bp->hdr.cmdline_size, 2047);
	assert_int_equal(bp->hdr.xloadflags, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	free(rd.p);
}

static void test_bzimage_gzip(void **state)
{
	struct buf bz = make_bzimage_gzip();
	check_bzimage_host(&bz, "bzImage, host-decompressed gzip");
	free(bz.p);
}

static void test_bzimage_xz(void **state)
{
	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	struct buf pl = compress_xz(&elf);
	struct buf bz = make_bzimage(&pl);
	check_bzimage_host(&bz, "bzImage, host-decompressed xz");
	free(elf.p);
	free(pl.p);
	free(bz.p);
}

static void test_no_initrd_no_cmdline(void **state)
{
	struct buf bz = make_bzimage_gzip();
	write_kernel(&bz);
	struct linux_boot_entry e = load_ok(NULL, false, false);
	check_common_zero_page("", &e);
	/* The file's junk ramdisk_image must not reach the guest. */
	assert_int_equal(zero_page()->hdr.ramdisk_image, 0);
	assert_int_equal(zero_page()->hdr.ramdisk_size, 0);
	assert_int_equal(e.initrd_gpa, 0);
	free(bz.p);
}

static void test_classic(void **state)
{
	struct buf bz = make_bzimage_gzip();
	write_kernel(&bz);
	struct buf rd = write_initrd(5 * MiB);
	struct linux_boot_entry e = load_ok("console=ttyS0", true, true);
	assert_int_equal(e.rip, 0x1000000 + 0x200);
	assert_string_equal(e.how, "bzImage, classic (guest decompresses)");
	assert_int_equal(e.kernel_start, 0x1000000);
	assert_int_equal(e.kernel_end, 0x1000000 + INIT_SIZE);
	/* The whole protected-mode part, byte for byte, at the load address. */
	assert_memory_equal(guest + 0x1000000, bz.p + PM_OFFSET, bz.len - PM_OFFSET);
	assert_int_equal(guest[e.rip], 0xfc);
	check_common_zero_page("console=ttyS0", &e);
	check_initrd(&rd, &e, GUEST_RAM);
	assert_int_equal(zero_page()->hdr.code32_start, 0x1000000);
	/* The decompressor reads these from the zero page: they must be intact. */
	assert_int_equal(zero_page()->hdr.init_size, INIT_SIZE);
	assert_int_equal(zero_page()->hdr.kernel_alignment, 0x200000);
	free(bz.p);
	free(rd.p);
}

static void test_classic_load_address_rules(void **state)
{
	struct buf bz = make_bzimage_gzip();
	/* Misaligned pref_address: first aligned address above 1 MiB. */
	bz_hdr(&bz)->pref_address = 0x1001000;
	write_kernel(&bz);
	struct linux_boot_entry e = load_ok("", false, true);
	assert_int_equal(e.rip, 0x200000 + 0x200);
	/* Runs at max(aligned load, pref_address) with init_size from there. */
	assert_int_equal(e.kernel_end, 0x1001000 + INIT_SIZE);

	/* Not relocatable: 1 MiB, and it moves itself to pref_address. */
	bz_hdr(&bz)->pref_address = 0x1000000;
	bz_hdr(&bz)->relocatable_kernel = 0;
	write_kernel(&bz);
	fill_guest(NULL);
	e = load_ok("", false, true);
	assert_int_equal(e.rip, 0x100000 + 0x200);
	assert_memory_equal(guest + 0x100000, bz.p + PM_OFFSET, bz.len - PM_OFFSET);
	assert_int_equal(e.kernel_end, 0x1000000 + INIT_SIZE);
	free(bz.p);
}

static void test_initrd_respects_addr_max(void **state)
{
	struct buf bz = make_bzimage_gzip();
	bz_hdr(&bz)->initrd_addr_max = 0x2ffffff;
	write_kernel(&bz);
	struct buf rd = write_initrd(2 * MiB + 5);
	struct linux_boot_entry e = load_ok("", true, false);
	check_initrd(&rd, &e, 0x3000000);
	free(bz.p);
	free(rd.p);
}

static void test_initrd_below_kernel(void **state)
{
	/* Kernel at 48 MiB leaves 16 MiB above it: a 20 MiB initrd goes below. */
	struct buf elf = make_vmlinux(0x3000000, 0x3200000);
	write_kernel(&elf);
	struct buf rd = write_initrd(20 * MiB);
	struct linux_boot_entry e = load_ok("", true, false);
	check_elf_in_guest(0x3000000, 0x3200000);
	check_initrd(&rd, &e, 0x3000000);
	free(elf.p);
	free(rd.p);
}

/* ---- the host path decompresses into guest RAM and moves segments there ---- */

struct seg_spec {
	uint64_t offset, paddr, filesz, memsz;
};

static uint8_t seg_byte(unsigned seg, size_t i) { return (uint8_t)(i * 7 + seg * 31 + 1); }

/* Write an ELF with these PT_LOADs (entry: the first) into dst, len bytes. */
static void write_elf(uint8_t *dst, size_t len, const struct seg_spec *segs, unsigned n)
{
	memset(dst, 0, len);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)dst;
	elf_header(eh, segs[0].paddr, (uint16_t)n);
	for (unsigned i = 0; i < n; i++) {
		((Elf64_Phdr *)(dst + sizeof(Elf64_Ehdr)))[i] = (Elf64_Phdr){
			.p_type = PT_LOAD, .p_flags = PF_R | PF_W | PF_X, .p_offset = segs[i].offset,
			.p_vaddr = 0xffffffff80000000ULL + segs[i].paddr, .p_paddr = segs[i].paddr,
			.p_filesz = segs[i].filesz, .p_memsz = segs[i].memsz, .p_align = 0x1000 };
		assert_true(segs[i].offset + segs[i].filesz <= len);
		for (size_t j = 0; j < segs[i].filesz; j++)
			dst[segs[i].offset + j] = seg_byte(i, j);
	}
}

static void check_segments(const struct seg_spec *segs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		for (size_t j = 0; j < segs[i].filesz; j++)
			if (guest[segs[i].paddr + j] != seg_byte(i, j))
				fail_msg("segment %u byte %zu wrong", i, j);
		if (!all_bytes(segs[i].paddr + segs[i].filesz, segs[i].memsz - segs[i].filesz, 0))
			fail_msg("segment %u bss not zeroed", i);
	}
}

/* elf_load from an image that lies in guest RAM at gpa stage, overlapping its own segments. */
static void load_staged(uint64_t stage, size_t len, const struct seg_spec *segs, unsigned n,
			bool copied_aside)
{
	write_elf(guest + stage, len, segs, n);
	struct elf_source src = { .name = "staged", .buf = guest + stage, .fd = -1, .size = len };
	struct elf_image img;
	char err[256] = "";
	if (elf_load(&src, &guest_mem, BOOT_HIGH_RAM_GPA, &img, err, sizeof(err)) != 0)
		fail_msg("staged load failed: %s", err);
	assert_int_equal(img.entry, segs[0].paddr);
	assert_int_equal(img.copied_aside, copied_aside);
	check_segments(segs, n);
}

static void test_elf_staged_in_guest_ram(void **state)
{
	const uint64_t S = 0x200000;
	/*
	 * Moving down, each onto the previous one's source: lowest destination
	 * first needs no copy aside (file order would copy A's bytes into B).
	 */
	const struct seg_spec down[] = {
		{ .offset = 0x3000, .paddr = S + 0x2000, .filesz = 0x1000, .memsz = 0x1800 },
		{ .offset = 0x2000, .paddr = S + 0x1000, .filesz = 0x1000, .memsz = 0x1000 },
	};
	load_staged(S, 0x4000, down, 2, false);
	/* Moving up, likewise: highest destination first. */
	const struct seg_spec up[] = {
		{ .offset = 0x1000, .paddr = S + 0x2000, .filesz = 0x1000, .memsz = 0x1000 },
		{ .offset = 0x2000, .paddr = S + 0x3000, .filesz = 0x1000, .memsz = 0x1000 },
	};
	fill_guest(NULL);
	load_staged(S, 0x3000, up, 2, false);
	/* Overlapping itself (a short move within one segment). */
	const struct seg_spec self[] = {
		{ .offset = 0x1000, .paddr = S + 0x1800, .filesz = 0x3000, .memsz = 0x3000 },
	};
	fill_guest(NULL);
	load_staged(S, 0x4000, self, 1, false);
	/*
	 * No safe order: A moves down over B's source, B moves up. The image
	 * is copied aside first, and both still arrive intact.
	 */
	const struct seg_spec conflict[] = {
		{ .offset = 0x3000, .paddr = S + 0x1800, .filesz = 0x1000, .memsz = 0x1000 },
		{ .offset = 0x2000, .paddr = S + 0x8000, .filesz = 0x1000, .memsz = 0x2000 },
	};
	fill_guest(NULL);
	load_staged(S, 0x4000, conflict, 2, true);
}

/*
 * A bzImage whose vmlinux is laid out as Linux links one: the first segment
 * at file offset 2 MiB and physical pref_address, the next at the same
 * distance, the last two moved down (as .data..percpu and what follows).
 * Decompressed at pref_address - 2 MiB the first two are in place; the
 * ELF headers below the kernel and the relocation table above it are
 * zeroed again, and nothing past the staged image is touched.
 */
static void test_bzimage_staged_like_vmlinux(void **state)
{
	const struct seg_spec segs[] = {
		{ .offset = 0x200000, .paddr = 0x1000000, .filesz = 0x10000, .memsz = 0x10000 },
		{ .offset = 0x400000, .paddr = 0x1200000, .filesz = 0x8000, .memsz = 0x8000 },
		{ .offset = 0x600000, .paddr = 0x1208000, .filesz = 0x3000, .memsz = 0x3000 },
		{ .offset = 0x610000, .paddr = 0x120b000, .filesz = 0x20000, .memsz = 0x30000 },
	};
	const size_t relocs = 0x800, len = 0x630000 + relocs;
	struct buf elf = { malloc(len), len };
	write_elf(elf.p, len, segs, 4);
	memset(elf.p + 0x630000, 0xee, relocs);
	struct buf pl = compress_gzip(&elf);
	struct buf bz = make_bzimage(&pl);
	write_kernel(&bz);
	struct linux_boot_entry e = load_ok("", false, false);
	assert_int_equal(e.rip, 0x1000000);
	assert_int_equal(e.kernel_start, 0x1000000);
	assert_int_equal(e.kernel_end, 0x123b000);
	assert_int_equal(e.decompressed_size, len);
	check_segments(segs, 4);
	const uint64_t stage = 0x1000000 - 2 * MiB;
	assert_true(all_bytes(stage, 0x1000000 - stage, 0));
	assert_true(all_bytes(e.kernel_end, stage + len - e.kernel_end, 0));
	assert_int_equal(guest[stage - 1], FILL);
	assert_int_equal(guest[stage + len], FILL);
	free(elf.p);
	free(pl.p);
	free(bz.p);
}

/* Where staging does not fit (pref_address below 2 MiB), a buffer is used. */
static void test_bzimage_unstaged(void **state)
{
	struct buf bz = make_bzimage_gzip();
	bz_hdr(&bz)->pref_address = 0x100000;
	write_kernel(&bz);
	struct linux_boot_entry e = load_ok("", false, false);
	check_elf_in_guest(TEXT_PADDR, DATA_PADDR);
	assert_int_equal(e.decompressed_size, ELF_SIZE);
	/* Nothing but the kernel, the zero page and the command line was written. */
	assert_true(all_bytes(BOOT_HIGH_RAM_GPA, TEXT_PADDR - BOOT_HIGH_RAM_GPA, FILL));
	free(bz.p);
}

/* ---- failures: -1, a message naming the problem, zero page untouched ---- */

static void load_bad(bool with_initrd, bool classic, const char *cmdline, const char *needle)
{
	struct linux_boot_params_in in = { kernel_path, with_initrd ? initrd_path : NULL,
					   cmdline, classic };
	struct linux_boot_entry e;
	char err[256] = "";
	int r = linux_boot_load(&in, &guest_mem, &e, err, sizeof(err));
	if (r != -1)
		fail_msg("expected failure containing '%s', got %d", needle, r);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
	assert_null(strchr(err, '\n'));
	assert_true(all_bytes(BOOT_ZERO_PAGE_GPA, sizeof(struct boot_params), FILL));
}

static void test_bad_magic_and_files(void **state)
{
	write_file(kernel_path, "#!/bin/sh\necho this is no kernel\n", 33);
	load_bad(false, false, "", "neither a bzImage");
	write_file(kernel_path, "", 0);
	load_bad(false, false, "", "neither a bzImage");
	struct linux_boot_params_in in = { "/nonexistent/vmlinuz", NULL, NULL, false };
	struct linux_boot_entry e;
	char err[256] = "";
	assert_int_equal(linux_boot_load(&in, &guest_mem, &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/vmlinuz"));
	in.kernel_path = tmpdir;  /* a directory */
	assert_int_equal(linux_boot_load(&in, &guest_mem, &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
}

static void test_bad_elf(void **state)
{
	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	struct buf bad = { malloc(elf.len), elf.len };
#define MUTATE(stmt, needle)                                   \
	do {                                                   \
		memcpy(bad.p, elf.p, elf.len);                 \
		stmt;                                          \
		write_kernel(&bad);                            \
		load_bad(false, false, "", needle);            \
	} while (0)
	MUTATE(phdr(&bad, 2)->p_offset = ELF_SIZE + 0x1000, "past the end");
	MUTATE(phdr(&bad, 2)->p_offset = UINT64_MAX - 8, "past the end");
	MUTATE(phdr(&bad, 0)->p_filesz = UINT64_MAX, "p_filesz");
	MUTATE(phdr(&bad, 2)->p_paddr = 128 * MiB, "not inside guest RAM");
	MUTATE(phdr(&bad, 2)->p_memsz = 64 * MiB, "not inside guest RAM");
	MUTATE(phdr(&bad, 2)->p_paddr = UINT64_MAX - 0x100, "not inside guest RAM");
	MUTATE(phdr(&bad, 0)->p_paddr = BOOT_ZERO_PAGE_GPA, "below");
	MUTATE(phdr(&bad, 2)->p_memsz = 0x10, "p_filesz");
	MUTATE(ehdr(&bad)->e_entry = 0x2000000, "entry point");
	MUTATE(ehdr(&bad)->e_machine = EM_386, "e_machine");
	MUTATE(ehdr(&bad)->e_type = ET_DYN, "e_type");
	MUTATE(ehdr(&bad)->e_ident[EI_CLASS] = ELFCLASS32, "ELF64");
	MUTATE(ehdr(&bad)->e_phnum = 0, "e_phnum");
	MUTATE(ehdr(&bad)->e_phnum = 60000, "e_phnum");
	MUTATE(ehdr(&bad)->e_phoff = ELF_SIZE - 8, "program headers");
	MUTATE(ehdr(&bad)->e_phentsize = 32, "e_phentsize");
	MUTATE(phdr(&bad, 0)->p_type = PT_NULL; phdr(&bad, 2)->p_type = PT_NULL, "no non-empty");
	/* Truncated inside the data segment, and inside the ELF header. */
	write_file(kernel_path, elf.p, DATA_OFF + 10);
	load_bad(false, false, "", "past the end");
	write_file(kernel_path, elf.p, 40);
	load_bad(false, false, "", "too short");
	/* Classic boot of a vmlinux cannot be honoured. */
	write_kernel(&elf);
	load_bad(false, true, "", "classic boot needs a bzImage");
#undef MUTATE
	free(bad.p);
	free(elf.p);
}

static void test_bad_bzimage(void **state)
{
	struct buf bz = make_bzimage_gzip();
	struct buf bad = { malloc(bz.len), bz.len };
#define MUTATE(stmt, classic, needle)                          \
	do {                                                   \
		memcpy(bad.p, bz.p, bz.len);                   \
		bad.len = bz.len;                              \
		stmt;                                          \
		write_kernel(&bad);                            \
		load_bad(false, classic, "", needle);          \
	} while (0)
	MUTATE(bz_hdr(&bad)->boot_flag = 0x1234, false, "boot_flag");
	MUTATE(bz_hdr(&bad)->version = 0x0209, false, "too old");
	MUTATE(bz_hdr(&bad)->xloadflags = 0, false, "XLF_KERNEL_64");
	MUTATE(bz_hdr(&bad)->loadflags = 0, false, "LOADED_HIGH");
	MUTATE(bad.p[0x201] = 0x10, false, "setup header ends");
	MUTATE(bz_hdr(&bad)->setup_sects = 200, false, "setup_sects");
	MUTATE(bz_hdr(&bad)->payload_length = (uint32_t)(bz.len - PM_OFFSET - PAYLOAD_OFF + 1),
	       false, "payload_length");
	MUTATE(bz_hdr(&bad)->payload_offset = 0xffffffff, false, "payload_offset");
	MUTATE(bad.p[PM_OFFSET + PAYLOAD_OFF + 40] ^= 0xff, false, "gzip");
	MUTATE(bad.p[PM_OFFSET + PAYLOAD_OFF] = 0x00, false, "unknown compression");
	MUTATE(bz_hdr(&bad)->init_size = 0x4000000, true, "init_size");
	MUTATE(bz_hdr(&bad)->kernel_alignment = 0x3000, true, "kernel_alignment");
	/* Truncations: inside the header, inside the payload. */
	MUTATE(bad.len = 0x210, false, "truncated inside the setup header");
	MUTATE(bad.len = PM_OFFSET + PAYLOAD_OFF + 100, false, "payload_length");
	/* A payload that decompresses to something that is not an ELF. */
	{
		uint8_t junk[4096];
		memset(junk, 'k', sizeof(junk));
		struct buf j = { junk, sizeof(junk) };
		struct buf pl = compress_gzip(&j);
		struct buf notelf = make_bzimage(&pl);
		write_kernel(&notelf);
		load_bad(false, false, "", "not an ELF");
		free(pl.p);
		free(notelf.p);
	}
#undef MUTATE
	free(bad.p);
	free(bz.p);
}

static void test_cmdline_limits(void **state)
{
	struct buf bz = make_bzimage_gzip();
	write_kernel(&bz);
	char *cl = malloc(BOOT_CMDLINE_MAX + 1);
	memset(cl, 'a', BOOT_CMDLINE_MAX);
	cl[2047] = '\0';  /* exactly cmdline_size: fine */
	load_ok(cl, false, false);
	cl[2047] = 'a';
	cl[2048] = '\0';
	fill_guest(NULL);
	load_bad(false, false, cl, "at most 2047");

	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	write_kernel(&elf);
	cl[2048] = 'a';
	cl[BOOT_CMDLINE_MAX - 1] = '\0';  /* 65535 characters: the most we hold */
	fill_guest(NULL);
	load_ok(cl, false, false);
	assert_int_equal(strlen((char *)guest + BOOT_CMDLINE_GPA), BOOT_CMDLINE_MAX - 1);
	cl[BOOT_CMDLINE_MAX - 1] = 'a';
	cl[BOOT_CMDLINE_MAX] = '\0';
	fill_guest(NULL);
	load_bad(false, false, cl, "command line");
	free(cl);
	free(elf.p);
	free(bz.p);
}

static void test_initrd_errors(void **state)
{
	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	write_kernel(&elf);
	/* 50 MiB: neither above the kernel (46 MiB) nor below it (15 MiB). */
	struct buf rd = write_initrd(50 * MiB);
	load_bad(true, false, "", "do not fit");
	free(rd.p);
	rd = write_initrd(0);
	load_bad(true, false, "", "empty");
	free(rd.p);
	unlink(initrd_path);
	load_bad(true, false, "", initrd_path);
	/* Classic: init_size counts as kernel (to 24 MiB), so 41 MiB fits nowhere. */
	struct buf bz = make_bzimage_gzip();
	write_kernel(&bz);
	rd = write_initrd(41 * MiB);
	load_bad(true, true, "", "do not fit");
	free(rd.p);
	free(bz.p);
	free(elf.p);
}

static void test_zero_page_needs_ram(void **state)
{
	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	write_kernel(&elf);
	struct mem_segment high = { .gpa = MiB, .len = GUEST_RAM - MiB, .hva = guest + MiB };
	struct memmap m = { .segs = &high, .nsegs = 1 };
	struct linux_boot_params_in in = { kernel_path, NULL, NULL, false };
	struct linux_boot_entry e;
	char err[256] = "";
	assert_int_equal(linux_boot_load(&in, &m, &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zero page"));
	free(elf.p);
}

/*
 * Hostile headers: every byte of the setup header and of the ELF headers
 * set to a few extreme values, and truncation at many lengths. Loads may
 * succeed or fail; they must not crash (run under -fsanitize=address too).
 */
static void try_load(const struct buf *b, bool classic)
{
	write_kernel(b);
	struct linux_boot_params_in in = { kernel_path, NULL, "x", classic };
	struct linux_boot_entry e;
	char err[256] = "";
	int r = linux_boot_load(&in, &guest_mem, &e, err, sizeof(err));
	assert_true(r == 0 || (r == -1 && err[0] != '\0'));
}

static void test_hostile_headers(void **state)
{
	static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	struct buf bz = make_bzimage_gzip();
	struct buf elf = make_vmlinux(TEXT_PADDR, DATA_PADDR);
	struct buf m = { malloc(bz.len > elf.len ? bz.len : elf.len), 0 };
	for (size_t off = 0x1f1; off < 0x268; off++)
		for (size_t v = 0; v < sizeof(values); v++) {
			memcpy(m.p, bz.p, m.len = bz.len);
			m.p[off] = values[v];
			try_load(&m, off & 1);
		}
	size_t ehdr_end = sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr);
	for (size_t off = 0; off < ehdr_end; off++)
		for (size_t v = 0; v < sizeof(values); v++) {
			memcpy(m.p, elf.p, m.len = elf.len);
			m.p[off] = values[v];
			try_load(&m, false);
		}
	for (size_t len = 0; len < bz.len; len += 97) {
		memcpy(m.p, bz.p, m.len = len);
		try_load(&m, len & 1);
	}
	free(m.p);
	free(elf.p);
	free(bz.p);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, fill_guest)
	const struct CMUnitTest tests[] = {
		T(test_vmlinux_elf),
		T(test_bzimage_gzip),
		T(test_bzimage_xz),
		T(test_no_initrd_no_cmdline),
		T(test_classic),
		T(test_classic_load_address_rules),
		T(test_initrd_respects_addr_max),
		T(test_initrd_below_kernel),
		T(test_elf_staged_in_guest_ram),
		T(test_bzimage_staged_like_vmlinux),
		T(test_bzimage_unstaged),
		T(test_bad_magic_and_files),
		T(test_bad_elf),
		T(test_bad_bzimage),
		T(test_cmdline_limits),
		T(test_initrd_errors),
		T(test_zero_page_needs_ram),
		T(test_hostile_headers),
	};
	return cmocka_run_group_tests_name("linux_boot", tests, group_setup, group_teardown);
}
