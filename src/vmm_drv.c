/*
 * THE DRIVER INTERFACE (vmm_drv) — big theory statement
 * =====================================================
 *
 * Why. An accelerated device (viona; a vhost-net virtio-net) moves packets
 * in threads of its own -- or in the kernel -- while the guest runs. Going
 * through the general device model for every doorbell, every ring access
 * and every interrupt would put a userspace round trip, a lock and a vCPU
 * exit on each of them. illumos solved this with vmm_drv, the interface its
 * in-kernel viona uses to reach a VM; this is khyve's, on KVM's primitives:
 * ioeventfd for doorbells, irqfd + GSI routing for interrupts, and leases
 * for lock-free access to guest memory. API: vmm_drv.h.
 *
 * 1. Holds: keeping the VM alive
 *    vmm_drv_hold() gives a driver a handle for the VM's life. vm_destroy()
 *    (after joining the vCPUs, before closing any fd or unmapping RAM) calls
 *    vmm_drv_vm_destroy(): it marks every hold release-requested
 *    (vmm_drv_release_reqd() turns true, blocked lease signers wake up and
 *    fail), calls each holder's on_destroy callback once, in its own thread,
 *    with no lock held, and waits until every hold has been released with
 *    vmm_drv_rele(). Release is explicit and takes everything the hold owns
 *    with it (hooks, routes, bindings, leases), synchronously; a driver may
 *    release from inside its hook and on_destroy callbacks. No callback of
 *    a hold runs after vmm_drv_rele() returns: releasing waits for an
 *    on_destroy or expire callback running in another thread to return (or,
 *    from inside on_destroy, leaves the freeing to the notifier), so
 *    everything a driver passed as a callback argument may be freed then.
 *
 * 2. Leases: guest memory without a lock
 *    A lease is a long-held, revocable read hold on the memory map. While a
 *    driver holds an unbroken lease, the map does not change, so
 *    vmm_drv_gpa2kva() reads vm->mem with no lock at all (memmap_translate:
 *    NULL unless the range lies inside one RAM segment). The writer side of
 *    the map lock (vm_map_wrlock, vm_lock.c) revokes leases before it
 *    changes anything:
 *      a. under the interface mutex, count itself as a pending change: from
 *         now on vmm_drv_lease_sign() blocks;
 *      b. mark every lease expired and call its driver's expire callback,
 *         one at a time, in the writer's thread, with no lock held;
 *      c. wait until every lease has been broken (vmm_drv_lease_break);
 *      d. take the map write lock, change the map, drop it;
 *      e. uncount itself; when no change is pending, wake blocked signers.
 *    Drivers poll vmm_drv_lease_expired() between uses or react to the
 *    callback; either way they stop translating, break, and sign again
 *    (which waits for e) and translate again. Breaking never waits for the
 *    expire callback, which may still be running in the writer's thread
 *    (the lease is then freed when it returns): a driver typically breaks
 *    under the lock that guards its use of the pointers, and its callback
 *    takes that same lock to flag the ring -- viona's pattern. So a
 *    callback may run for a lease its driver has just broken and must only
 *    signal; its argument lives until vmm_drv_rele(), which does wait.
 *    Happens-before: every translation precedes its lease's break, which
 *    precedes (c), which
 *    precedes the change (d); the change precedes (e), which precedes any
 *    sign that returns after it. So a driver never reads a map being
 *    changed, and never uses a pointer across a change: "no use after
 *    change" is exactly "no use after break".
 *    vmm_drv_lease_segments() hands out the whole map (gpa, len, hva per
 *    RAM segment) under the same rule, for a driver that gives guest memory
 *    to the kernel (vhost's VHOST_SET_MEM_TABLE): the table is valid until
 *    the break, so such a driver stops its vhost rings before it breaks and
 *    installs a fresh table from its next lease.
 *    Several writers may overlap: the pending count covers them all, and
 *    the map write lock orders their changes.
 *
 * 3. Hooks: doorbells that never leave the kernel
 *    vmm_drv_ioport_hook / vmm_drv_mmio_hook register a KVM_IOEVENTFD: a
 *    guest write of the hooked size (and value, for _match) increments an
 *    eventfd inside KVM and the vCPU re-enters the guest at once. One
 *    thread per VM, the driver thread, waits on every hook's eventfd with
 *    epoll and calls cb(arg, count), count being the writes since the last
 *    call (doorbells coalesce; none is lost). One thread per VM rather than
 *    per hold: callbacks are meant to be short (count, wake a worker, as
 *    viona's are), drivers on one VM are few, and a single thread makes
 *    "is this hook's callback running?" one variable, which is what makes
 *    unhooking cheap to make synchronous. A driver needing parallelism has
 *    its own workers, woken from the callback.
 *    Unhook is synchronous: (1) under the mutex the hook is marked dying:
 *    the driver thread, which looks every event up by id and reads the
 *    eventfd under the mutex, starts no callback for it any more, and
 *    writes still counted in the eventfd are dropped with it; (2) the
 *    ioeventfd is deassigned in KVM (which waits for writes in flight), so
 *    writes from then on exit to userspace again; (3) the hook leaves the
 *    table and, if its callback is running right now on the driver thread,
 *    unhook waits for it to return (unless called from that very
 *    callback). After that, no callback can happen.
 *    A hook is refused (-EBUSY) if a device model claims the port/range
 *    (I/O-port bus, MMIO bus), if KVM's in-kernel devices answer it
 *    (PIC, ELCR, PIT, speaker ports; LAPIC and IOAPIC pages), or if it
 *    overlaps another hook (two hooks on the same port and size may coexist
 *    if both match different values, as KVM allows).
 *    Eventfd hooks (vmm_drv_*_hook_eventfd) are hooks whose eventfd is the
 *    caller's: the consumer of the doorbell is not the driver thread but
 *    vhost (the eventfd is its kick fd) or a thread of the driver's, so the
 *    hook is in the table (admission, collisions, release with the hold)
 *    and never in the epoll set. Ownership stays with the caller: the hook
 *    keeps a dup() of the fd, and KVM is assigned and deassigned through
 *    that dup -- KVM identifies the ioeventfd to deassign by its eventfd,
 *    so a caller closing (or reusing the number of) its fd while hooked
 *    must not make the deassign miss and leave KVM signalling forever.
 *    Unhooking is steps (2) and (3) above with nothing to drop: the fd is
 *    never read here, so doorbells already counted stay in it for its
 *    consumer. One eventfd may therefore be hooked at several addresses
 *    at once (KVM keys ioeventfds by address, not by fd) and re-hooked at
 *    a new address after an unhook (a BAR move: unhook, hook at the new
 *    address; a doorbell written in between exits to userspace and is the
 *    device model's to forward).
 *
 * 4. Interrupts: MSIs without trapping the guest
 *    KVM routes a GSI to a message (KVM_SET_GSI_ROUTING, irq_routing.c,
 *    which always keeps KVM's default irqchip routes for GSIs 0-23) and an
 *    irqfd raises a GSI when its eventfd is written -- by a driver thread,
 *    or by the kernel (vhost). A route (vmm_drv_msi_route) is one GSI with
 *    its message and one eventfd, attached to KVM as an irqfd while the
 *    route is unmasked and detached while it is masked, so that writes on a
 *    masked route accumulate in the eventfd (the pending state) and are
 *    delivered once when it is re-attached: KVM polls the eventfd when an
 *    irqfd is assigned. vmm_drv_msi(hold, addr, data) takes the irqfd path
 *    when the message is that of an unmasked route of the hold (found
 *    without a lock: each route publishes its message under a sequence
 *    counter), else KVM_SIGNAL_MSI; both reach the guest without a vCPU
 *    exit to userspace. MSI-X bindings (vmm_drv_msix_bind) make a device's
 *    pci_msix capability drive one route per vector: the model tells the
 *    binding about every change of a vector's message or effective mask
 *    and of the MSI-X/INTx mode (pci_msix.c has the masking theory), the
 *    binding updates the route and the irqfd, then calls the driver's
 *    interrupt-config callback. While MSI-X is disabled the vectors'
 *    eventfds are watched by the driver thread instead, and an event
 *    raises the device's INTx line (pci_msix_notify -> vm_irq_line on the
 *    slot's _PRT GSI).
 *
 * Lock order (vm_lock.c's levels)
 *    - A lease is at the map-lock level (b): never wait for a vCPU freeze
 *      while holding one, never sign one while holding the map read lock or
 *      a lease that may be expiring.
 *    - The interface mutex (d->lock) is a leaf: held for list and table
 *      changes and eventfd reads, never across a callback, a wait for a
 *      vCPU, or another khyve lock -- except the waits on its own condvar
 *      (for leases, holds, a running callback), which release it.
 *    - KVM ioctls (ioeventfd, irqfd, routing) are made outside d->lock; the
 *      routing table's own mutex is a leaf under which only the ioctl runs.
 *    - Waiting for a callback (unhook, unbind, rele) happens with d->lock
 *      released; so a callback must not wait for the thing that waits for
 *      it, and must not take a lock its unhooker holds. A lease break waits
 *      for nothing (its expire callback may take the breaker's locks).
 *    - MSI-X backend calls run under the device's MSI-X lock (a device
 *      lock) and take d->lock and the routing mutex below it.
 */
#include "vmm_drv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vm.h"
#include "vmm_drv_impl.h"

int vmm_drv_vm_init(struct vm *vm, char *err, size_t errlen)
{
	struct vmm_drv_vm *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory for the driver interface");
		return -1;
	}
	d->vm = vm;
	d->epfd = d->wakefd = -1;
	d->next_id = 1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	irq_routing_init(&d->routing, vm->vm_fd);
	/* Checked now, before any sandbox: holds may be taken later. */
	static const struct { long cap; const char *what; } needed[] = {
		{ KVM_CAP_IOEVENTFD, "ioeventfd" },
		{ KVM_CAP_IRQFD, "irqfd" },
		{ KVM_CAP_IRQ_ROUTING, "GSI routing" },
		{ KVM_CAP_SIGNAL_MSI, "KVM_SIGNAL_MSI" },
	};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]) && !d->missing; i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0)
			d->missing = needed[i].what;
	vm->drv = d;
	return 0;
}

void vmm_drv_vm_destroy(struct vm *vm)
{
	struct vmm_drv_vm *d = vm->drv;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->destroying = true;
	for (struct vmm_hold *h = d->holds; h; h = h->next)
		atomic_store(&h->release_reqd, true);
	pthread_cond_broadcast(&d->cond);   /* blocked signers fail now */
	for (;;) {
		struct vmm_hold *h = d->holds;
		while (h && h->notified)
			h = h->next;
		if (!h)
			break;
		h->notified = true;
		if (!h->on_destroy)
			continue;
		h->cb_running = true;
		h->cb_thread = pthread_self();
		pthread_mutex_unlock(&d->lock);
		h->on_destroy(h->arg);
		pthread_mutex_lock(&d->lock);
		h->cb_running = false;
		pthread_cond_broadcast(&d->cond);
		if (h->free_by_notifier)
			free(h);
	}
	while (d->nholds > 0)
		pthread_cond_wait(&d->cond, &d->lock);
	pthread_mutex_unlock(&d->lock);

	vmm_drv_thread_stop(d);
	irq_routing_fini(&d->routing);
	free(d->watches);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
	vm->drv = NULL;
}

struct vmm_hold *vmm_drv_hold(struct vm *vm, vmm_drv_rele_fn on_destroy, void *arg,
			      char *err, size_t errlen)
{
	struct vmm_drv_vm *d = vm->drv;
	if (!d) {
		snprintf(err, errlen, "vmm_drv: the VM has no driver interface");
		return NULL;
	}
	if (d->missing) {
		snprintf(err, errlen, "vmm_drv: this KVM lacks %s", d->missing);
		return NULL;
	}
	struct vmm_hold *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "vmm_drv: out of memory");
		return NULL;
	}
	h->d = d;
	h->on_destroy = on_destroy;
	h->arg = arg;
	pthread_mutex_lock(&d->lock);
	if (d->destroying) {
		pthread_mutex_unlock(&d->lock);
		free(h);
		snprintf(err, errlen, "vmm_drv: the VM is being destroyed");
		return NULL;
	}
	h->next = d->holds;
	if (d->holds)
		d->holds->prev = h;
	d->holds = h;
	d->nholds++;
	pthread_mutex_unlock(&d->lock);
	return h;
}

bool vmm_drv_release_reqd(struct vmm_hold *h)
{
	return atomic_load(&h->release_reqd);
}

struct vm *vmm_drv_vm(struct vmm_hold *h)
{
	return h->d->vm;
}

void vmm_drv_rele(struct vmm_hold *h)
{
	struct vmm_drv_vm *d = h->d;
	/* Everything the hold owns, each synchronously. */
	vmm_drv_intr_release(h);
	vmm_drv_hooks_release(h);
	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct vmm_lease *l = d->leases;
		while (l && l->hold != h)
			l = l->next;
		if (!l)
			break;
		pthread_mutex_unlock(&d->lock);
		vmm_drv_lease_break(h, l);
		pthread_mutex_lock(&d->lock);
	}
	/* An expire callback may outlive its lease's break; none outlives the hold. */
	while (h->expire_cbs > 0)
		pthread_cond_wait(&d->cond, &d->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		d->holds = h->next;
	if (h->next)
		h->next->prev = h->prev;
	d->nholds--;
	bool free_now = true;
	if (h->cb_running) {
		if (pthread_equal(h->cb_thread, pthread_self()))
			h->free_by_notifier = true, free_now = false;
		else
			while (h->cb_running)
				pthread_cond_wait(&d->cond, &d->lock);
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (free_now)
		free(h);
}

/* ---- Leases ---- */

struct vmm_lease *vmm_drv_lease_sign(struct vmm_hold *h, vmm_drv_expire_fn expire, void *arg)
{
	struct vmm_drv_vm *d = h->d;
	struct vmm_lease *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->hold = h;
	l->expire = expire;
	l->arg = arg;
	pthread_mutex_lock(&d->lock);
	while (d->changes_pending > 0 && !atomic_load(&h->release_reqd))
		pthread_cond_wait(&d->cond, &d->lock);
	if (atomic_load(&h->release_reqd)) {
		pthread_mutex_unlock(&d->lock);
		free(l);
		return NULL;
	}
	l->next = d->leases;
	if (d->leases)
		d->leases->prev = l;
	d->leases = l;
	d->nleases++;
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_add_explicit(&d->leases_signed, 1, memory_order_relaxed);
	return l;
}

void vmm_drv_lease_break(struct vmm_hold *h, struct vmm_lease *l)
{
	struct vmm_drv_vm *d = h->d;
	pthread_mutex_lock(&d->lock);
	if (l->prev)
		l->prev->next = l->next;
	else
		d->leases = l->next;
	if (l->next)
		l->next->prev = l->prev;
	d->nleases--;
	/*
	 * Never wait for the expire callback: the breaker may hold a lock the
	 * callback takes (viona breaks under its ring lock). If it is running,
	 * the notifier frees the lease when it returns.
	 */
	bool free_now = !l->cb_running;
	l->free_by_notifier = l->cb_running;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_add_explicit(&d->leases_broken, 1, memory_order_relaxed);
	if (free_now)
		free(l);
}

bool vmm_drv_lease_expired(struct vmm_lease *l)
{
	return atomic_load_explicit(&l->expired, memory_order_acquire);
}

void *vmm_drv_gpa2kva(struct vmm_lease *l, uint64_t gpa, uint64_t len)
{
	/* No lock: the map cannot change while this lease is unbroken. */
	return memmap_translate(&l->hold->d->vm->mem, gpa, len);
}

size_t vmm_drv_lease_segments(struct vmm_lease *l, struct vmm_drv_segment *out, size_t max)
{
	/* No lock, as for gpa2kva: the map cannot change while this lease is unbroken. */
	const struct memmap *map = &l->hold->d->vm->mem;
	for (size_t i = 0; i < map->nsegs && i < max; i++)
		out[i] = (struct vmm_drv_segment){ .gpa = map->segs[i].gpa,
						   .len = map->segs[i].len,
						   .hva = map->segs[i].hva };
	return map->nsegs;
}

void vmm_drv_map_change_begin(struct vm *vm)
{
	struct vmm_drv_vm *d = vm->drv;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->changes_pending++;
	bool expired_any = false;
	for (;;) {
		/* Restart the walk after each callback: the list may have changed. */
		struct vmm_lease *l = d->leases;
		while (l && l->notified)
			l = l->next;
		if (!l)
			break;
		l->notified = true;
		atomic_store_explicit(&l->expired, true, memory_order_release);
		expired_any = true;
		if (!l->expire)
			continue;
		struct vmm_hold *h = l->hold;
		l->cb_running = true;
		h->expire_cbs++;
		pthread_mutex_unlock(&d->lock);
		l->expire(l->arg);
		pthread_mutex_lock(&d->lock);
		l->cb_running = false;
		h->expire_cbs--;
		pthread_cond_broadcast(&d->cond);
		if (l->free_by_notifier)
			free(l);
	}
	while (d->nleases > 0)
		pthread_cond_wait(&d->cond, &d->lock);
	pthread_mutex_unlock(&d->lock);
	if (expired_any)
		atomic_fetch_add_explicit(&d->lease_expiries, 1, memory_order_relaxed);
}

void vmm_drv_map_change_end(struct vm *vm)
{
	struct vmm_drv_vm *d = vm->drv;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	if (--d->changes_pending == 0)
		pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_add_explicit(&d->map_changes, 1, memory_order_relaxed);
}

void vmm_drv_get_stats(struct vm *vm, struct vmm_drv_stats *s)
{
	memset(s, 0, sizeof(*s));
	struct vmm_drv_vm *d = vm->drv;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	s->holds = d->nholds;
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_lock(&d->routing.lock);
	s->routing_commits = d->routing.commits;
	pthread_mutex_unlock(&d->routing.lock);
	s->leases_signed = atomic_load(&d->leases_signed);
	s->leases_broken = atomic_load(&d->leases_broken);
	s->lease_expiries = atomic_load(&d->lease_expiries);
	s->map_changes = atomic_load(&d->map_changes);
	s->hook_callbacks = atomic_load(&d->hook_callbacks);
	s->hook_writes = atomic_load(&d->hook_writes);
	s->msi_irqfd = atomic_load(&d->msi_irqfd);
	s->msi_signal = atomic_load(&d->msi_signal);
}
