#include "raw_boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot_layout.h"
#include "vcpu.h"
#include "vm.h"
#include "x86_entry.h"

int raw_boot_load(struct vm *vm, const char *path, const char *mode, char *err, size_t errlen)
{
	bool real = strcmp(mode, "real") == 0;
	if (!real && strcmp(mode, "long") != 0) {
		snprintf(err, errlen, "boot.raw.mode=%s: expected real or long", mode);
		return -1;
	}
	uint64_t gpa = real ? RAW_REAL_MODE_GPA : RAW_LONG_MODE_GPA;
	/* Real-mode code must fit below the 64 KiB segment it runs in. */
	uint64_t limit = real ? 0x10000 - RAW_REAL_MODE_GPA : vm->ram_size - gpa;

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "boot.raw %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    (uint64_t)st.st_size > limit) {
		snprintf(err, errlen, "boot.raw %s: not a regular file of 1 to %llu bytes", path,
			 (unsigned long long)limit);
		close(fd);
		return -1;
	}
	uint8_t *dst = memmap_translate(&vm->mem, gpa, (uint64_t)st.st_size);
	ssize_t n = dst ? read(fd, dst, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		snprintf(err, errlen, "boot.raw %s: could not read it into guest memory", path);
		return -1;
	}
	struct vcpu *bsp = &vm->vcpus[0];
	if (real)
		return x86_enter_real_mode(bsp, 0, (uint16_t)gpa, err, errlen);
	return x86_enter_long_mode(vm, bsp, gpa, 0, BOOT_STACK_GPA, err, errlen);
}
