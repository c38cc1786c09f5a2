/*
 * The MSI-X capability of a PCI function, its table and Pending Bit Array,
 * and the legacy INTx fallback, as the PCI Local Bus Specification 3.0
 * (section 6.8.2) defines them. A device model embeds one; the driver
 * interface (vmm_drv.h) can bind to it as its "backend" to deliver the
 * vectors through irqfds. Theory at the top of pci_msix.c.
 *
 * Guest-visible registers:
 *   capability (config space, 12 bytes at cap_off):
 *     +0 ID 0x11, next pointer     +2 Message Control: bits 10:0 table size
 *     - 1 (RO), bit 14 Function Mask (RW), bit 15 MSI-X Enable (RW)
 *     +4 Table Offset | BIR (RO)   +8 PBA Offset | BIR (RO)
 *   table (memory BAR, 16 bytes a vector): +0 Message Address (bits 1:0
 *     read as 0), +4 Message Upper Address, +8 Message Data, +12 Vector
 *     Control (bit 0 Mask, the rest reserved, read as 0); every vector
 *     starts masked. DWORD or QWORD accesses, as the spec requires; other
 *     sizes read all-ones and are dropped.
 *   PBA (memory BAR): one read-only pending bit a vector, in QWORDs.
 */
#ifndef KHYVE_PCI_MSIX_H
#define KHYVE_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define PCI_CAP_ID_MSIX 0x11
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_INTX_DISABLE 0x0400

#define PCI_MSIX_CAP_SIZE 12
#define PCI_MSIX_CTRL 2                 /* offset of Message Control in the capability */
#define PCI_MSIX_CTRL_ENABLE 0x8000
#define PCI_MSIX_CTRL_FMASK 0x4000
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_CTRL_MASK 0x1
#define PCI_MSIX_MAX_VECTORS 2048

struct vm;

enum pci_irq_mode {
	PCI_IRQ_INTX,   /* MSI-X disabled: the function uses its INTx pin */
	PCI_IRQ_MSIX,
};

/*
 * What a backend (the driver interface) is told and asked. All calls are
 * made with the MSI-X lock held, so they are ordered with the guest's
 * writes and with each other; a backend must not call back into this
 * model from them.
 */
struct pci_msix_backend {
	/* Vector v now has this message and may (masked=false) or may not deliver. */
	void (*vector_update)(void *arg, unsigned v, uint64_t addr, uint32_t data, bool masked);
	/* Does the backend hold an undelivered event for (masked) vector v? For PBA reads. */
	bool (*vector_pending)(void *arg, unsigned v);
	/* Raise vector v through the backend (delivered now, or pending while masked). */
	void (*vector_signal)(void *arg, unsigned v);
	/* The function switched between MSI-X and INTx. */
	void (*mode_update)(void *arg, enum pci_irq_mode mode);
};

struct pci_msix {
	struct vm *vm;
	struct pci_device *dev;
	unsigned cap_off, nvec, bar;
	uint32_t table_off, pba_off;    /* within the BAR */
	uint32_t intx_gsi;

	pthread_mutex_t lock;           /* a device lock; everything below */
	uint8_t *table;                 /* nvec * 16 bytes, little-endian */
	uint64_t *pending;              /* the model's own PBA bits (no backend) */
	bool enabled, fmask, intx_disable;
	enum pci_irq_mode mode;
	/* What the backend was last told, per vector, so only changes are sent. */
	struct pci_msix_told { uint64_t addr; uint32_t data; bool masked; } *told;
	bool intx_pending, intx_level;
	const struct pci_msix_backend *backend;
	void *backend_arg;
	unsigned long delivered;        /* MSIs the model itself sent (KVM_SIGNAL_MSI) */
	/* For unit tests: instead of KVM_SIGNAL_MSI / KVM_IRQ_LINE. */
	void (*test_deliver)(void *arg, uint64_t addr, uint32_t data);
	void (*test_line)(void *arg, int level);
	void *test_arg;
};

/*
 * Add an MSI-X capability with nvec vectors to dev at config offset cap_off
 * (linked into the capability list, status bit set), its table at table_off
 * and PBA at pba_off of memory BAR bar (both 8-byte aligned, the caller's
 * BAR large enough), INTx on intx_gsi (the slot's _PRT GSI for pin INTA).
 * NULL if out of memory or the layout is impossible.
 */
struct pci_msix *pci_msix_create(struct vm *vm, struct pci_device *dev, unsigned cap_off,
				 unsigned nvec, unsigned bar, uint32_t table_off,
				 uint32_t pba_off, uint32_t intx_gsi);
void pci_msix_destroy(struct pci_msix *m);

/* From the device's cfg_write hook (PCI bus lock held): control/command changed? */
void pci_msix_cfg_write(struct pci_msix *m, unsigned off, unsigned size);

/* Access at offset off of the BAR holding table/PBA; false if neither is there. */
bool pci_msix_bar_access(struct pci_msix *m, uint64_t off, unsigned size, bool is_write,
			 uint64_t *val);

/*
 * The device raises vector v: an MSI now, a pending bit while masked, or
 * INTx when MSI-X is disabled. With a backend bound, MSI-X events go
 * through it (so that its pending state and the model's are one).
 */
void pci_msix_notify(struct pci_msix *m, unsigned v);
/* Raise INTx if (and only if) MSI-X is disabled: an event with no vector. */
void pci_msix_intx_notify(struct pci_msix *m);
/* The guest acknowledged the INTx condition (a device register read): lower the line. */
void pci_msix_intx_ack(struct pci_msix *m);
bool pci_msix_intx_asserted(struct pci_msix *m);
/* Is vector v's pending bit set (as the guest would read it)? */
bool pci_msix_pending(struct pci_msix *m, unsigned v);

/* Bind (ops non-NULL) or unbind a backend; a bound one is told the whole state at once. */
void pci_msix_set_backend(struct pci_msix *m, const struct pci_msix_backend *ops, void *arg);

#endif
