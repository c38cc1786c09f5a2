/*
 * A guest's MMIO access as KVM would report it, for unit tests that drive
 * device models through the MMIO bus without a VM running.
 */
#ifndef KHYVE_TEST_GUEST_MMIO_H
#define KHYVE_TEST_GUEST_MMIO_H

#include <stdint.h>
#include <string.h>

#include "mmio.h"

/* A read of size bytes at gpa; bytes nobody answers read as 0xa5 (visible in a failure). */
static inline uint64_t guest_mmio_read(struct mmio_bus *bus, uint64_t gpa, unsigned size)
{
	uint8_t data[8];
	memset(data, 0xa5, sizeof(data));
	mmio_dispatch(bus, gpa, size, false, data);
	uint64_t v = 0;
	memcpy(&v, data, size);
	return v;
}

static inline void guest_mmio_write(struct mmio_bus *bus, uint64_t gpa, unsigned size,
				    uint64_t v)
{
	uint8_t data[8];
	memcpy(data, &v, size);
	mmio_dispatch(bus, gpa, size, true, data);
}

#endif
