/*
 * Shared by the fuzz targets: the libFuzzer entry point, a VM object with no
 * KVM behind it (as tests/unit/test_devices.c uses: fds of -1, so interrupt
 * ioctls fail harmlessly), and a guest-style port access.
 */
#ifndef KHYVE_FUZZ_H
#define KHYVE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioport.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test does not hold: a finding. */
#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,    \
				__LINE__, #cond);                                     \
			abort();                                                      \
		}                                                                     \
	} while (0)

/*
 * A VM object with no KVM behind it (fds of -1) and the first MiB of RAM,
 * which the power device needs for its BIOS reset-vector stub.
 */
static inline void fuzz_fake_vm(struct vm *vm)
{
	static uint8_t low_ram[1 << 20];
	static struct mem_segment low_seg = { .gpa = 0, .len = sizeof(low_ram), .hva = low_ram };
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_eventfd = -1;
	vm->mem = (struct memmap){ .segs = &low_seg, .nsegs = 1 };
	ioport_bus_init(&vm->io);
}

/* KVM hands userspace accesses of 1, 2 or 4 bytes. */
static inline unsigned fuzz_size(uint8_t bits)
{
	static const unsigned sizes[4] = { 1, 2, 4, 4 };
	return sizes[bits & 3];
}

/*
 * One access as a vCPU's KVM_EXIT_IO makes it. A read must define the
 * value, within the access size: the sentinel's high bits must be gone.
 */
static inline uint32_t fuzz_io(struct vm *vm, uint16_t port, unsigned size, bool is_write,
			       uint32_t val)
{
	if (!is_write)
		val = 0xa5a5a5a5u;
	ioport_dispatch(&vm->io, port, size, is_write, &val);
	if (!is_write && size < 4)
		FUZZ_CHECK((val >> (8 * size)) == 0);
	return val;
}

#endif
