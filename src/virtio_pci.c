/*
 * virtio-PCI modern transport: theory.
 *
 * The transport owns everything virtio 1.x puts between a driver and a
 * device that is not the device's business: the PCI function and its
 * capabilities, feature negotiation, the status state machine, per-queue
 * configuration, the ISR and the choice of interrupt (MSI-X vector or
 * INTx). A device model (net, blk) sees three events -- start (DRIVER_OK
 * with the negotiated features and configured queues), stop (reset or
 * teardown) and notify (a doorbell that reached userspace) -- and raises
 * two: a used-buffer interrupt on a queue and "I need a reset".
 *
 * Negotiation. FEATURES_OK sticks only if the driver accepted a subset of
 * what was offered and VERSION_1 (this is a modern-only device, virtio 1.x
 * 6.1); otherwise the bit reads back clear and the driver gives up, as the
 * spec describes. Queue configuration is frozen from DRIVER_OK to reset:
 * the device is handed a consistent snapshot at start. Status bits only
 * accumulate until reset (the driver may not clear one), so the machine
 * only moves forward: one start at most per reset, none after FAILED.
 *
 * Doorbells. Each queue has its own 4-byte doorbell (notify multiplier 4),
 * so an accelerated device can attach one ioeventfd per queue without
 * data matching. A device that says notify_hooked takes the doorbells that
 * way (the notify area is then not on the MMIO bus at all) and is told
 * whenever the BAR moves so it can move its hooks; other devices get
 * notify() on the vCPU thread that rang.
 *
 * Locking. vp->lock serializes the common config and the status machine;
 * start and stop run under it, so a reset never overlaps a start. It is
 * taken under the MMIO bus read lock (register accesses) and under the PCI
 * bus lock + MMIO bus write lock (BAR moves): order PCI bus -> MMIO bus ->
 * vp->lock -> the device's locks. Interrupts and needs_reset take no
 * transport lock, so a device thread that raises them can always be waited
 * for by stop().
 */
#include "virtio_pci.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "mmio.h"
#include "pci.h"
#include "pci_msix.h"
#include "vm.h"

#define NONE MMIO_NOWHERE
#define PCI_CAP_ID_VNDR 0x09

#define MSIX_BAR 1
#define MSIX_BAR_SIZE 0x1000u
#define MSIX_PBA_OFF 0x800u
#define MSIX_CAP_OFF 0x40u
#define MODERN_BAR 4
#define MODERN_BAR_SIZE 0x4000u
#define COMMON_OFF 0x0000u
#define COMMON_LEN 0x38u
#define ISR_OFF 0x1000u
#define DEVICE_OFF 0x2000u
#define NOTIFY_OFF 0x3000u
#define VCAP_OFF 0x50u          /* first virtio capability; 16 bytes each, notify 20 */
#define WINDOW_BASE 0xc0000000u
#define WINDOW_PER_SLOT 0x100000u
#define INTX_GSI_BASE 16
#define MAX_VECTORS (VIRTIO_PCI_MAX_QUEUES + 1)

struct virtio_pci {
	struct vm *vm;
	struct pci_device *dev;          /* owned by the bus */
	struct pci_msix *msix;
	struct virtio_pci_params p;
	uint64_t offered;
	struct mmio_bar bars[2];         /* BAR1 (MSI-X), BAR4 on the MMIO bus; under the bus lock */

	pthread_mutex_t lock;            /* everything below but the atomics */
	uint32_t dfselect, gfselect;
	uint64_t guest_features;
	uint16_t config_vector, queue_select;
	uint8_t config_gen;
	bool started;
	uint64_t notify_told;            /* what notify_moved last said */
	struct virtio_pci_queue q[VIRTIO_PCI_MAX_QUEUES];

	_Atomic uint8_t status;
	atomic_uint isr;
	atomic_bool reset_reported;
};

static uint32_t bar_addr(const struct virtio_pci *vp, int n)
{
	return pci_cfg_read(vp->dev, PCI_BAR0 + 4 * n, 4) & 0xfffffff0u;
}

/* ---- interrupts (no lock) ---- */

static void raise(struct virtio_pci *vp, uint16_t vector, unsigned isr_bit)
{
	atomic_fetch_or(&vp->isr, isr_bit);
	if (vector < vp->msix->nvec)
		pci_msix_notify(vp->msix, vector);   /* INTx instead while MSI-X is off */
	else
		pci_msix_intx_notify(vp->msix);      /* no vector: only INTx can tell */
}

void virtio_pci_interrupt(struct virtio_pci *vp, unsigned q)
{
	if (q < vp->p.nqueues)
		raise(vp, __atomic_load_n(&vp->q[q].msix_vector, __ATOMIC_RELAXED), 1);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	raise(vp, __atomic_load_n(&vp->config_vector, __ATOMIC_RELAXED), 2);
}

void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why)
{
	uint8_t s = atomic_fetch_or(&vp->status, VIRTIO_CONFIG_S_NEEDS_RESET);
	if (!(s & VIRTIO_CONFIG_S_NEEDS_RESET) && !atomic_exchange(&vp->reset_reported, true))
		fprintf(stderr, "khyve: %s: device needs reset: %s\n", vp->p.name, why);
	virtio_pci_config_changed(vp);
}

uint8_t virtio_pci_status(struct virtio_pci *vp)
{
	return atomic_load(&vp->status);
}

struct pci_msix *virtio_pci_msix(struct virtio_pci *vp)
{
	return vp->msix;
}

const struct virtio_pci_queue *virtio_pci_queue(struct virtio_pci *vp, unsigned q)
{
	return q < vp->p.nqueues ? &vp->q[q] : NULL;
}

uint64_t virtio_pci_notify_gpa(struct virtio_pci *vp, unsigned q)
{
	bool decoded = pci_cfg_read(vp->dev, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;
	if (!decoded || q >= vp->p.nqueues)
		return NONE;
	return (uint64_t)bar_addr(vp, MODERN_BAR) + NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q;
}

/* ---- status machine (vp->lock held) ---- */

static void reset_state(struct virtio_pci *vp)
{
	vp->dfselect = vp->gfselect = 0;
	vp->guest_features = 0;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	vp->queue_select = 0;
	for (unsigned i = 0; i < vp->p.nqueues; i++)
		vp->q[i] = (struct virtio_pci_queue){ .size = vp->p.queue_max_size,
						      .max_size = vp->p.queue_max_size,
						      .msix_vector = VIRTIO_MSI_NO_VECTOR };
	atomic_store(&vp->isr, 0);
	atomic_store(&vp->status, 0);
	atomic_store(&vp->reset_reported, false);
	pci_msix_intx_ack(vp->msix);
}

static void stop_device(struct virtio_pci *vp)
{
	if (vp->started) {
		vp->p.ops->stop(vp->p.dev);
		vp->started = false;
	}
}

static void start_device(struct virtio_pci *vp)
{
	char err[200];
	vp->notify_told = virtio_pci_notify_gpa(vp, 0);
	if (vp->p.ops->start(vp->p.dev, vp->guest_features, err, sizeof(err)) == 0) {
		vp->started = true;
		return;
	}
	virtio_pci_needs_reset(vp, err);
}

static void write_status(struct virtio_pci *vp, uint8_t v)
{
	if (v == 0) {
		stop_device(vp);
		reset_state(vp);
		return;
	}
	uint8_t old = atomic_load(&vp->status);
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		bool subset = (vp->guest_features & ~vp->offered) == 0;
		bool modern = vp->guest_features & (1ull << VIRTIO_F_VERSION_1);
		if (!subset || !modern)
			v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	}
	/*
	 * Bits only accumulate until a reset (0). The driver MUST NOT clear
	 * one (virtio 1.x 2.1.1), and letting it would undo what they guard:
	 * clearing DRIVER_OK unfroze the queue configuration under a started
	 * device (common_write_field), clearing FAILED let a driver that gave
	 * up start the device. The device's NEEDS_RESET sticks the same way.
	 */
	/* An OR, not a store: a device thread may set NEEDS_RESET meanwhile (no lock). */
	v |= atomic_fetch_or(&vp->status, v);
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    (v & VIRTIO_CONFIG_S_FEATURES_OK) && !(v & VIRTIO_CONFIG_S_FAILED) && !vp->started)
		start_device(vp);
}

/* ---- common config ---- */

static uint64_t common_read_field(struct virtio_pci *vp, unsigned field)
{
	struct virtio_pci_queue *q = vp->queue_select < vp->p.nqueues ? &vp->q[vp->queue_select]
								       : NULL;
	switch (field) {
	case VIRTIO_PCI_COMMON_DFSELECT: return vp->dfselect;
	case VIRTIO_PCI_COMMON_DF: return vp->dfselect < 2 ? (uint32_t)(vp->offered >> (32 * vp->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT: return vp->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return vp->gfselect < 2 ? (uint32_t)(vp->guest_features >> (32 * vp->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX: return vp->config_vector;
	case VIRTIO_PCI_COMMON_NUMQ: return vp->p.nqueues;
	case VIRTIO_PCI_COMMON_STATUS: return atomic_load(&vp->status);
	case VIRTIO_PCI_COMMON_CFGGENERATION: return vp->config_gen;
	case VIRTIO_PCI_COMMON_Q_SELECT: return vp->queue_select;
	case VIRTIO_PCI_COMMON_Q_SIZE: return q ? q->size : 0;   /* 0: no such queue */
	case VIRTIO_PCI_COMMON_Q_MSIX: return q ? q->msix_vector : VIRTIO_MSI_NO_VECTOR;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return q ? q->enabled : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF: return vp->queue_select;
	case VIRTIO_PCI_COMMON_Q_DESCLO: return q ? (uint32_t)q->desc : 0;
	case VIRTIO_PCI_COMMON_Q_DESCHI: return q ? (uint32_t)(q->desc >> 32) : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return q ? (uint32_t)q->avail : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: return q ? (uint32_t)(q->avail >> 32) : 0;
	case VIRTIO_PCI_COMMON_Q_USEDLO: return q ? (uint32_t)q->used : 0;
	case VIRTIO_PCI_COMMON_Q_USEDHI: return q ? (uint32_t)(q->used >> 32) : 0;
	default: return 0;
	}
}

static void set_lo(uint64_t *r, uint32_t v)
{
	*r = (*r & ~0xffffffffull) | v;
}

static void set_hi(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffull) | ((uint64_t)v << 32);
}

static uint16_t valid_vector(const struct virtio_pci *vp, uint32_t v)
{
	/* An out-of-range vector reads back NO_VECTOR: the driver sees the refusal. */
	return v < vp->msix->nvec ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static void common_write_field(struct virtio_pci *vp, unsigned field, uint32_t v)
{
	bool live = atomic_load(&vp->status) & VIRTIO_CONFIG_S_DRIVER_OK;
	struct virtio_pci_queue *q = vp->queue_select < vp->p.nqueues ? &vp->q[vp->queue_select]
								       : NULL;
	switch (field) {
	case VIRTIO_PCI_COMMON_DFSELECT: vp->dfselect = v; return;
	case VIRTIO_PCI_COMMON_GFSELECT: vp->gfselect = v; return;
	case VIRTIO_PCI_COMMON_GF:
		if (vp->gfselect < 2 && !(atomic_load(&vp->status) & VIRTIO_CONFIG_S_FEATURES_OK)) {
			if (vp->gfselect == 0)
				set_lo(&vp->guest_features, v);
			else
				set_hi(&vp->guest_features, v);
		}
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		__atomic_store_n(&vp->config_vector, valid_vector(vp, v), __ATOMIC_RELAXED);
		return;
	case VIRTIO_PCI_COMMON_STATUS: write_status(vp, (uint8_t)v); return;
	case VIRTIO_PCI_COMMON_Q_SELECT: vp->queue_select = (uint16_t)v; return;
	default: break;
	}
	/* Queue configuration: frozen while the device runs (virtio 1.x 4.1.4.3.2). */
	if (!q || live)
		return;
	switch (field) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		/* A power of two up to the maximum; anything else keeps the old size. */
		if (v && v <= q->max_size && !(v & (v - 1)))
			q->size = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX: __atomic_store_n(&q->msix_vector, valid_vector(vp, v), __ATOMIC_RELAXED);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE: q->enabled = v & 1; break;
	case VIRTIO_PCI_COMMON_Q_DESCLO: set_lo(&q->desc, v); break;
	case VIRTIO_PCI_COMMON_Q_DESCHI: set_hi(&q->desc, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: set_lo(&q->avail, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: set_hi(&q->avail, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDLO: set_lo(&q->used, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDHI: set_hi(&q->used, v); break;
	default: break;
	}
}

/* Field starts and widths, for accesses of any size and alignment. */
static const struct { uint8_t off, width; } common_fields[] = {
	{ VIRTIO_PCI_COMMON_DFSELECT, 4 }, { VIRTIO_PCI_COMMON_DF, 4 }, { VIRTIO_PCI_COMMON_GFSELECT, 4 }, { VIRTIO_PCI_COMMON_GF, 4 }, { VIRTIO_PCI_COMMON_MSIX, 2 },
	{ VIRTIO_PCI_COMMON_NUMQ, 2 }, { VIRTIO_PCI_COMMON_STATUS, 1 }, { VIRTIO_PCI_COMMON_CFGGENERATION, 1 }, { VIRTIO_PCI_COMMON_Q_SELECT, 2 },
	{ VIRTIO_PCI_COMMON_Q_SIZE, 2 }, { VIRTIO_PCI_COMMON_Q_MSIX, 2 }, { VIRTIO_PCI_COMMON_Q_ENABLE, 2 }, { VIRTIO_PCI_COMMON_Q_NOFF, 2 },
	{ VIRTIO_PCI_COMMON_Q_DESCLO, 4 }, { VIRTIO_PCI_COMMON_Q_DESCHI, 4 }, { VIRTIO_PCI_COMMON_Q_AVAILLO, 4 }, { VIRTIO_PCI_COMMON_Q_AVAILHI, 4 },
	{ VIRTIO_PCI_COMMON_Q_USEDLO, 4 }, { VIRTIO_PCI_COMMON_Q_USEDHI, 4 },
};

static void common_access(struct virtio_pci *vp, unsigned off, unsigned size, bool is_write,
			  uint64_t *val)
{
	pthread_mutex_lock(&vp->lock);
	if (!is_write) {
		uint64_t v = 0;
		for (unsigned i = 0; i < sizeof(common_fields) / sizeof(*common_fields); i++) {
			unsigned fo = common_fields[i].off, fw = common_fields[i].width;
			uint64_t fv = common_read_field(vp, fo);
			for (unsigned b = 0; b < fw; b++)
				if (fo + b >= off && fo + b < off + size)
					v |= ((fv >> (8 * b)) & 0xff) << (8 * (fo + b - off));
		}
		*val = v;
	} else {
		/*
		 * A write must cover a field exactly (the spec's access rule);
		 * other writes are dropped rather than half-applied.
		 */
		for (unsigned i = 0; i < sizeof(common_fields) / sizeof(*common_fields); i++)
			if (common_fields[i].off == off && common_fields[i].width == size)
				common_write_field(vp, off, (uint32_t)*val);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* ---- BAR4 and BAR1 regions ---- */

static void modern_access(void *opaque, uint64_t off, unsigned size, bool is_write,
			  uint64_t *val)
{
	struct virtio_pci *vp = opaque;
	if (!is_write)
		*val = 0;
	if (off < COMMON_OFF + COMMON_LEN) {
		if (off + size <= COMMON_OFF + COMMON_LEN)
			common_access(vp, (unsigned)off, size, is_write, val);
	} else if (off == ISR_OFF) {
		if (!is_write) {
			/* Reading the ISR acknowledges it (virtio 1.x 4.1.4.5). */
			unsigned v = atomic_exchange(&vp->isr, 0);
			if (pci_msix_intx_asserted(vp->msix))
				v |= 1;
			pci_msix_intx_ack(vp->msix);
			*val = v & 3;
		}
	} else if (off >= DEVICE_OFF && off + size <= DEVICE_OFF + vp->p.cfg_size) {
		unsigned o = (unsigned)(off - DEVICE_OFF);
		pthread_mutex_lock(&vp->lock);
		if (!is_write) {
			uint64_t v = 0;
			memcpy(&v, vp->p.cfg + o, size);
			*val = v;
		} else if (o >= vp->p.cfg_writable_off &&
			   o + size <= vp->p.cfg_writable_off + vp->p.cfg_writable_len) {
			memcpy(vp->p.cfg + o, val, size);
			if (vp->p.ops->cfg_write)
				vp->p.ops->cfg_write(vp->p.dev, o, size);
		}
		pthread_mutex_unlock(&vp->lock);
	} else if (off >= NOTIFY_OFF && is_write) {
		uint64_t q = (off - NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
		if (q < vp->p.nqueues && (atomic_load(&vp->status) & VIRTIO_CONFIG_S_DRIVER_OK))
			vp->p.ops->notify(vp->p.dev, (unsigned)q);
	}
}

static void msix_access(void *opaque, uint64_t off, unsigned size, bool is_write,
			uint64_t *val)
{
	struct virtio_pci *vp = opaque;
	if (!pci_msix_bar_access(vp->msix, off, size, is_write, val) && !is_write)
		*val = 0;
}

static void cfg_write(struct pci_device *dev, unsigned off, unsigned size, uint32_t val)
{
	(void)val;
	struct virtio_pci *vp = dev->opaque;
	bool decode = (off < PCI_COMMAND + 2 && PCI_COMMAND < off + size) ||
		      (off < PCI_BAR0 + 24 && PCI_BAR0 < off + size);
	if (decode) {
		bool mem = pci_cfg_read(dev, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;
		vp->bars[0].want = mem ? bar_addr(vp, MSIX_BAR) : NONE;
		vp->bars[1].want = mem ? bar_addr(vp, MODERN_BAR) : NONE;
		mmio_place(&vp->vm->mmio, vp->bars, 2);
		pthread_mutex_lock(&vp->lock);
		uint64_t now = virtio_pci_notify_gpa(vp, 0);
		if (vp->started && vp->p.notify_hooked && now != vp->notify_told) {
			vp->notify_told = now;
			vp->p.ops->notify_moved(vp->p.dev, now);
		}
		pthread_mutex_unlock(&vp->lock);
	}
	pci_msix_cfg_write(vp->msix, off, size);
}

/* ---- construction ---- */

static unsigned add_vcap(struct pci_device *d, unsigned at, uint8_t type, uint32_t off,
			 uint32_t len, unsigned next)
{
	unsigned cap_len = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? 20 : 16;
	d->cfg[at] = PCI_CAP_ID_VNDR;
	d->cfg[at + 1] = (uint8_t)next;
	d->cfg[at + 2] = (uint8_t)cap_len;
	d->cfg[at + 3] = type;
	d->cfg[at + 4] = MODERN_BAR;
	pci_set32(d, at + 8, off);
	pci_set32(d, at + 12, len);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		pci_set32(d, at + 16, VIRTIO_PCI_NOTIFY_MULT);
	return at;
}

static void bar32(struct pci_device *d, int n, uint32_t addr, uint32_t size)
{
	unsigned reg = PCI_BAR0 + 4 * n;
	pci_set32(d, reg, addr);
	uint32_t mask = ~(size - 1) & 0xfffffff0u;
	for (int b = 0; b < 4; b++)
		d->wmask[reg + b] = (uint8_t)(mask >> (8 * b));
}

struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus, uint8_t slot,
				     const struct virtio_pci_params *p, char *err,
				     size_t errlen)
{
	if (slot == 0 || slot >= PCI_SLOTS) {
		snprintf(err, errlen, "%s: slot %u: expected 1 to %u", p->name, slot, PCI_SLOTS - 1);
		return NULL;
	}
	if (p->nqueues == 0 || p->nqueues > VIRTIO_PCI_MAX_QUEUES || p->queue_max_size == 0 ||
	    (p->queue_max_size & (p->queue_max_size - 1)) || p->cfg_size > NOTIFY_OFF - DEVICE_OFF) {
		snprintf(err, errlen, "%s: invalid transport parameters", p->name);
		return NULL;
	}
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	struct pci_device *d = pci_device_new(p->name, slot, 0, VIRTIO_PCI_VENDOR,
					      (uint16_t)(0x1040 + p->device_id), p->class_code);
	if (!vp || !d) {
		free(vp);
		free(d);
		snprintf(err, errlen, "%s: out of memory", p->name);
		return NULL;
	}
	vp->vm = vm;
	vp->dev = d;
	vp->p = *p;
	vp->offered = p->features | (1ull << VIRTIO_F_VERSION_1);
	vp->bars[0] = (struct mmio_bar){ .at = NONE, .want = NONE, .len = MSIX_BAR_SIZE,
					 .name = p->name, .handler = msix_access, .opaque = vp };
	/* The notify area is not on the bus when the device hooks doorbells. */
	vp->bars[1] = (struct mmio_bar){ .at = NONE, .want = NONE,
					 .len = p->notify_hooked ? NOTIFY_OFF : MODERN_BAR_SIZE,
					 .name = p->name, .handler = modern_access, .opaque = vp };
	pthread_mutex_init(&vp->lock, NULL);

	d->cfg[PCI_REVISION] = 1;   /* modern only (virtio 1.x 4.1.2.1) */
	pci_set16(d, PCI_SUBSYS_VENDOR, VIRTIO_PCI_VENDOR);
	pci_set16(d, PCI_SUBSYS_ID, p->device_id);
	uint32_t window = WINDOW_BASE + WINDOW_PER_SLOT * slot;
	bar32(d, MSIX_BAR, window, MSIX_BAR_SIZE);
	bar32(d, MODERN_BAR, window + 0x10000u, MODERN_BAR_SIZE);

	/* Virtio capabilities, linked in front of which the MSI-X one goes. */
	unsigned c = VCAP_OFF;
	unsigned notify = add_vcap(d, c + 48, VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFF,
				   VIRTIO_PCI_NOTIFY_MULT * p->nqueues, 0);
	unsigned device = add_vcap(d, c + 32, VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_OFF,
				   p->cfg_size ? p->cfg_size : 4, notify);
	unsigned isr = add_vcap(d, c + 16, VIRTIO_PCI_CAP_ISR_CFG, ISR_OFF, 1, device);
	unsigned common = add_vcap(d, c, VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFF, COMMON_LEN, isr);
	d->cfg[PCI_CAP_PTR] = (uint8_t)common;
	unsigned nvec = p->nqueues + 1 < MAX_VECTORS ? p->nqueues + 1 : MAX_VECTORS;
	vp->msix = pci_msix_create(vm, d, MSIX_CAP_OFF, nvec, MSIX_BAR, 0, MSIX_PBA_OFF,
				   INTX_GSI_BASE + slot % 4);
	if (!vp->msix) {
		snprintf(err, errlen, "%s: out of memory", p->name);
		free(d);
		virtio_pci_destroy(vp);
		return NULL;
	}
	reset_state(vp);
	d->cfg_write = cfg_write;
	d->opaque = vp;
	if (pci_bus_add(bus, d, err, errlen)) {
		free(d);
		vp->dev = NULL;
		virtio_pci_destroy(vp);
		return NULL;
	}
	return vp;
}

void virtio_pci_set_features(struct virtio_pci *vp, uint64_t features)
{
	pthread_mutex_lock(&vp->lock);
	vp->offered = features | (1ull << VIRTIO_F_VERSION_1);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	pthread_mutex_lock(&vp->lock);
	stop_device(vp);
	pthread_mutex_unlock(&vp->lock);
	pci_msix_destroy(vp->msix);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
}
