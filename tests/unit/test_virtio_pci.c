/*
 * Unit tests for the modern virtio-PCI transport (src/virtio_pci.c), driven
 * as a guest driver would: configuration cycles through the PCI bus and
 * register accesses through the MMIO bus of a VM with no KVM behind it
 * (fds of -1), with a fake device model that records what the transport
 * asks of it and MSI-X/INTx delivery caught by pci_msix's test hooks.
 * Checked: the capability list (COMMON, ISR, DEVICE, NOTIFY and MSI-X,
 * where the virtio spec says to look), feature negotiation (FEATURES_OK
 * refused without VERSION_1 or with bits never offered), queue
 * configuration frozen from DRIVER_OK to reset, start/stop/notify, reset
 * clearing the state, ISR read-to-clear with INTx, NEEDS_RESET.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "guest_mmio.h"

#include "mmio.h"
#include "pci.h"
#include "pci_msix.h"
#include "virtio_pci.h"
#include "vm.h"

#define SLOT 3
#define CFG(reg) (0x80000000u | SLOT << 11 | ((reg) & 0xfc))
#define BAR1 (0xc0000000ull + SLOT * 0x100000ull)
#define BAR4 (BAR1 + 0x10000)
#define COMMON BAR4
#define ISR (BAR4 + 0x1000)
#define DEVCFG (BAR4 + 0x2000)
#define NOTIFY (BAR4 + 0x3000)
#define NQUEUES 2
#define QMAX 64

struct fake_dev {
	int starts, stops, start_result;
	uint64_t features;
	struct virtio_pci_queue q0;
	unsigned notifies[NQUEUES];
	int cfg_writes;
	struct virtio_pci *vp;
};

struct rig {
	struct vm vm;
	struct pci_bus bus;
	struct virtio_pci *vp;
	struct fake_dev dev;
	uint8_t cfg[8];
	int line, msis;
};

static int fake_start(void *d, uint64_t features, char *err, size_t errlen)
{
	struct fake_dev *f = d;
	f->starts++;
	f->features = features;
	f->q0 = *virtio_pci_queue(f->vp, 0);
	if (f->start_result)
		snprintf(err, errlen, "fake start refused");
	return f->start_result;
}

static void fake_stop(void *d) { ((struct fake_dev *)d)->stops++; }
static void fake_notify(void *d, unsigned q) { ((struct fake_dev *)d)->notifies[q]++; }
static void fake_cfg_write(void *d, unsigned off, unsigned size) { ((struct fake_dev *)d)->cfg_writes++; }

static const struct virtio_pci_ops fake_ops = {
	.start = fake_start, .stop = fake_stop, .notify = fake_notify, .cfg_write = fake_cfg_write,
};

static void t_line(void *arg, int level) { ((struct rig *)arg)->line = level; }
static void t_deliver(void *arg, uint64_t addr, uint32_t data) { ((struct rig *)arg)->msis++; }

#define OFFERED (1ull << 5 | 1ull << 28)

static void rig_init(struct rig *r)
{
	char err[256];
	memset(r, 0, sizeof(*r));
	r->vm.kvm_fd = r->vm.vm_fd = r->vm.stop_eventfd = -1;
	ioport_bus_init(&r->vm.io);
	mmio_bus_init(&r->vm.mmio);
	assert_int_equal(pci_bus_init(&r->bus, &r->vm, err, sizeof(err)), 0);
	memcpy(r->cfg, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	struct virtio_pci_params p = {
		.name = "virtio-test", .device_id = VIRTIO_ID_BLOCK, .class_code = 0x010000,
		.nqueues = NQUEUES, .queue_max_size = QMAX, .features = OFFERED,
		.cfg = r->cfg, .cfg_size = 8, .cfg_writable_off = 4, .cfg_writable_len = 4,
		.ops = &fake_ops, .dev = &r->dev,
	};
	r->vp = virtio_pci_create(&r->vm, &r->bus, SLOT, &p, err, sizeof(err));
	assert_non_null(r->vp);
	r->dev.vp = r->vp;
	struct pci_msix *m = virtio_pci_msix(r->vp);
	m->test_line = t_line;
	m->test_deliver = t_deliver;
	m->test_arg = r;
	/* Memory decoding on: the BARs appear on the MMIO bus. */
	pci_bus_cfg_write(&r->bus, CFG(PCI_COMMAND), 0, 2, PCI_COMMAND_MEMORY);
}

static void rig_free(struct rig *r)
{
	virtio_pci_destroy(r->vp);
	pci_bus_free(&r->bus);
	mmio_bus_free(&r->vm.mmio);
	ioport_bus_free(&r->vm.io);
}

static uint8_t cfg8(struct rig *r, unsigned reg)
{
	return (uint8_t)pci_bus_cfg_read(&r->bus, CFG(reg), reg & 3, 1);
}

static uint32_t cfg32(struct rig *r, unsigned reg)
{
	return pci_bus_cfg_read(&r->bus, CFG(reg), 0, 4);
}

static uint64_t device_features(struct rig *r)
{
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	uint64_t f = guest_mmio_read(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DF, 4);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	return f | guest_mmio_read(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DF, 4) << 32;
}

static void driver_features(struct rig *r, uint64_t f)
{
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4, f >> 32);
}

static uint8_t status(struct rig *r)
{
	return (uint8_t)guest_mmio_read(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1);
}

/* The driver's start-up sequence up to FEATURES_OK; returns the status read back. */
static uint8_t negotiate(struct rig *r, uint64_t f)
{
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	driver_features(r, f);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	   VIRTIO_CONFIG_S_FEATURES_OK);
	return status(r);
}

static const uint8_t LIVE = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			    VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;

static void test_identity_and_capabilities(void **state)
{
	struct rig r;
	rig_init(&r);
	assert_int_equal(cfg32(&r, PCI_VENDOR_ID), 0x1af4 | (0x1040u + VIRTIO_ID_BLOCK) << 16);
	assert_int_equal(cfg8(&r, PCI_REVISION), 1);
	assert_int_equal(cfg32(&r, PCI_SUBSYS_VENDOR), 0x1af4 | VIRTIO_ID_BLOCK << 16);
	assert_true(pci_bus_cfg_read(&r.bus, CFG(PCI_STATUS), 2, 2) & PCI_STATUS_CAP_LIST);
	/* BAR sizes: 4 KiB for MSI-X, 16 KiB for the virtio regions. */
	pci_bus_cfg_write(&r.bus, CFG(PCI_BAR0 + 16), 0, 4, 0xffffffff);
	assert_int_equal(cfg32(&r, PCI_BAR0 + 16), 0xffffc000u);
	pci_bus_cfg_write(&r.bus, CFG(PCI_BAR0 + 16), 0, 4, (uint32_t)BAR4);

	/* Walk the list as a driver does; every virtio capability points into BAR4. */
	unsigned seen = 0, msix = 0, steps = 0;
	for (unsigned at = cfg8(&r, PCI_CAP_PTR); at; at = cfg8(&r, at + 1)) {
		assert_true(at >= 0x40 && at < 0x100 && ++steps < 48);
		if (cfg8(&r, at) == PCI_CAP_ID_MSIX) {
			msix++;
			/* Vectors: one a queue plus the config vector; table and PBA in BAR1. */
			assert_int_equal((pci_bus_cfg_read(&r.bus, CFG(at), 2, 2) & 0x7ff) + 1,
					 NQUEUES + 1);
			assert_int_equal(cfg32(&r, at + 4), 1);
			assert_int_equal(cfg32(&r, at + 8), 0x800 | 1);
			continue;
		}
		assert_int_equal(cfg8(&r, at), 0x09);
		unsigned type = cfg8(&r, at + 3);
		assert_int_equal(cfg8(&r, at + 4), 4);
		uint32_t off = cfg32(&r, at + 8), len = cfg32(&r, at + 12);
		seen |= 1u << type;
		switch (type) {
		case 1: assert_int_equal(off, 0); assert_true(len >= 0x38); break;
		case 2:
			assert_int_equal(cfg8(&r, at + 2), 20);
			assert_int_equal(off, 0x3000);
			assert_int_equal(cfg32(&r, at + 16), VIRTIO_PCI_NOTIFY_MULT);
			assert_true(len >= NQUEUES * VIRTIO_PCI_NOTIFY_MULT);
			break;
		case 3: assert_int_equal(off, 0x1000); assert_true(len >= 1); break;
		case 4: assert_int_equal(off, 0x2000); assert_int_equal(len, 8); break;
		default: fail_msg("unexpected virtio capability type %u", type);
		}
	}
	assert_int_equal(seen, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4);
	assert_int_equal(msix, 1);
	rig_free(&r);
}

static void test_feature_negotiation(void **state)
{
	struct rig r;
	rig_init(&r);
	assert_int_equal(device_features(&r), OFFERED | 1ull << VIRTIO_F_VERSION_1);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_DFSELECT, 4, 7);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_DF, 4), 0);

	/* Without VERSION_1: FEATURES_OK does not stick. */
	assert_int_equal(negotiate(&r, 1ull << 5) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* A bit never offered: refused too. */
	assert_int_equal(negotiate(&r, 1ull << VIRTIO_F_VERSION_1 | 1ull << 6) &
			 VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* DRIVER_OK without FEATURES_OK starts nothing. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	   VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(r.dev.starts, 0);

	/* A subset with VERSION_1: accepted, and frozen once accepted. */
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << 28;
	assert_true(negotiate(&r, want) & VIRTIO_CONFIG_S_FEATURES_OK);
	driver_features(&r, want | 1ull << 5);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4), 1u << 28);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
	assert_int_equal(r.dev.starts, 1);
	assert_int_equal(r.dev.features, want);
	rig_free(&r);
}

static void setup_queue(struct rig *r, unsigned q, uint16_t size, uint64_t base)
{
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)base);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_DESCLO + 4, 4, base >> 32);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)(base + 0x1000));
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_AVAILLO + 4, 4, base >> 32);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)(base + 0x2000));
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_USEDLO + 4, 4, base >> 32);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_MSIX, 2, q);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
}

static void test_queue_config_start_stop(void **state)
{
	struct rig r;
	rig_init(&r);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_NUMQ, 2), NQUEUES);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* A queue that does not exist reads size 0. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2, NQUEUES);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);   /* ignored, not a crash */
	/* Notify offsets: the queue index (multiplier 4 in the capability). */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_NOFF, 2), 1);

	assert_true(negotiate(&r, 1ull << VIRTIO_F_VERSION_1) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(&r, 0, 32, 0x123400000ull);
	/* Sizes must be powers of two up to the maximum: others keep the old size. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2, 48);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2, 128);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2), 32);
	/* A vector beyond the table reads back NO_VECTOR. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_MSIX, 2, 99);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);

	/* Doorbells before DRIVER_OK go nowhere. */
	guest_mmio_write(&r.vm.mmio, NOTIFY, 2, 0);
	assert_int_equal(r.dev.notifies[0], 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
	assert_int_equal(r.dev.starts, 1);
	assert_int_equal(r.dev.q0.size, 32);
	assert_true(r.dev.q0.enabled);
	assert_int_equal(r.dev.q0.desc, 0x123400000ull);
	assert_int_equal(r.dev.q0.avail, 0x123401000ull);
	assert_int_equal(r.dev.q0.used, 0x123402000ull);
	assert_int_equal(virtio_pci_status(r.vp), LIVE);

	/* Frozen while live. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x5000);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
	const struct virtio_pci_queue *q = virtio_pci_queue(r.vp, 0);
	assert_int_equal(q->size, 32);
	assert_int_equal(q->desc, 0x123400000ull);
	assert_true(q->enabled);
	assert_null(virtio_pci_queue(r.vp, NQUEUES));
	/* Writing DRIVER_OK again does not start twice. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
	assert_int_equal(r.dev.starts, 1);

	/* Doorbells: each queue its own address; out of range ones are dropped. */
	guest_mmio_write(&r.vm.mmio, NOTIFY, 2, 0);
	guest_mmio_write(&r.vm.mmio, NOTIFY + 4, 2, 1);
	guest_mmio_write(&r.vm.mmio, NOTIFY + 4, 2, 1);
	guest_mmio_write(&r.vm.mmio, NOTIFY + 4 * NQUEUES, 2, NQUEUES);
	assert_int_equal(r.dev.notifies[0], 1);
	assert_int_equal(r.dev.notifies[1], 2);
	assert_int_equal(virtio_pci_notify_gpa(r.vp, 1), NOTIFY + 4);

	/* Reset: stop, and everything back to the power-on state. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	assert_int_equal(r.dev.stops, 1);
	assert_int_equal(status(&r), 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4), 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* A second reset does not stop a stopped device. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	assert_int_equal(r.dev.stops, 1);

	/* Started again, then torn down: destroy stops it. */
	negotiate(&r, 1ull << VIRTIO_F_VERSION_1);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
	assert_int_equal(r.dev.starts, 2);
	rig_free(&r);
	assert_int_equal(r.dev.stops, 2);
}

static void test_access_rules(void **state)
{
	struct rig r;
	rig_init(&r);
	/* A write must cover one field exactly: others are dropped. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 4, 0x00010001);   /* VIRTIO_PCI_COMMON_Q_SELECT and VIRTIO_PCI_COMMON_Q_SIZE at once */
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 2, 1);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4), 0);
	/* Reads of any size and alignment see the fields' bytes. */
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_NUMQ, 1), NQUEUES);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_MSIX, 4), 0xffff | NQUEUES << 16);
	/* Past the common config, between regions: zero, no crash. */
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + 0x38, 4), 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, COMMON + 0x36, 4), 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, BAR4 + 0x800, 4), 0);
	/* Device config: reads, and writes only to the writable part. */
	assert_int_equal(guest_mmio_read(&r.vm.mmio, DEVCFG, 8), 0x8877665544332211ull);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, DEVCFG + 6, 2), 0x8877);
	guest_mmio_write(&r.vm.mmio, DEVCFG, 4, 0xdeadbeef);
	guest_mmio_write(&r.vm.mmio, DEVCFG + 2, 4, 0xdeadbeef);
	assert_int_equal(r.dev.cfg_writes, 0);
	guest_mmio_write(&r.vm.mmio, DEVCFG + 4, 4, 0xcafef00d);
	assert_int_equal(r.dev.cfg_writes, 1);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, DEVCFG, 8), 0xcafef00d44332211ull);
	/* Beyond the device config: ignored, reads 0. */
	assert_int_equal(guest_mmio_read(&r.vm.mmio, DEVCFG + 6, 4), 0);
	guest_mmio_write(&r.vm.mmio, DEVCFG + 8, 4, 1);
	assert_int_equal(r.dev.cfg_writes, 1);
	/* BARs follow decoding and moves. */
	pci_bus_cfg_write(&r.bus, CFG(PCI_COMMAND), 0, 2, 0);
	assert_false(mmio_claimed(&r.vm.mmio, BAR4, 1));
	assert_int_equal(virtio_pci_notify_gpa(r.vp, 0), UINT64_MAX);
	pci_bus_cfg_write(&r.bus, CFG(PCI_BAR0 + 16), 0, 4, 0xd0000000u);
	pci_bus_cfg_write(&r.bus, CFG(PCI_COMMAND), 0, 2, PCI_COMMAND_MEMORY);
	assert_true(mmio_claimed(&r.vm.mmio, 0xd0000000u, 0x4000));
	assert_int_equal(guest_mmio_read(&r.vm.mmio, 0xd0000000u + VIRTIO_PCI_COMMON_NUMQ, 2), NQUEUES);
	assert_int_equal(virtio_pci_notify_gpa(r.vp, 0), 0xd0003000u);
	rig_free(&r);
}

static void test_interrupts_isr_and_needs_reset(void **state)
{
	struct rig r;
	rig_init(&r);
	negotiate(&r, 1ull << VIRTIO_F_VERSION_1);
	setup_queue(&r, 0, 32, 0x100000);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);

	/* MSI-X off: INTx with ISR bit 0; reading the ISR clears both. */
	virtio_pci_interrupt(r.vp, 0);
	assert_int_equal(r.line, 1);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, ISR, 1), 1);
	assert_int_equal(r.line, 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, ISR, 1), 0);
	virtio_pci_interrupt(r.vp, NQUEUES);   /* no such queue: nothing */
	assert_int_equal(r.line, 0);
	/*
	 * A config change sets bit 1. (Bit 0 reads set too whenever INTx is
	 * asserted: an accelerated backend raises INTx without the ISR.)
	 */
	virtio_pci_config_changed(r.vp);
	assert_int_equal(r.line, 1);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, ISR, 1) & 2, 2);
	assert_int_equal(r.line, 0);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, ISR, 1), 0);

	/* The device gives up: NEEDS_RESET, a config interrupt, sticky until reset. */
	virtio_pci_needs_reset(r.vp, "test");
	assert_true(status(&r) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, ISR, 1) & 2, 2);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
	assert_true(status(&r) & VIRTIO_CONFIG_S_NEEDS_RESET);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	assert_int_equal(status(&r), 0);

	/* A start the device refuses: NEEDS_RESET, not started (no stop at reset). */
	r.dev.start_result = -1;
	negotiate(&r, 1ull << VIRTIO_F_VERSION_1);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
	assert_true(status(&r) & VIRTIO_CONFIG_S_NEEDS_RESET);
	int stops = r.dev.stops;
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	assert_int_equal(r.dev.stops, stops);

	/* MSI-X on: the queue's vector, no INTx, no ISR bit needed. */
	r.dev.start_result = 0;
	struct pci_msix *m = virtio_pci_msix(r.vp);
	unsigned cap = m->cap_off;
	pci_bus_cfg_write(&r.bus, CFG(cap), 2, 2, PCI_MSIX_CTRL_ENABLE);
	/* Unmask vector 0 with some message. */
	guest_mmio_write(&r.vm.mmio, BAR1 + 0, 4, 0xfee00000u);
	guest_mmio_write(&r.vm.mmio, BAR1 + 8, 4, 0x41);
	guest_mmio_write(&r.vm.mmio, BAR1 + 12, 4, 0);
	negotiate(&r, 1ull << VIRTIO_F_VERSION_1);
	setup_queue(&r, 0, 32, 0x100000);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
	virtio_pci_interrupt(r.vp, 0);
	assert_int_equal(r.msis, 1);
	assert_int_equal(r.line, 0);
	rig_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_and_capabilities),
		cmocka_unit_test(test_feature_negotiation),
		cmocka_unit_test(test_queue_config_start_stop),
		cmocka_unit_test(test_access_rules),
		cmocka_unit_test(test_interrupts_isr_and_needs_reset),
	};
	return cmocka_run_group_tests_name("virtio_pci", tests, NULL, NULL);
}
