/*
 * virtio-net (-s SLOT,virtio-net,TAP[,mac=..][,backend=vhost|user]): the
 * device model, as bhyve's pci_virtio_viona.c is to illumos' viona.
 *
 * It owns what the guest sees -- the virtio-PCI function (transport in
 * virtio_pci.c), the MAC and link status in the device config, the
 * feature set -- and nothing of the datapath: at DRIVER_OK it hands the
 * rings and the doorbell addresses to viona (viona.c), at reset it takes
 * them back, and when the BAR moves it tells viona where the doorbells
 * went. So no packet and no doorbell ever passes through this file.
 *
 * Features offered: what the datapath honours (viona_features: checksum
 * offload and TSO both ways through the TAP, mergeable receive buffers,
 * event index, indirect descriptors), the MAC and link status. One queue
 * pair and no control queue: multiqueue would need the control queue and
 * pays only with more host CPUs than this device's users have.
 */
#include "pci_emul.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errmsg.h"
#include "pci.h"
#include "viona.h"
#include "virtio_net_hw.h"
#include "virtio_pci.h"
#include "vm.h"

#define QUEUE_SIZE 256
#define PCI_CLASS_ETHERNET 0x020000

struct pci_virtio_net {
	struct vm *vm;
	struct virtio_pci *vp;
	struct viona *viona;
	struct virtio_net_config cfg;
	char name[32];
};

static int start(void *dev, uint64_t features, char *err, size_t errlen)
{
	struct pci_virtio_net *n = dev;
	struct viona_ring ring[2];
	for (unsigned q = 0; q < 2; q++) {
		const struct virtio_pci_queue *vq = virtio_pci_queue(n->vp, q);
		if (!vq->enabled)
			return fail_with(err, errlen, "queue %u not enabled at DRIVER_OK", q);
		ring[q] = (struct viona_ring){ .size = vq->size, .vector = vq->msix_vector,
					       .desc = vq->desc, .avail = vq->avail,
					       .used = vq->used };
	}
	return viona_start(n->viona, features, ring, virtio_pci_notify_gpa(n->vp, 0), err,
			   errlen);
}

static void stop(void *dev)
{
	struct pci_virtio_net *n = dev;
	viona_stop(n->viona);
}

static void notify(void *dev, unsigned q)
{
	/* Doorbells are ioeventfds (notify_hooked): nothing reaches here. */
}

static void notify_moved(void *dev, uint64_t gpa)
{
	struct pci_virtio_net *n = dev;
	viona_notify_moved(n->viona, gpa);
}

static const struct virtio_pci_ops ops = {
	.start = start,
	.stop = stop,
	.notify = notify,
	.notify_moved = notify_moved,
};

static void on_ring_error(void *arg, const char *why)
{
	struct pci_virtio_net *n = arg;
	virtio_pci_needs_reset(n->vp, why);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	int used = 0;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &used) != 6 || s[used])
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return (mac[0] & 1) ? -1 : 0;   /* a multicast address cannot be a NIC's */
}

/* bhyve's way: a locally administered address from the VM name and slot, stable across runs. */
static void default_mac(const char *vmname, uint8_t slot, uint8_t mac[6])
{
	uint32_t h = 2166136261u;   /* FNV-1a */
	for (const char *p = vmname ? vmname : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ slot) * 16777619u;
	mac[0] = 0x02;
	mac[1] = 0x6b;   /* 'k' */
	mac[2] = 0x68;   /* 'h' */
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static void destroy(void *dev)
{
	struct pci_virtio_net *n = dev;
	if (!n)
		return;
	virtio_pci_destroy(n->vp);   /* stops viona if running */
	viona_destroy(n->viona);
	free(n);
}

static void *create(struct vm *vm, struct pci_bus *bus, uint8_t slot,
		    const struct config *cfg, const char *prefix, char *err, size_t errlen)
{
	char key[96];
	snprintf(key, sizeof(key), "%s.tap", prefix);
	const char *tap = config_get(cfg, key);
	if (!tap || !*tap) {
		snprintf(err, errlen, "%s: virtio-net needs a TAP device (-s %u,virtio-net,tapN)",
			 key, slot);
		return NULL;
	}
	snprintf(key, sizeof(key), "%s.backend", prefix);
	const char *be = config_get_default(cfg, key, "auto");
	enum viona_backend want;
	if (strcmp(be, "auto") == 0)
		want = VIONA_BACKEND_AUTO;
	else if (strcmp(be, "vhost") == 0)
		want = VIONA_BACKEND_VHOST;
	else if (strcmp(be, "user") == 0)
		want = VIONA_BACKEND_USER;
	else {
		snprintf(err, errlen, "%s=%s: expected vhost, user or auto", key, be);
		return NULL;
	}
	struct pci_virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "virtio-net: out of memory");
		return NULL;
	}
	n->vm = vm;
	snprintf(n->name, sizeof(n->name), "virtio-net@%u", slot);
	snprintf(key, sizeof(key), "%s.mac", prefix);
	const char *mac = config_get(cfg, key);
	if (mac) {
		if (parse_mac(mac, n->cfg.mac)) {
			snprintf(err, errlen, "%s=%s: expected a unicast xx:xx:xx:xx:xx:xx", key, mac);
			free(n);
			return NULL;
		}
	} else {
		default_mac(config_get(cfg, "name"), slot, n->cfg.mac);
	}
	n->cfg.status = VIRTIO_NET_S_LINK_UP;
	n->cfg.max_virtqueue_pairs = 1;
	struct virtio_pci_params p = {
		.name = n->name,
		.device_id = VIRTIO_ID_NET,
		.class_code = PCI_CLASS_ETHERNET,
		.nqueues = 2,
		.queue_max_size = QUEUE_SIZE,
		.cfg = (uint8_t *)&n->cfg,
		.cfg_size = sizeof(n->cfg),
		.notify_hooked = true,
		.ops = &ops,
		.dev = n,
	};
	n->vp = virtio_pci_create(vm, bus, slot, &p, err, errlen);
	if (!n->vp) {
		free(n);
		return NULL;
	}
	n->viona = viona_create(vm, virtio_pci_msix(n->vp), tap, want, on_ring_error, n, err,
				errlen);
	if (!n->viona) {
		destroy(n);
		return NULL;
	}
	virtio_pci_set_features(n->vp, viona_features(n->viona));
	return n;
}

const struct pci_emul pci_emul_virtio_net = {
	.name = "virtio-net",
	.create = create,
	.destroy = destroy,
};
