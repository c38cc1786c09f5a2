/*
 * virtio over PCI, the modern (virtio 1.x, section 4.1) transport, shared
 * by every virtio device model (pci_virtio_blk.c, pci_virtio_net.c).
 * Theory at the top of virtio_pci.c.
 *
 * Guest-visible layout of a function:
 *   vendor 0x1af4, device 0x1040 + virtio device ID, revision 1 (modern
 *   only: no legacy I/O BAR), subsystem 0x1af4 / device ID.
 *   BAR1  4 KiB memory: MSI-X table at 0, PBA at 0x800.
 *   BAR4 16 KiB memory: common config at 0x0000, ISR at 0x1000, device
 *         config at 0x2000, queue notify at 0x3000 + 4 * queue (notify_off
 *         = queue index, multiplier 4: each queue its own doorbell address,
 *         so each can be an ioeventfd without data matching).
 *   Capabilities: MSI-X, then virtio COMMON, ISR, DEVICE and NOTIFY.
 */
#ifndef KHYVE_VIRTIO_PCI_H
#define KHYVE_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct pci_bus;
struct pci_msix;
struct virtio_pci;

/* Feature bits, status bits, device IDs, register layout: the kernel's (= the spec's). */
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>

#define VIRTIO_PCI_VENDOR 0x1af4

#define VIRTIO_PCI_MAX_QUEUES 16
#define VIRTIO_PCI_NOTIFY_MULT 4

/* A queue as the driver configured it through the common config. */
struct virtio_pci_queue {
	uint16_t size, max_size, msix_vector;
	bool enabled;
	uint64_t desc, avail, used;
};

/*
 * What the transport asks of the device model. start/stop run in the
 * thread of the guest's status write (a vCPU) or of teardown, with the
 * transport's lock held: they must not call back into the transport except
 * virtio_pci_queue(), virtio_pci_msix(), virtio_pci_notify_gpa(),
 * virtio_pci_interrupt() and virtio_pci_needs_reset().
 */
struct virtio_pci_ops {
	/*
	 * The driver set DRIVER_OK: queues are configured (virtio_pci_queue),
	 * features negotiated. 0, or -1 with a reason: the transport then sets
	 * DEVICE_NEEDS_RESET.
	 */
	int (*start)(void *dev, uint64_t features, char *err, size_t errlen);
	/* Reset by the driver, or teardown: no queue may be touched after this returns. */
	void (*stop)(void *dev);
	/* A queue notify the device did not hook reached userspace (vCPU thread, no lock). */
	void (*notify)(void *dev, unsigned q);
	/*
	 * Devices that hook notifies (params.notify_hooked): while started, the
	 * doorbells moved (BAR reprogrammed, memory decoding toggled). gpa is
	 * queue 0's doorbell now (queue q at gpa + 4 * q), or UINT64_MAX when
	 * the BAR is not decoded. Under the PCI bus lock and the transport's.
	 */
	void (*notify_moved)(void *dev, uint64_t gpa);
	/* The driver wrote the device config (bytes already stored); may be NULL. */
	void (*cfg_write)(void *dev, unsigned off, unsigned size);
};

struct virtio_pci_params {
	const char *name;                /* for messages and the MMIO bus */
	uint16_t device_id;              /* VIRTIO_ID_* */
	uint32_t class_code;             /* PCI class, e.g. 0x020000 for Ethernet */
	unsigned nqueues;                /* up to VIRTIO_PCI_MAX_QUEUES */
	uint16_t queue_max_size;         /* a power of two */
	uint64_t features;               /* offered; VERSION_1 is added */
	uint8_t *cfg;                    /* device config, owned by the device */
	unsigned cfg_size;               /* up to 4 KiB */
	unsigned cfg_writable_off, cfg_writable_len;  /* the part the driver may write */
	bool notify_hooked;              /* the device takes doorbells by ioeventfd */
	const struct virtio_pci_ops *ops;
	void *dev;
};

/*
 * Create the function at slot and put it on the bus; its BARs are placed
 * at slot's default window (0xc0000000 + slot MiB) and decode once the
 * guest enables memory decoding. NULL with a reason.
 */
struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus, uint8_t slot,
				     const struct virtio_pci_params *p, char *err,
				     size_t errlen);
/* The features to offer, when the device learns them after creation (before the guest runs). */
void virtio_pci_set_features(struct virtio_pci *vp, uint64_t features);
/* Teardown (after the vCPUs are gone): stops the device if started. */
void virtio_pci_destroy(struct virtio_pci *vp);

struct pci_msix *virtio_pci_msix(struct virtio_pci *vp);
const struct virtio_pci_queue *virtio_pci_queue(struct virtio_pci *vp, unsigned q);
/* Queue q's doorbell address now, or UINT64_MAX if the BAR is not decoded. */
uint64_t virtio_pci_notify_gpa(struct virtio_pci *vp, unsigned q);
/* Used buffers on queue q: its MSI-X vector, or INTx with ISR bit 0. No lock. */
void virtio_pci_interrupt(struct virtio_pci *vp, unsigned q);
/* The device config changed (e.g. link status): config vector / ISR bit 1. */
void virtio_pci_config_changed(struct virtio_pci *vp);
/*
 * The device gave up (a queue is broken): DEVICE_NEEDS_RESET and a config
 * interrupt, as virtio 1.x 2.1.2 asks. Prints why once. No lock.
 */
void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why);
/* Current status byte (for tests and stats). */
uint8_t virtio_pci_status(struct virtio_pci *vp);

#endif
