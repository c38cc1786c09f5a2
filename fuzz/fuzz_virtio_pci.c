/*
 * Fuzz target: the modern virtio-PCI transport (src/virtio_pci.c) as a
 * guest driver -- possibly a hostile or confused one -- reaches it: PCI
 * configuration cycles (BARs, the command register, the MSI-X capability)
 * and MMIO accesses of every size (1 to 8 bytes, so also the ones KVM can
 * report but the bus refuses) at any offset of BAR4 (common config, ISR,
 * device config, doorbells) and BAR1 (MSI-X table and PBA), dispatched by
 * the MMIO bus of a VM with no KVM behind it. pci_msix's test hooks catch
 * MSIs and the INTx line, so no ioctl is made. The device model is a fake
 * whose callbacks check what the transport promises device models
 * (virtio_pci.h); the transport's parameters (queues, sizes, config space,
 * offered features, hooked doorbells) come from the input too.
 *
 * Input: a 17-byte header, then 8-byte records [op][a][b][c][v LE x4].
 *   [0]      slot: 1 + n % 31
 *   [1]      bits 0-3: queues - 1; bits 4-7: log2 of the maximum queue size
 *   [2]      bit 0 notify_hooked (doorbells by ioeventfd, notify_moved)
 *   [3..4]   device config size % 4097;  [5..6] [7..8] its writable
 *            offset and length (LE16, not necessarily inside it)
 *   [9..16]  offered features (LE64; the transport adds VERSION_1)
 * Records, op % 12:
 *   0/1   config read/write: register a, size b (1, 2, 4, 4), value v
 *   2/3   BAR4 read/write: offset (b & 4 ? a | c << 8 : region b & 3 + a)
 *         % 16 KiB, size 1 + (b >> 4) % 8, value v (twice for 8 bytes)
 *   4/5   BAR1 read/write: offset (a | c << 8) % 4 KiB, sizes as above
 *   6     the device raises: a % 4 = queue b's interrupt, a config
 *         change, NEEDS_RESET, or "refuse the next starts" (c odd)
 *   7     driver shortcuts, a % 4: negotiate (offered & v, VERSION_1
 *         unless b odd), set up queue b (size 1 << c % 16, rings from v,
 *         vector c >> 4), DRIVER_OK, or all of it after a reset
 *   8     an MMIO access anywhere in the slot windows (0xc0000000 + v %
 *         64 MiB; write if b odd), sizes as above
 *   9     program MSI-X vector a (address, data, unmask if c odd)
 *   10    write the status byte a
 *   11    the MSI-X control word (enable, function mask) from a
 *
 * Invariants, in the fake device's callbacks: start only with FEATURES_OK
 * and DRIVER_OK in the status and not FAILED, never after the driver wrote
 * FAILED until a reset, with features that include VERSION_1 and are a
 * subset of the offered ones, and queues that are sane; stop only when
 * started and never a start while started (stop comes first); notify only
 * for an existing queue with DRIVER_OK; notify_moved only for a hooking,
 * started device, with the doorbell's real new address; device config
 * writes only inside the writable window.
 * After every record: read-only config bits never change; the BARs'
 * regions are on the MMIO bus exactly when memory decoding is on (if they
 * do not collide); queue configuration is frozen while the device is
 * started; every queue's size is a power of two up to the maximum and its
 * vector valid or NO_VECTOR; the device config outside the writable window
 * is untouched; a hooking device always knows where its doorbells are;
 * MSIs are sent only with MSI-X enabled and the function unmasked, INTx
 * only in INTx mode with Interrupt Disable clear; ISR reads only bits 0-1.
 */
#include "fuzz.h"

#include "mmio.h"
#include "pci.h"
#include "pci_msix.h"
#include "virtio_pci.h"

#define WINDOW 0xc0000000ull
#define MAX_Q VIRTIO_PCI_MAX_QUEUES

struct fake {
	struct virtio_pci *vp;
	struct pci_msix *msix;
	bool hooked, started, refuse, failed_written;
	unsigned nq;
	uint64_t offered, told;          /* told: the doorbell address the device hooked */
	struct virtio_pci_queue snap[MAX_Q];
	unsigned cfg_size, wr_off, wr_len;
	int line;
};

static struct fake F;

static void check_queue(const struct virtio_pci_queue *q)
{
	FUZZ_CHECK(q->size && !(q->size & (q->size - 1)) && q->size <= q->max_size);
	FUZZ_CHECK(q->msix_vector == VIRTIO_MSI_NO_VECTOR || q->msix_vector < F.msix->nvec);
}

static int fake_start(void *dev, uint64_t features, char *err, size_t errlen)
{
	uint8_t s = virtio_pci_status(F.vp);
	FUZZ_CHECK(dev == &F && !F.started);   /* a re-start comes after a stop */
	FUZZ_CHECK((s & VIRTIO_CONFIG_S_FEATURES_OK) && (s & VIRTIO_CONFIG_S_DRIVER_OK));
	FUZZ_CHECK(!(s & VIRTIO_CONFIG_S_FAILED) && !F.failed_written);
	FUZZ_CHECK(features & (1ull << VIRTIO_F_VERSION_1));
	FUZZ_CHECK((features & ~F.offered) == 0);
	for (unsigned i = 0; i < F.nq; i++) {
		F.snap[i] = *virtio_pci_queue(F.vp, i);
		check_queue(&F.snap[i]);
	}
	FUZZ_CHECK(virtio_pci_queue(F.vp, F.nq) == NULL);
	if (F.refuse) {
		snprintf(err, errlen, "fuzz: start refused");
		return -1;
	}
	F.started = true;
	F.told = virtio_pci_notify_gpa(F.vp, 0);
	return 0;
}

static void fake_stop(void *dev)
{
	FUZZ_CHECK(dev == &F && F.started);
	F.started = false;
}

static void fake_notify(void *dev, unsigned q)
{
	FUZZ_CHECK(dev == &F && q < F.nq);
	FUZZ_CHECK(virtio_pci_status(F.vp) & VIRTIO_CONFIG_S_DRIVER_OK);
	/* A device may answer a doorbell with an interrupt at once. */
	virtio_pci_interrupt(F.vp, q);
}

static void fake_notify_moved(void *dev, uint64_t gpa)
{
	FUZZ_CHECK(dev == &F && F.hooked && F.started);
	FUZZ_CHECK(gpa == virtio_pci_notify_gpa(F.vp, 0) && gpa != F.told);
	F.told = gpa;
}

static void fake_cfg_write(void *dev, unsigned off, unsigned size)
{
	FUZZ_CHECK(dev == &F && size >= 1 && size <= 8);
	FUZZ_CHECK(off >= F.wr_off && off + size <= F.wr_off + F.wr_len);
	FUZZ_CHECK(off + size <= F.cfg_size);
}

static const struct virtio_pci_ops fake_ops = {
	.start = fake_start, .stop = fake_stop, .notify = fake_notify,
	.notify_moved = fake_notify_moved, .cfg_write = fake_cfg_write,
};

static void t_line(void *arg, int level)
{
	struct pci_msix *m = F.msix;
	FUZZ_CHECK(level == 0 || level == 1);
	FUZZ_CHECK(level != F.line);   /* only changes are driven */
	if (level)
		FUZZ_CHECK(m->mode == PCI_IRQ_INTX && !m->intx_disable);
	F.line = level;
}

static void t_deliver(void *arg, uint64_t addr, uint32_t data)
{
	struct pci_msix *m = F.msix;
	FUZZ_CHECK(m->enabled && !m->fmask && m->mode == PCI_IRQ_MSIX);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct rig {
	struct vm vm;
	struct pci_bus bus;
	struct pci_device *dev;
	uint8_t slot;
	uint8_t *cfg, *cfg0;             /* the device config, and as created */
	uint8_t ro0[PCI_CFG_SIZE];       /* config space as created */
};

static uint32_t cfg_addr(const struct rig *r, unsigned reg)
{
	return 0x80000000u | (uint32_t)r->slot << 11 | (reg & 0xfc);
}

static uint32_t cfg_read(struct rig *r, unsigned reg, unsigned size)
{
	/* A cycle through 0xcfc-0xcff never straddles the dword: neither does this. */
	if ((reg & 3) + size > 4)
		size = 1;
	uint32_t v = pci_bus_cfg_read(&r->bus, cfg_addr(r, reg), reg & 3, size);
	if (size < 4)
		FUZZ_CHECK(v >> (8 * size) == 0);
	return v;
}

static void cfg_write(struct rig *r, unsigned reg, unsigned size, uint32_t v)
{
	if ((reg & 3) + size > 4)
		size = 1;
	pci_bus_cfg_write(&r->bus, cfg_addr(r, reg), reg & 3, size, v);
}

static uint64_t bar(const struct rig *r, int n)
{
	return pci_cfg_read(r->dev, PCI_BAR0 + 4 * n, 4) & 0xfffffff0u;
}

/* Which region of the bus answers gpa: its start and length, or false. */
static bool region_at(struct rig *r, uint64_t gpa, uint64_t *start, uint64_t *len)
{
	for (size_t i = 0; i < r->vm.mmio.n; i++) {
		const struct mmio_region *g = &r->vm.mmio.regions[i];
		if (gpa >= g->gpa && gpa - g->gpa < g->len) {
			*start = g->gpa;
			*len = g->len;
			return true;
		}
	}
	return false;
}

static uint64_t mmio(struct rig *r, uint64_t gpa, unsigned size, bool wr, uint64_t v)
{
	uint8_t data[8];
	uint64_t start, len;
	/*
	 * A status write that reaches the common config: note FAILED before
	 * the transport sees it (it must not start the device from then on
	 * until a reset), and the reset.
	 */
	if (wr && size == 1 && region_at(r, gpa, &start, &len) && start == bar(r, 4) &&
	    len > 0x1000 && gpa - start == VIRTIO_PCI_COMMON_STATUS) {
		if ((uint8_t)v == 0)
			F.failed_written = false;
		else if (v & VIRTIO_CONFIG_S_FAILED)
			F.failed_written = true;
	}
	if (wr) {
		memcpy(data, &v, sizeof(data));
	} else {
		memset(data, 0xa5, sizeof(data));
	}
	mmio_dispatch(&r->vm.mmio, gpa, size, wr, data);
	uint64_t out = 0;
	if (!wr) {
		memcpy(&out, data, size);
		/* The ISR holds two bits, whatever the size of an access the bus takes. */
		bool sized = size == 1 || size == 2 || size == 4 || size == 8;
		if (sized && region_at(r, gpa, &start, &len) && start == bar(r, 4) &&
		    len > 0x1000 && gpa - start == 0x1000)
			FUZZ_CHECK(out <= 3);
	}
	return out;
}

static uint64_t common(struct rig *r, unsigned off, unsigned size, bool wr, uint64_t v)
{
	return mmio(r, bar(r, 4) + off, size, wr, v);
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void check(struct rig *r)
{
	/* Read-only configuration bits: as created. */
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		FUZZ_CHECK(((r->dev->cfg[i] ^ r->ro0[i]) & ~r->dev->wmask[i]) == 0);
	uint64_t b1 = bar(r, 1), b4 = bar(r, 4);
	FUZZ_CHECK((b1 & 0xfff) == 0 && (b4 & 0x3fff) == 0);

	/* The regions follow decoding (unless the guest made the BARs collide). */
	uint64_t len4 = F.hooked ? 0x3000 : 0x4000;
	bool mem = pci_cfg_read(r->dev, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;
	if (!mem) {
		FUZZ_CHECK(r->vm.mmio.n == 0);
		FUZZ_CHECK(virtio_pci_notify_gpa(F.vp, 0) == UINT64_MAX);
	} else if (!overlap(b1, 0x1000, b4, len4)) {
		uint64_t s, l;
		FUZZ_CHECK(r->vm.mmio.n == 2);
		FUZZ_CHECK(region_at(r, b1, &s, &l) && s == b1 && l == 0x1000);
		FUZZ_CHECK(region_at(r, b4, &s, &l) && s == b4 && l == len4);
		FUZZ_CHECK(virtio_pci_notify_gpa(F.vp, 0) == b4 + 0x3000);
	} else {
		FUZZ_CHECK(r->vm.mmio.n <= 2);
	}

	for (unsigned i = 0; i < F.nq; i++) {
		const struct virtio_pci_queue *q = virtio_pci_queue(F.vp, i);
		check_queue(q);
		/* Frozen from start to stop: the device runs on what it was given. */
		if (F.started)
			FUZZ_CHECK(q->size == F.snap[i].size && q->enabled == F.snap[i].enabled &&
				   q->desc == F.snap[i].desc && q->avail == F.snap[i].avail &&
				   q->used == F.snap[i].used &&
				   q->msix_vector == F.snap[i].msix_vector);
	}
	if (F.started && F.hooked)
		FUZZ_CHECK(F.told == virtio_pci_notify_gpa(F.vp, 0));

	/* The device config: only the writable window may have changed. */
	unsigned lo = F.wr_off < F.cfg_size ? F.wr_off : F.cfg_size;
	unsigned hi = F.wr_len < F.cfg_size - lo ? lo + F.wr_len : F.cfg_size;
	FUZZ_CHECK(memcmp(r->cfg, r->cfg0, lo) == 0);
	FUZZ_CHECK(memcmp(r->cfg + hi, r->cfg0 + hi, F.cfg_size - hi) == 0);
	FUZZ_CHECK(F.line == (int)F.msix->intx_level);
}

static void negotiate(struct rig *r, uint32_t mask, bool version1)
{
	common(r, VIRTIO_PCI_COMMON_STATUS, 1, true, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	common(r, VIRTIO_PCI_COMMON_STATUS, 1, true, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	uint64_t f = F.offered & (mask | 0xffffffff00000000ull);
	if (!version1)
		f &= ~(1ull << VIRTIO_F_VERSION_1);
	common(r, VIRTIO_PCI_COMMON_GFSELECT, 4, true, 0);
	common(r, VIRTIO_PCI_COMMON_GF, 4, true, (uint32_t)f);
	common(r, VIRTIO_PCI_COMMON_GFSELECT, 4, true, 1);
	common(r, VIRTIO_PCI_COMMON_GF, 4, true, f >> 32);
	common(r, VIRTIO_PCI_COMMON_STATUS, 1, true, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
}

static void setup_queue(struct rig *r, unsigned q, unsigned size, uint64_t base, unsigned vec)
{
	common(r, VIRTIO_PCI_COMMON_Q_SELECT, 2, true, q);
	common(r, 0x18, 2, true, size);
	common(r, 0x20, 4, true, (uint32_t)base);
	common(r, 0x24, 4, true, base >> 32);
	common(r, 0x28, 4, true, (uint32_t)(base + 0x1000));
	common(r, 0x2c, 4, true, base >> 32);
	common(r, 0x30, 4, true, (uint32_t)(base + 0x2000));
	common(r, 0x34, 4, true, base >> 32);
	common(r, 0x1a, 2, true, vec);
	common(r, 0x1c, 2, true, 1);
}

static void driver_ok(struct rig *r)
{
	uint8_t s = (uint8_t)common(r, VIRTIO_PCI_COMMON_STATUS, 1, false, 0);
	common(r, VIRTIO_PCI_COMMON_STATUS, 1, true, s | VIRTIO_CONFIG_S_DRIVER_OK);
}

static uint64_t wide(uint32_t v)
{
	return (uint64_t)v << 32 | v;
}

static void record(struct rig *r, const uint8_t *rec)
{
	uint8_t op = rec[0] % 12, a = rec[1], b = rec[2], c = rec[3];
	uint32_t v = le32(rec + 4);
	unsigned msize = 1 + (b >> 4) % 8;
	static const unsigned bar4_regions[4] = { 0x0000, 0x1000, 0x2000, 0x3000 };
	switch (op) {
	case 0: cfg_read(r, a, fuzz_size(b)); break;
	case 1: cfg_write(r, a, fuzz_size(b), v); break;
	case 2:
	case 3: {
		uint64_t off = (b & 4) ? (unsigned)(a | c << 8) : bar4_regions[b & 3] + a;
		mmio(r, bar(r, 4) + off % 0x4000, msize, op == 3, wide(v));
		break;
	}
	case 4:
	case 5: mmio(r, bar(r, 1) + (unsigned)(a | c << 8) % 0x1000, msize, op == 5, wide(v)); break;
	case 6:
		switch (a % 4) {
		case 0: virtio_pci_interrupt(F.vp, b); break;
		case 1: virtio_pci_config_changed(F.vp); break;
		case 2: virtio_pci_needs_reset(F.vp, "fuzz"); break;
		case 3: F.refuse = c & 1; break;
		}
		break;
	case 7:
		switch (a % 4) {
		case 0: negotiate(r, v, !(b & 1)); break;
		case 1: setup_queue(r, b % 17, 1u << c % 16, (uint64_t)v << 12, c >> 4); break;
		case 2: driver_ok(r); break;
		case 3:
			common(r, VIRTIO_PCI_COMMON_STATUS, 1, true, 0);
			negotiate(r, v, true);
			setup_queue(r, 0, 1u << c % 16, (uint64_t)v << 12, c >> 4);
			driver_ok(r);
			break;
		}
		break;
	case 8: mmio(r, WINDOW + v % 0x4000000u, msize, b & 1, wide(v)); break;
	case 9: {
		uint64_t e = bar(r, 1) + 16ull * (a % (F.msix->nvec + 1));
		mmio(r, e, 4, true, 0xfee00000u | (uint32_t)b << 12);
		mmio(r, e + 4, 4, true, 0);
		mmio(r, e + 8, 4, true, v);
		mmio(r, e + 12, 4, true, c & 1 ? 0 : 1);
		break;
	}
	case 10: common(r, VIRTIO_PCI_COMMON_STATUS, 1, true, a); break;
	case 11:
		cfg_write(r, F.msix->cap_off + 2, 2,
			  (a & 1 ? PCI_MSIX_CTRL_ENABLE : 0) | (a & 2 ? PCI_MSIX_CTRL_FMASK : 0));
		break;
	}
	check(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 17)
		return 0;
	struct rig r;
	char err[256];
	memset(&r, 0, sizeof(r));
	memset(&F, 0, sizeof(F));
	r.vm.kvm_fd = r.vm.vm_fd = r.vm.stop_eventfd = -1;
	ioport_bus_init(&r.vm.io);
	mmio_bus_init(&r.vm.mmio);
	if (pci_bus_init(&r.bus, &r.vm, err, sizeof(err))) {
		fprintf(stderr, "fuzz_virtio_pci: set-up failed: %s\n", err);
		abort();
	}
	r.slot = (uint8_t)(1 + data[0] % 31);
	F.nq = 1 + (data[1] & 15);
	F.hooked = data[2] & 1;
	F.cfg_size = (unsigned)(data[3] | data[4] << 8) % 4097;
	F.wr_off = (unsigned)(data[5] | data[6] << 8);
	F.wr_len = (unsigned)(data[7] | data[8] << 8);
	uint64_t features = (uint64_t)le32(data + 9) | (uint64_t)le32(data + 13) << 32;
	F.offered = features | 1ull << VIRTIO_F_VERSION_1;
	/* Exactly its size on the heap: ASan sees any access past the device config. */
	r.cfg = malloc(F.cfg_size ? F.cfg_size : 1);
	r.cfg0 = malloc(F.cfg_size ? F.cfg_size : 1);
	if (!r.cfg || !r.cfg0)
		abort();
	for (unsigned i = 0; i < F.cfg_size; i++)
		r.cfg[i] = r.cfg0[i] = (uint8_t)(i * 7 + 1);
	struct virtio_pci_params p = {
		.name = "virtio-fuzz", .device_id = VIRTIO_ID_BLOCK, .class_code = 0x010000,
		.nqueues = F.nq, .queue_max_size = (uint16_t)(1u << (data[1] >> 4)),
		.features = features, .cfg = r.cfg, .cfg_size = F.cfg_size,
		.cfg_writable_off = F.wr_off, .cfg_writable_len = F.wr_len,
		.notify_hooked = F.hooked, .ops = &fake_ops, .dev = &F,
	};
	F.vp = virtio_pci_create(&r.vm, &r.bus, r.slot, &p, err, sizeof(err));
	if (!F.vp) {
		fprintf(stderr, "fuzz_virtio_pci: set-up failed: %s\n", err);
		abort();
	}
	F.msix = virtio_pci_msix(F.vp);
	F.msix->test_line = t_line;
	F.msix->test_deliver = t_deliver;
	r.dev = r.bus.devs[r.slot][0];
	memcpy(r.ro0, r.dev->cfg, sizeof(r.ro0));
	/* Decoding on, as firmware leaves it: most inputs then reach the registers at once. */
	cfg_write(&r, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	check(&r);

	for (size_t i = 17; i + 8 <= size; i += 8)
		record(&r, data + i);

	virtio_pci_destroy(F.vp);
	FUZZ_CHECK(!F.started);   /* teardown stops a started device */
	pci_bus_free(&r.bus);
	mmio_bus_free(&r.vm.mmio);
	ioport_bus_free(&r.vm.io);
	free(r.cfg);
	free(r.cfg0);
	return 0;
}
