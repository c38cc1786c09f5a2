/*
 * viona internals shared by the driver core (viona.c) and its two
 * datapaths: viona_vhost.c (the kernel's vhost-net) and viona_user.c
 * (khyve's own thread). Not for device models: they use viona.h.
 *
 * A datapath is driven only from viona's control thread, one call at a
 * time, never with v->lock held:
 *
 *   run(v, fresh)  the lease v->lease is valid: put the rings v->ring[]
 *                  to work (translating through the lease), kicked by
 *                  v->kick_fd[q], interrupting through v->msix (the MSI-X
 *                  binding). fresh: the driver has just (re)started the
 *                  device, rings begin at index 0; otherwise continue
 *                  exactly where halt() left them (a lease renewal).
 *   halt(v)        stop: when it returns nothing touches guest memory any
 *                  more and the ring positions are saved for a later run.
 *   close(v)       free the datapath (halted before).
 *
 * A datapath that finds the guest breaking the ring protocol calls
 * viona_ring_error(v, why): the device model then asks for a reset.
 */
#ifndef KHYVE_VIONA_IMPL_H
#define KHYVE_VIONA_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "viona.h"
#include "vmm_drv.h"

#define VIONA_RXQ 0
#define VIONA_TXQ 1
#define VIONA_NQUEUES 2

struct viona;

struct viona_datapath_ops {
	const char *name;
	int (*run)(struct viona *v, bool fresh, char *err, size_t errlen);
	void (*halt)(struct viona *v);
	void (*close)(struct viona *v);
};

/* Open a datapath on v (tap open, hold taken): fills v->dp / v->dp_state. */
int viona_vhost_open(struct viona *v, char *err, size_t errlen);
int viona_user_open(struct viona *v, char *err, size_t errlen);

/*
 * The userspace datapath's packet counters (viona_user.c), since open.
 * Bytes are frame bytes, without the virtio-net header. Drops: transmit
 * frames the TAP refused or that were malformed (shorter than the header,
 * longer than 64 KiB), received packets that did not fit the guest's
 * buffers. All zero when v runs another datapath. Any thread, no lock.
 */
struct viona_user_counters {
	unsigned long tx_packets, tx_bytes, tx_drops;
	unsigned long rx_packets, rx_bytes, rx_drops;
};
void viona_user_counters(struct viona *v, struct viona_user_counters *c);

struct viona {
	struct vm *vm;
	struct vmm_hold *hold;
	struct vmm_drv_msix *msix;       /* MSI-X binding: one irqfd per vector */
	int tap_fd;
	int kick_fd[VIONA_NQUEUES];      /* eventfds: the hooked doorbells */
	char tap_name[32];

	const struct viona_datapath_ops *dp;
	void *dp_state;
	uint64_t dp_features;            /* virtio-net features the datapath honours */

	/* Set by viona_start, read by the datapath in run(). */
	uint64_t features;               /* negotiated */
	struct viona_ring ring[VIONA_NQUEUES];
	struct vmm_lease *lease;         /* valid while the datapath runs */

	viona_error_fn on_error;
	void *on_error_arg;

	pthread_mutex_t lock;            /* state below */
	pthread_cond_t cond;
	pthread_t control;
	bool control_started;
	bool want_running, running, fresh, lease_expired, exiting, released;
	bool busy;                       /* the control thread is between states */
	uint64_t notify_gpa;             /* queue 0's doorbell, or UINT64_MAX */
	struct vmm_hook *hook[VIONA_NQUEUES];

	atomic_ulong lease_renewals, ring_errors;
};

/* The MSI-X vector's eventfd for queue q's interrupts (INTx mode: vector 0's). */
int viona_call_fd(struct viona *v, unsigned q);
/* Raise queue q's interrupt from userspace. */
void viona_interrupt(struct viona *v, unsigned q);
void viona_ring_error(struct viona *v, const char *why);

#endif
