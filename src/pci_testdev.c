/*
 * pci-testdev: the device model (register map and BARs in pci_testdev.h).
 *
 * It owns the PCI function (config space, BARs, the MSI-X capability via
 * pci_msix) and translates guest register writes into requests to its
 * driver (testdrv.c), the way a device model talks to an accelerated
 * driver: "hook the doorbell here", "the BAR moved", "fire". The doorbells
 * themselves never come here while hooked.
 *
 * Decoding follows the config space: a memory BAR is on the MMIO bus while
 * the command register's memory bit is set, at the BAR's current address,
 * and moves with it; the doorbells are hooked at their BAR's address while
 * the guest wants them hooked and decoding of their kind is on.
 *
 * Locking: cfg_write runs under the PCI bus lock and changes the MMIO bus
 * (taking its write lock) before taking t->lock; register accesses run
 * under the MMIO bus read lock and take t->lock. So the order is PCI bus ->
 * MMIO bus -> t->lock -> the driver's locks, the same on both paths.
 */
#include "pci_testdev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "mmio.h"
#include "pci.h"
#include "pci_msix.h"
#include "testdrv.h"
#include "vm.h"

#define NONE MMIO_NOWHERE
_Static_assert(TD_CFG_MASKED == TESTDRV_CFG_MASKED && TD_CFG_MODE == TESTDRV_CFG_MODE &&
	       TD_CFG_MSIX == TESTDRV_CFG_MSIX, "TD_CFG_LAST is the driver's encoding");
#define PCI_CLASS_UNASSIGNED 0xff0000
#define INTX_GSI_BASE 16

struct pci_testdev {
	struct vm *vm;
	struct pci_device *dev;      /* owned by the bus */
	struct pci_msix *msix;
	struct testdrv *drv;
	struct mmio_bar bars[2];     /* BAR1, BAR2 on the MMIO bus; under the bus lock */

	pthread_mutex_t lock;        /* everything below */
	bool io_wanted, mmio_wanted;
	uint64_t io_port, mmio_gpa;  /* where the doorbells decode now, or NONE */
	uint64_t io_at, mmio_at;     /* where they are hooked now, or NONE */
	uint32_t vector, msi_addr, msi_data, ring_gpa, arg;
	uint32_t cmd_status, hook_err;
};

static uint64_t bar_addr(const struct pci_testdev *t, int n)
{
	uint32_t v = pci_cfg_read(t->dev, PCI_BAR0 + 4 * n, 4);
	return n == 0 ? (v & 0xfffcu) : (v & 0xfffffff0u);
}

/* Bring the hooks to where the guest wants them. Under t->lock. */
static void rehook(struct pci_testdev *t)
{
	char err[160];
	uint64_t io = t->io_wanted ? t->io_port : NONE;
	if (io != t->io_at) {
		t->io_at = NONE;
		if (io == NONE) {
			testdrv_unhook_io(t->drv);
		} else {
			int r = testdrv_hook_io(t->drv, (uint16_t)io, err, sizeof(err));
			t->hook_err = (uint32_t)-r;
			if (r == 0)
				t->io_at = io;
		}
	}
	uint64_t mm = t->mmio_wanted ? t->mmio_gpa : NONE;
	if (mm != t->mmio_at) {
		t->mmio_at = NONE;
		if (mm == NONE) {
			testdrv_unhook_mmio(t->drv);
		} else {
			int r = testdrv_hook_mmio(t->drv, mm, err, sizeof(err));
			t->hook_err = (uint32_t)-r;
			if (r == 0)
				t->mmio_at = mm;
		}
	}
}

static void regs_access(void *opaque, uint64_t off, unsigned size, bool is_write,
			uint64_t *val);
static void msix_access(void *opaque, uint64_t off, unsigned size, bool is_write,
			uint64_t *val);

static void cfg_write(struct pci_device *dev, unsigned off, unsigned size, uint32_t val)
{
	struct pci_testdev *t = dev->opaque;
	bool decode = (off < PCI_COMMAND + 2 && PCI_COMMAND < off + size) ||
		      (off < PCI_BAR0 + 16 && PCI_BAR0 < off + size);
	if (decode) {
		uint32_t cmd = pci_cfg_read(dev, PCI_COMMAND, 2);
		bool mem = cmd & PCI_COMMAND_MEMORY, io = cmd & PCI_COMMAND_IO;
		t->bars[0].want = mem ? bar_addr(t, 1) : NONE;
		t->bars[1].want = mem ? bar_addr(t, 2) : NONE;
		mmio_place(&t->vm->mmio, t->bars, 2);
		pthread_mutex_lock(&t->lock);
		t->io_port = io ? bar_addr(t, 0) + TESTDEV_IO_DOORBELL : NONE;
		t->mmio_gpa = mem ? bar_addr(t, 3) : NONE;
		rehook(t);
		pthread_mutex_unlock(&t->lock);
	}
	pci_msix_cfg_write(t->msix, off, size);
}

static void msix_access(void *opaque, uint64_t off, unsigned size, bool is_write,
			uint64_t *val)
{
	struct pci_testdev *t = opaque;
	if (!pci_msix_bar_access(t->msix, off, size, is_write, val) && !is_write)
		*val = 0;   /* the rest of the BAR: reserved, reads 0 */
}

static uint32_t reg_read(struct pci_testdev *t, uint64_t off)
{
	struct testdrv_counters c;
	testdrv_get_counters(t->drv, &c);
	switch (off) {
	case TD_ID: return TD_ID_VALUE;
	case TD_IO_COUNT: return (uint32_t)c.io_writes;
	case TD_MMIO_COUNT: return (uint32_t)c.mmio_writes;
	case TD_FIRE: return (uint32_t)c.fired;
	case TD_IO_EXITS: return (uint32_t)atomic_load(&t->vm->io.unclaimed_writes);
	case TD_MMIO_EXITS: return (uint32_t)atomic_load(&t->vm->mmio.unclaimed_writes);
	case TD_ISR: {
		uint32_t v = pci_msix_intx_asserted(t->msix) ? 1 : 0;
		pci_msix_intx_ack(t->msix);
		return v;
	}
	case TD_CFG_EVENTS: return (uint32_t)c.cfg_events;
	case TD_CFG_LAST: return c.cfg_last;
	case TD_RING_VALUE: return c.ring_value;
	case TD_MSI_FIRE: return (uint32_t)c.raw_fired;
	case TD_LEASES: return (uint32_t)c.leases;
	case TD_STATUS: return (c.io_hooked ? 1u : 0) | (c.mmio_hooked ? 2u : 0);
	default: break;
	}
	pthread_mutex_lock(&t->lock);
	uint32_t v = 0;
	switch (off) {
	case TD_CMD: v = t->cmd_status; break;
	case TD_VECTOR: v = t->vector; break;
	case TD_RING_GPA: v = t->ring_gpa; break;
	case TD_MSI_ADDR: v = t->msi_addr; break;
	case TD_MSI_DATA: v = t->msi_data; break;
	case TD_HOOK_ERR: v = t->hook_err; break;
	case TD_ARG: v = t->arg; break;
	default: break;
	}
	pthread_mutex_unlock(&t->lock);
	return v;
}

static void command(struct pci_testdev *t, uint32_t cmd)
{
	char err[160];
	t->cmd_status = 0;
	switch (cmd) {
	case TD_CMD_HOOK_IO:
	case TD_CMD_UNHOOK_IO:
		t->io_wanted = cmd == TD_CMD_HOOK_IO;
		t->hook_err = 0;
		rehook(t);
		t->cmd_status = t->hook_err;
		break;
	case TD_CMD_HOOK_MMIO:
	case TD_CMD_UNHOOK_MMIO:
		t->mmio_wanted = cmd == TD_CMD_HOOK_MMIO;
		t->hook_err = 0;
		rehook(t);
		t->cmd_status = t->hook_err;
		break;
	case TD_CMD_HOOK_IO_AT: {
		/* The driver has one I/O hook: borrow it, then put it back. */
		t->io_at = NONE;
		int r = testdrv_hook_io(t->drv, (uint16_t)t->arg, err, sizeof(err));
		testdrv_unhook_io(t->drv);
		t->cmd_status = (uint32_t)-r;
		uint32_t keep = t->hook_err;
		rehook(t);
		t->hook_err = keep;
		break;
	}
	default:
		t->cmd_status = 22;   /* EINVAL */
		break;
	}
}

static void reg_write(struct pci_testdev *t, uint64_t off, uint32_t v)
{
	pthread_mutex_lock(&t->lock);
	switch (off) {
	case TD_CMD: command(t, v); break;
	case TD_VECTOR: t->vector = v; break;
	case TD_FIRE: testdrv_fire(t->drv, t->vector, v); break;
	case TD_RING_GPA:
		t->ring_gpa = v;
		testdrv_set_ring(t->drv, v);
		break;
	case TD_MSI_ADDR: t->msi_addr = v; break;
	case TD_MSI_DATA: t->msi_data = v; break;
	case TD_MSI_FIRE: testdrv_fire_raw(t->drv, t->msi_addr, t->msi_data, v); break;
	case TD_ARG: t->arg = v; break;
	default: break;
	}
	pthread_mutex_unlock(&t->lock);
}

static void regs_access(void *opaque, uint64_t off, unsigned size, bool is_write,
			uint64_t *val)
{
	struct pci_testdev *t = opaque;
	if (size != 4 || (off & 3)) {
		if (!is_write)
			*val = ~0ull;
		return;
	}
	if (is_write)
		reg_write(t, off, (uint32_t)*val);
	else
		*val = reg_read(t, off);
}

struct pci_testdev *pci_testdev_create(struct vm *vm, struct pci_bus *bus, uint8_t slot,
				       char *err, size_t errlen)
{
	if (slot == 0 || slot >= PCI_SLOTS) {
		snprintf(err, errlen, "pci.testdev.slot=%u: expected 1 to %u", slot,
			 PCI_SLOTS - 1);
		return NULL;
	}
	struct pci_testdev *t = calloc(1, sizeof(*t));
	struct pci_device *d = pci_device_new("testdev", slot, 0, TESTDEV_VENDOR, TESTDEV_DEVICE,
					      PCI_CLASS_UNASSIGNED);
	if (!t || !d) {
		free(t);
		free(d);
		snprintf(err, errlen, "testdev: out of memory");
		return NULL;
	}
	t->vm = vm;
	t->dev = d;
	pthread_mutex_init(&t->lock, NULL);
	/* Where decoding says, once the guest enables it; a BAR over another region is not decoded. */
	t->bars[0] = (struct mmio_bar){ .at = NONE, .want = NONE, .len = TESTDEV_BAR_SIZE,
					.name = "testdev-regs", .handler = regs_access, .opaque = t };
	t->bars[1] = (struct mmio_bar){ .at = NONE, .want = NONE, .len = TESTDEV_BAR_SIZE,
					.name = "testdev-msix", .handler = msix_access, .opaque = t };
	t->io_port = t->mmio_gpa = t->io_at = t->mmio_at = NONE;

	/* BAR0: 16 I/O ports; BAR1-3: 4 KiB, 32-bit, non-prefetchable memory. */
	pci_set32(d, PCI_BAR0, (TESTDEV_IO_BASE + 0x100u * slot) | 1);
	d->wmask[PCI_BAR0] = 0xf0;
	d->wmask[PCI_BAR0 + 1] = 0xff;
	for (int n = 1; n <= 3; n++) {
		unsigned reg = PCI_BAR0 + 4 * n;
		pci_set32(d, reg, TESTDEV_MEM_BASE + 0x100000u * slot + 0x1000u * (n - 1));
		d->wmask[reg + 1] = 0xf0;
		d->wmask[reg + 2] = 0xff;
		d->wmask[reg + 3] = 0xff;
	}
	t->msix = pci_msix_create(vm, d, TESTDEV_MSIX_CAP, TESTDEV_MSIX_VECTORS, 2, 0,
				  TESTDEV_MSIX_PBA, INTX_GSI_BASE + slot % 4);
	if (!t->msix) {
		snprintf(err, errlen, "testdev: out of memory");
		free(d);
		pci_testdev_destroy(t);
		return NULL;
	}
	d->cfg_write = cfg_write;
	d->opaque = t;
	t->drv = testdrv_attach(vm, t->msix, err, errlen);
	if (!t->drv || pci_bus_add(bus, d, err, errlen)) {
		free(d);
		pci_testdev_destroy(t);
		return NULL;
	}
	return t;
}

void pci_testdev_destroy(struct pci_testdev *t)
{
	if (!t)
		return;
	testdrv_free(t->drv);
	pci_msix_destroy(t->msix);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
