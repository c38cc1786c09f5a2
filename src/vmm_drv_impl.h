/*
 * vmm_drv internals shared by vmm_drv.c (holds, leases), vmm_drv_hook.c
 * (the driver thread, watches, hooks) and vmm_drv_intr.c (MSIs, routes,
 * MSI-X bindings). Not for drivers: they use vmm_drv.h.
 */
#ifndef KHYVE_VMM_DRV_IMPL_H
#define KHYVE_VMM_DRV_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "irq_routing.h"
#include "vmm_drv.h"

/*
 * An eventfd the driver thread watches. Hooks are watches with an
 * ioeventfd behind them; MSI-X bindings watch their vectors' eventfds while
 * the device is in INTx mode. Under d->lock; found by id, never by pointer,
 * so an id the thread saw in an epoll batch after the watch was removed
 * simply finds nothing (ids are never reused).
 */
struct vmm_drv_watch {
	uint64_t id;
	int fd;
	vmm_drv_hook_fn cb;
	void *arg;
	bool enabled;                /* in the epoll set with EPOLLIN */
	struct vmm_hold *hold;       /* owner */
	/* Hooks only. */
	bool is_hook, pio, match, dying, armed;
	uint64_t addr, value;
	unsigned size;
};

struct vmm_drv_vm {
	struct vm *vm;
	pthread_mutex_t lock;        /* the driver-interface mutex: below, unless atomic */
	pthread_cond_t cond;
	bool destroying;
	const char *missing;         /* a KVM capability drivers need, if absent */

	struct vmm_hold *holds;      /* list */
	unsigned nholds;

	struct vmm_lease *leases;    /* unbroken leases, list */
	unsigned nleases;
	unsigned changes_pending;    /* map changers between begin and end */

	struct vmm_drv_watch **watches;
	size_t nwatches, capwatches;
	uint64_t next_id;
	uint64_t running_id;         /* the watch whose callback runs now, 0 if none */
	int epfd, wakefd;
	pthread_t thread;
	bool thread_started, thread_stop;

	struct irq_routing routing;

	atomic_ulong leases_signed, leases_broken, lease_expiries, map_changes,
		hook_callbacks, hook_writes, msi_irqfd, msi_signal;
};

struct vmm_hold {
	struct vmm_drv_vm *d;
	vmm_drv_rele_fn on_destroy;
	void *arg;
	atomic_bool release_reqd;
	/* vm_destroy's notification, under d->lock (see vmm_drv.c). */
	bool notified, cb_running, free_by_notifier;
	pthread_t cb_thread;
	unsigned expire_cbs;                       /* its leases' expire callbacks running */
	struct vmm_hold *prev, *next;
	struct vmm_drv_msix *bindings;             /* list, under d->lock */
	/* Routes, read without a lock by vmm_drv_msi; slots change under d->lock. */
	_Atomic(struct vmm_msi_route *) routes[VMM_DRV_MAX_ROUTES];
	atomic_uint routes_hwm;                    /* slots [0, hwm) may be in use */
};

struct vmm_lease {
	struct vmm_hold *hold;
	vmm_drv_expire_fn expire;
	void *arg;
	atomic_bool expired;
	bool notified, cb_running, free_by_notifier;   /* under d->lock */
	struct vmm_lease *prev, *next;
};

/* vmm_drv_hook.c */
int vmm_drv_watch_add(struct vmm_drv_vm *d, struct vmm_hold *h, int fd, vmm_drv_hook_fn cb,
		      void *arg, bool enabled, uint64_t *id, char *err, size_t errlen);
void vmm_drv_watch_enable(struct vmm_drv_vm *d, uint64_t id, bool enabled);
void vmm_drv_watch_remove(struct vmm_drv_vm *d, uint64_t id);
void vmm_drv_hooks_release(struct vmm_hold *h);
void vmm_drv_thread_stop(struct vmm_drv_vm *d);

/* vmm_drv_intr.c */
void vmm_drv_intr_release(struct vmm_hold *h);

#endif
