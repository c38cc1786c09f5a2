/*
 * Fuzz target: the Linux kernel loader (linux_boot.c, kernel_decompress.c,
 * elf_load.c) on a hostile kernel file -- the bzImage setup header, its
 * payload in every supported compression, the decompressed ELF with its
 * program headers, the vmlinux ELF read straight from the file, the
 * classic path -- with the host path decompressing straight into guest RAM
 * (the staging at pref_address - 2 MiB) as khyve does.
 *
 * Input: one flags byte (bit 0: boot.classic), then the kernel file. The
 * file is served from a memfd (linux_boot_load opens it by path); the guest
 * is 64 MiB of RAM, refilled with a pattern before each input.
 *
 * Invariants: a failure comes with a one-line reason and leaves the zero
 * page untouched (it is written last); a success enters at an address
 * inside the loaded kernel and inside guest RAM, with the kernel inside RAM
 * at or above 1 MiB and an e820 map.
 */
#include "fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

#include "boot_layout.h"
#include "linux_boot.h"

#define GUEST_RAM (64u << 20)
#define FILL 0x5a

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static int fd = -1;
	static char path[64];
	if (!ram) {
		ram = mmap(NULL, GUEST_RAM, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
		FUZZ_CHECK(ram != MAP_FAILED && fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (size < 1)
		return 0;
	bool classic = data[0] & 1;
	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	FUZZ_CHECK(pwrite(fd, data + 1, size - 1, 0) == (ssize_t)(size - 1));
	/* The whole RAM would cost more than the load itself: the zero page's. */
	memset(ram + BOOT_ZERO_PAGE_GPA, FILL, 4096);

	struct mem_segment seg = { .gpa = 0, .len = GUEST_RAM, .hva = ram };
	struct memmap mem = { .segs = &seg, .nsegs = 1 };
	struct linux_boot_params_in in = { .kernel_path = path, .cmdline = "console=ttyS0",
					   .classic = classic };
	struct linux_boot_entry e;
	char err[256] = "";
	int r = linux_boot_load(&in, &mem, &e, err, sizeof(err));
	if (r != 0) {
		FUZZ_CHECK(r == -1);
		FUZZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
		for (unsigned i = 0; i < 4096; i++)
			FUZZ_CHECK(ram[BOOT_ZERO_PAGE_GPA + i] == FILL);
		return 0;
	}
	FUZZ_CHECK(e.kernel_start >= BOOT_HIGH_RAM_GPA);
	FUZZ_CHECK(e.kernel_start < e.kernel_end && e.kernel_end <= GUEST_RAM);
	FUZZ_CHECK(e.rip >= e.kernel_start && e.rip < e.kernel_end);
	FUZZ_CHECK(e.rsi == BOOT_ZERO_PAGE_GPA);
	FUZZ_CHECK(e.e820_entries > 0);
	FUZZ_CHECK(e.how != NULL);
	return 0;
}
