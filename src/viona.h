/*
 * viona: khyve's virtio-net accelerator, a driver on the driver interface
 * (vmm_drv.h), as illumos' viona is on its vmm_drv. The virtio-net device
 * model (pci_virtio_net.c) owns the PCI function and the guest-visible
 * registers; viona owns the datapath: it holds the VM, leases the memory
 * map, hooks the queue doorbells with ioeventfds and interrupts through
 * irqfds bound to the function's MSI-X vectors. The packets move either in
 * the kernel (vhost-net) or in a khyve thread (no vhost). Theory at the top
 * of viona.c.
 */
#ifndef KHYVE_VIONA_H
#define KHYVE_VIONA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct pci_msix;
struct viona;

enum viona_backend {
	VIONA_BACKEND_AUTO,    /* vhost if /dev/vhost-net works, else user */
	VIONA_BACKEND_VHOST,
	VIONA_BACKEND_USER,
};

/* A ring as the guest driver configured it. */
struct viona_ring {
	uint16_t size;
	uint16_t vector;       /* MSI-X vector, or 0xffff */
	uint64_t desc, avail, used;
};

/* The datapath gave up on the guest (a broken ring): ask for a reset. Any thread. */
typedef void (*viona_error_fn)(void *arg, const char *why);

/*
 * Open the TAP (IFF_VNET_HDR), take a hold on vm, bind to msix, open the
 * datapath. NULL with a reason (naming the TAP or /dev/vhost-net).
 */
struct viona *viona_create(struct vm *vm, struct pci_msix *msix, const char *tap,
			   enum viona_backend want, viona_error_fn on_error, void *arg,
			   char *err, size_t errlen);
void viona_destroy(struct viona *v);

/* The virtio-net (and ring) feature bits the datapath honours. */
uint64_t viona_features(struct viona *v);
const char *viona_backend_name(struct viona *v);

/*
 * DRIVER_OK: hook the doorbells (queue q's at notify_gpa + 4 * q;
 * UINT64_MAX: not decoded) and start the datapath with the rings
 * (0 receive, 1 transmit). The datapath starts on viona's control thread
 * (it must sign a lease, which may wait for a map change); the guest's
 * first kicks are not lost (each kick fd is signalled once when running).
 */
int viona_start(struct viona *v, uint64_t features, const struct viona_ring ring[2],
		uint64_t notify_gpa, char *err, size_t errlen);
/* Reset: when it returns the datapath is halted, the doorbells unhooked. */
void viona_stop(struct viona *v);
/* The doorbells moved (BAR reprogrammed): re-hook them. */
void viona_notify_moved(struct viona *v, uint64_t notify_gpa);

struct viona_stats {
	unsigned long lease_renewals, ring_errors;
	bool running;
};
void viona_get_stats(struct viona *v, struct viona_stats *s);

#endif
