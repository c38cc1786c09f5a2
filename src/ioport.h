/*
 * The x86 I/O-port bus: which emulated device answers a port.
 *
 * Devices register a port range with a handler; a vCPU's KVM_EXIT_IO is
 * dispatched here. Registration happens while the VM is being assembled
 * (before any vCPU runs), so dispatch reads the table without a lock; the
 * table is sorted so lookup is a binary search. Ports nobody claims read as
 * all-ones and swallow writes, as on a real ISA bus, and are counted so a
 * misbehaving guest is visible in the statistics rather than fatal.
 */
#ifndef KHYVE_IOPORT_H
#define KHYVE_IOPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* size is 1, 2 or 4; on a read the handler stores into *val. */
typedef void (*ioport_handler_fn)(void *opaque, uint16_t port, unsigned size,
				  bool is_write, uint32_t *val);

struct ioport_range {
	uint16_t base;
	uint32_t len;
	const char *name;
	ioport_handler_fn handler;
	void *opaque;
};

struct ioport_bus {
	struct ioport_range *ranges;
	size_t n, cap;
	atomic_ulong unclaimed_reads, unclaimed_writes;
};

void ioport_bus_init(struct ioport_bus *bus);
void ioport_bus_free(struct ioport_bus *bus);
/* -1 (with reason) if the range overlaps an existing one or wraps. */
int ioport_register(struct ioport_bus *bus, uint16_t base, uint32_t len, const char *name,
		    ioport_handler_fn handler, void *opaque, char *err, size_t errlen);
void ioport_dispatch(struct ioport_bus *bus, uint16_t port, unsigned size, bool is_write,
		     uint32_t *val);

#endif
