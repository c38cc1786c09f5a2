/*
 * The test driver: an accelerated driver that does nothing useful, built
 * the way viona will be, on vmm_drv.h only -- a hold for the VM's life, a
 * lease renewed whenever a map change expires it, ioeventfd hooks for its
 * doorbells, an MSI-X binding for its interrupts, and a worker thread that
 * does the work the hook callbacks hand it. pci_testdev.c (the device
 * model, like bhyve's pci_viona.c) drives it, and exposes its counters to
 * the guest. Theory and locking at the top of testdrv.c.
 */
#ifndef KHYVE_TESTDRV_H
#define KHYVE_TESTDRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct pci_msix;
struct testdrv;

struct testdrv_counters {
	uint64_t io_writes;      /* doorbell writes on the hooked port */
	uint64_t mmio_writes;    /* doorbell writes on the hooked MMIO address */
	uint64_t fired;          /* vector signals sent (vmm_drv_msix_signal) */
	uint64_t raw_fired;      /* raw MSIs sent (vmm_drv_msi) */
	uint32_t ring_value;     /* the u32 last read at the ring address, under a lease */
	uint64_t cfg_events;     /* interrupt-config callbacks */
	uint32_t cfg_last;       /* TESTDRV_CFG_* encoding of the last one */
	uint64_t leases;         /* leases signed */
	bool io_hooked, mmio_hooked;
};

/* cfg_last: vector in bits 15:0, then these flags. */
#define TESTDRV_CFG_MASKED  (1u << 16)
#define TESTDRV_CFG_MODE    (1u << 17)   /* a mode event (vector bits 0) */
#define TESTDRV_CFG_MSIX    (1u << 18)   /* mode is MSI-X (else INTx) */

/* Hold vm, bind msix (may be NULL), start the worker. NULL with a reason. */
struct testdrv *testdrv_attach(struct vm *vm, struct pci_msix *msix, char *err, size_t errlen);
/* Let go of the VM (idempotent; the VM's destruction does it too), then free. */
void testdrv_free(struct testdrv *td);

/* (Re)hook the I/O doorbell at port (2-byte writes) / MMIO doorbell at gpa (any size). */
int testdrv_hook_io(struct testdrv *td, uint16_t port, char *err, size_t errlen);
void testdrv_unhook_io(struct testdrv *td);
int testdrv_hook_mmio(struct testdrv *td, uint64_t gpa, char *err, size_t errlen);
void testdrv_unhook_mmio(struct testdrv *td);

/* Ask the worker to signal vector v n times / send n raw MSIs. Asynchronous. */
void testdrv_fire(struct testdrv *td, unsigned v, uint32_t n);
void testdrv_fire_raw(struct testdrv *td, uint64_t addr, uint32_t data, uint32_t n);
/* Where the worker reads a u32 (through its lease) after each doorbell. */
void testdrv_set_ring(struct testdrv *td, uint64_t gpa);

void testdrv_get_counters(struct testdrv *td, struct testdrv_counters *c);

#endif
