/*
 * The MMIO bus: which emulated device answers a guest-physical address that
 * is neither RAM nor one of KVM's in-kernel devices (LAPIC, IOAPIC).
 *
 * A vCPU's KVM_EXIT_MMIO is dispatched here. Unlike the I/O-port bus, whose
 * table is fixed once the machine is assembled, regions come and go while
 * the guest runs: a memory BAR appears, moves or disappears whenever the
 * guest rewrites the BAR or toggles memory decoding in the command
 * register. So the table has its own rwlock: dispatch takes it for reading
 * (vCPUs dispatch in parallel), register/unregister/move for writing. It is
 * not the VM map lock: moving a BAR changes no guest RAM and must not break
 * drivers' leases (vmm_drv.h), and it is done from a vCPU thread under the
 * PCI bus lock, a device lock, which may not be followed by the map lock.
 *
 * Lock order (vm_lock.c's model, level c): PCI bus lock -> MMIO bus lock ->
 * a device's own lock. Handlers run under the read lock, so a handler must
 * not change the MMIO bus (it would wait for itself) nor take the PCI bus
 * lock; it may read the bus (mmio_claimed): the lock prefers readers, so a
 * nested read never waits behind a writer.
 *
 * Addresses nobody claims read as all-ones and swallow writes, as an empty
 * bus does, and are counted. An access that straddles the end of a region
 * is unclaimed.
 */
#ifndef KHYVE_MMIO_H
#define KHYVE_MMIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* size is 1, 2, 4 or 8; offset is from the region's start; reads store *val. */
typedef void (*mmio_handler_fn)(void *opaque, uint64_t offset, unsigned size, bool is_write,
				uint64_t *val);

struct mmio_region {
	uint64_t gpa, len;
	const char *name;
	mmio_handler_fn handler;
	void *opaque;
};

struct mmio_bus {
	pthread_rwlock_t lock;
	struct mmio_region *regions;   /* sorted by gpa, never overlapping; under lock */
	size_t n, cap;
	atomic_ulong unclaimed_reads, unclaimed_writes;
};

void mmio_bus_init(struct mmio_bus *bus);
void mmio_bus_free(struct mmio_bus *bus);

/* -1 (with reason) if [gpa, gpa+len) is empty, wraps, or overlaps a region. */
int mmio_register(struct mmio_bus *bus, uint64_t gpa, uint64_t len, const char *name,
		  mmio_handler_fn handler, void *opaque, char *err, size_t errlen);
/* Remove the region that starts at gpa and belongs to opaque; -1 if none. */
int mmio_unregister(struct mmio_bus *bus, uint64_t gpa, void *opaque);
/*
 * Move opaque's region at old_gpa to new_gpa in one step (no access sees it
 * missing); -1 with a reason (and the region where it was) on an overlap.
 */
int mmio_move(struct mmio_bus *bus, uint64_t old_gpa, void *opaque, uint64_t new_gpa,
	      char *err, size_t errlen);

/*
 * A device's memory BARs as regions on the bus: where each is (at) and
 * where its config space says it decodes (want), MMIO_NOWHERE for "not on
 * the bus". mmio_place() brings them all to want: a move is one step
 * (mmio_move: no access sees the region missing); a BAR that cannot move
 * because another of the SAME set still sits there is placed once the
 * others have moved, whatever their order; a BAR over anybody else's region
 * is left off the bus (as on real buses, overlapping decode is undefined)
 * and its at says so. For cfg_write hooks (PCI bus lock held).
 */
#define MMIO_NOWHERE UINT64_MAX
struct mmio_bar {
	uint64_t at, want, len;
	const char *name;
	mmio_handler_fn handler;
	void *opaque;
};
void mmio_place(struct mmio_bus *bus, struct mmio_bar *bars, size_t n);

/* Does any region overlap [gpa, gpa+len)? */
bool mmio_claimed(struct mmio_bus *bus, uint64_t gpa, uint64_t len);

/* One access as KVM_EXIT_MMIO reports it: data is little-endian, len bytes. */
void mmio_dispatch(struct mmio_bus *bus, uint64_t gpa, unsigned len, bool is_write,
		   uint8_t *data);

#endif
