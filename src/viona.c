/*
 * viona: the driver core. THEORY
 *
 * illumos' viona is an in-kernel virtio-net datapath that reaches its VM
 * only through vmm_drv. On Linux the in-kernel datapath exists already:
 * vhost-net. viona is what connects a virtio-net device to it through
 * khyve's driver interface, and the same connection feeds a userspace
 * datapath where vhost is missing. Each piece of the interface has one job:
 *
 *   hold   taken at creation, for the device's life. VM teardown asks for
 *          it back (on_destroy): viona halts the datapath, lets its lease
 *          go and releases the hold, which takes the doorbell hooks and
 *          the MSI-X binding with it.
 *   lease  the datapath runs only while viona holds an unbroken lease: the
 *          ring addresses it hands to vhost (VHOST_SET_VRING_ADDR) or to
 *          its thread, and vhost's memory table (VHOST_SET_MEM_TABLE), are
 *          translated through that lease. A memory-map change expires it:
 *          the datapath halts (vhost: backend detached, ring positions read
 *          back with VHOST_GET_VRING_BASE), the lease is broken, a new one
 *          is signed after the change, the tables re-sent and the rings
 *          restarted at the saved positions. While no lease is held no
 *          ring address is in the kernel's hands and no packet moves; the
 *          guest's kicks wait in the eventfds and nothing is lost.
 *   hooks  each queue's doorbell is an ioeventfd on an eventfd viona owns
 *          (kick_fd[q]), which is also vhost's kick fd: a guest notify
 *          never leaves the kernel. The fds outlive hooks, so a BAR move
 *          re-hooks them without telling the datapath.
 *   MSIs   the device's MSI-X capability is bound to the interface: each
 *          vector has an eventfd routed by irqfd, kept in step with the
 *          guest's table and masks by the interface (masked: the eventfd
 *          counts, the PBA shows it, unmasking delivers once). vhost's
 *          call fd is the queue's vector's eventfd; the userspace datapath
 *          signals the same way. A guest reprogramming its vectors changes
 *          routes, not fds: the datapath never hears of it.
 *
 * Threads. All datapath transitions (run, halt, renew) happen on one
 * control thread per device, because signing a lease may block for a map
 * change, which must never be waited for on a vCPU thread holding device
 * locks. viona_start only records the rings, hooks the doorbells and asks
 * the control thread to run; viona_stop asks it to halt and waits (the
 * control thread waits for nothing a vCPU holds). The lease's expire
 * callback only sets a flag and wakes the control thread.
 *
 * Locks: v->lock guards the state flags; it is never held across a
 * datapath call, a lease sign/break or a hook change made by the control
 * thread. Order: transport lock -> v->lock -> vmm_drv's locks.
 */
#include "viona_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "errmsg.h"
#include "pci_msix.h"
#include "tap.h"
#include "virtio_net_hw.h"
#include "virtio_pci.h"

#define NONE UINT64_MAX

/* ---- the control thread ---- */

static void expire(void *arg)
{
	struct viona *v = arg;
	pthread_mutex_lock(&v->lock);
	v->lease_expired = true;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static void kick_all(struct viona *v)
{
	/* Kicks that came while the datapath was off are in the fds already; this covers a
	 * guest that rang before the doorbells were hooked. */
	for (int q = 0; q < VIONA_NQUEUES; q++) {
		uint64_t one = 1;
		if (write(v->kick_fd[q], &one, sizeof(one)) < 0) {
			/* Only EAGAIN (counter full) is possible: a kick is pending anyway. */
		}
	}
}

/* Halt the datapath and give the lease back. v->lock held; dropped inside. */
static void halt_locked(struct viona *v)
{
	struct vmm_lease *l = v->lease;
	v->busy = true;
	pthread_mutex_unlock(&v->lock);
	v->dp->halt(v);
	vmm_drv_lease_break(v->hold, l);
	pthread_mutex_lock(&v->lock);
	v->lease = NULL;
	v->running = false;
	v->busy = false;
}

static void run_transition(struct viona *v);

/* Sign a lease and run the datapath. v->lock held; dropped inside. */
static void run_locked(struct viona *v)
{
	v->busy = true;
	run_transition(v);
	v->busy = false;
}

static void run_transition(struct viona *v)
{
	pthread_mutex_unlock(&v->lock);
	struct vmm_lease *l = vmm_drv_lease_sign(v->hold, expire, v);
	pthread_mutex_lock(&v->lock);
	if (!l) {
		/* Release requested: the VM is going; on_destroy will stop us. */
		v->want_running = false;
		return;
	}
	v->lease = l;
	v->lease_expired = false;
	if (vmm_drv_lease_expired(l)) {
		/* Expired before we stored it: the callback may have missed it. */
		pthread_mutex_unlock(&v->lock);
		vmm_drv_lease_break(v->hold, l);
		pthread_mutex_lock(&v->lock);
		v->lease = NULL;
		return;
	}
	bool fresh = v->fresh;
	pthread_mutex_unlock(&v->lock);
	char err[200];
	int r = v->dp->run(v, fresh, err, sizeof(err));
	if (r == 0)
		kick_all(v);
	else
		vmm_drv_lease_break(v->hold, l);
	pthread_mutex_lock(&v->lock);
	if (r == 0) {
		v->running = true;
		v->fresh = false;
		if (!fresh)
			atomic_fetch_add(&v->lease_renewals, 1);
		return;
	}
	v->lease = NULL;
	v->want_running = false;
	pthread_mutex_unlock(&v->lock);
	viona_ring_error(v, err);
	pthread_mutex_lock(&v->lock);
}

static void *control_thread(void *arg)
{
	struct viona *v = arg;
	pthread_mutex_lock(&v->lock);
	for (;;) {
		bool must_halt = v->running && (!v->want_running || v->lease_expired || v->exiting);
		bool must_run = !v->running && v->want_running && !v->exiting;
		if (must_halt) {
			halt_locked(v);
		} else if (must_run) {
			run_locked(v);
		} else if (v->exiting) {
			break;
		} else {
			pthread_cond_broadcast(&v->cond);   /* a stop() may wait for this state */
			pthread_cond_wait(&v->cond, &v->lock);
		}
	}
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* ---- doorbells ---- */

static void unhook_all(struct viona *v)
{
	for (int q = 0; q < VIONA_NQUEUES; q++)
		if (v->hook[q])
			vmm_drv_mmio_unhook(v->hold, &v->hook[q]);
}

static int rehook(struct viona *v, uint64_t gpa, char *err, size_t errlen)
{
	unhook_all(v);
	v->notify_gpa = gpa;
	if (gpa == NONE)
		return 0;
	for (int q = 0; q < VIONA_NQUEUES; q++) {
		/*
		 * The driver writes the 16-bit queue index (virtio 1.x 4.1.5.2).
		 * Not size 0 (any width): that claims 8 bytes, over the next doorbell.
		 */
		int r = vmm_drv_mmio_hook_eventfd(v->hold, gpa + VIRTIO_PCI_NOTIFY_MULT * q, 2,
						  v->kick_fd[q], &v->hook[q], err, errlen);
		if (r)
			return r;
	}
	return 0;
}

/* ---- interrupts ---- */

static unsigned queue_vector(struct viona *v, unsigned q)
{
	/* INTx mode (no vector): any vector's eventfd raises INTx through the binding. */
	return v->ring[q].vector == VIRTIO_MSI_NO_VECTOR ? 0 : v->ring[q].vector;
}

int viona_call_fd(struct viona *v, unsigned q)
{
	return vmm_drv_msix_fd(v->msix, queue_vector(v, q));
}

void viona_interrupt(struct viona *v, unsigned q)
{
	vmm_drv_msix_signal(v->msix, queue_vector(v, q));
}

void viona_ring_error(struct viona *v, const char *why)
{
	atomic_fetch_add(&v->ring_errors, 1);
	if (v->on_error)
		v->on_error(v->on_error_arg, why);
}

/* ---- life cycle ---- */

/* Halt for good and release the hold. Idempotent; not from the control thread. */
static void release(struct viona *v)
{
	pthread_mutex_lock(&v->lock);
	if (v->released) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	v->exiting = true;
	v->want_running = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if (v->control_started)
		pthread_join(v->control, NULL);
	v->control_started = false;
	/* The hold takes the hooks and the MSI-X binding with it. */
	for (int q = 0; q < VIONA_NQUEUES; q++)
		v->hook[q] = NULL;
	v->msix = NULL;
	if (v->hold)
		vmm_drv_rele(v->hold);
	pthread_mutex_lock(&v->lock);
	v->hold = NULL;
	v->released = true;
	pthread_mutex_unlock(&v->lock);
}

static void on_destroy(void *arg)
{
	release(arg);
}

struct viona *viona_create(struct vm *vm, struct pci_msix *msix, const char *tap,
			   enum viona_backend want, viona_error_fn on_error, void *arg,
			   char *err, size_t errlen)
{
	struct viona *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "virtio-net: out of memory");
		return NULL;
	}
	v->vm = vm;
	v->tap_fd = v->kick_fd[0] = v->kick_fd[1] = -1;
	v->on_error = on_error;
	v->on_error_arg = arg;
	v->notify_gpa = NONE;
	snprintf(v->tap_name, sizeof(v->tap_name), "%s", tap);
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	for (int q = 0; q < VIONA_NQUEUES; q++) {
		v->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->kick_fd[q] < 0) {
			snprintf(err, errlen, "virtio-net: eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	v->tap_fd = tap_open(tap, err, errlen);
	if (v->tap_fd < 0)
		goto fail;
	v->hold = vmm_drv_hold(vm, on_destroy, v, err, errlen);
	if (!v->hold)
		goto fail;
	v->msix = vmm_drv_msix_bind(v->hold, msix, NULL, NULL, err, errlen);
	if (!v->msix)
		goto fail;
	if (want == VIONA_BACKEND_USER) {
		if (viona_user_open(v, err, errlen))
			goto fail;
	} else if (viona_vhost_open(v, err, errlen)) {
		if (want == VIONA_BACKEND_VHOST)
			goto fail;
		/* auto: say why vhost is not used, then run without it. */
		fprintf(stderr, "khyve: virtio-net %s: %s; using the userspace datapath\n", tap,
			err);
		if (viona_user_open(v, err, errlen))
			goto fail;
	}
	int r = pthread_create(&v->control, NULL, control_thread, v);
	if (r) {
		snprintf(err, errlen, "virtio-net: pthread_create: %s", strerror(r));
		goto fail;
	}
	v->control_started = true;
	return v;
fail:
	viona_destroy(v);
	return NULL;
}

void viona_destroy(struct viona *v)
{
	if (!v)
		return;
	release(v);
	if (v->dp)
		v->dp->close(v);
	for (int q = 0; q < VIONA_NQUEUES; q++)
		if (v->kick_fd[q] >= 0)
			close(v->kick_fd[q]);
	if (v->tap_fd >= 0)
		close(v->tap_fd);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

uint64_t viona_features(struct viona *v)
{
	return v->dp_features;
}

const char *viona_backend_name(struct viona *v)
{
	return v->dp ? v->dp->name : "none";
}

int viona_start(struct viona *v, uint64_t features, const struct viona_ring ring[2],
		uint64_t notify_gpa, char *err, size_t errlen)
{
	pthread_mutex_lock(&v->lock);
	int r = 0;
	if (v->released || v->exiting) {
		r = fail_with(err, errlen, "virtio-net: the VM is being destroyed");
		goto out;
	}
	v->features = features & v->dp_features;
	memcpy(v->ring, ring, sizeof(v->ring));
	/* Modern virtio: the 12-byte header, whatever else was negotiated. */
	if (tap_set_vnet_hdr_len(v->tap_fd, (int)sizeof(struct virtio_net_hdr_v1), err, errlen) ||
	    tap_set_offload(v->tap_fd, tap_offload_for_guest(v->features), err, errlen) ||
	    rehook(v, notify_gpa, err, errlen)) {
		unhook_all(v);
		r = -1;
		goto out;
	}
	v->want_running = true;
	v->fresh = true;
	pthread_cond_broadcast(&v->cond);
out:
	pthread_mutex_unlock(&v->lock);
	return r;
}

void viona_stop(struct viona *v)
{
	pthread_mutex_lock(&v->lock);
	v->want_running = false;
	pthread_cond_broadcast(&v->cond);
	while ((v->running || v->busy) && v->control_started)
		pthread_cond_wait(&v->cond, &v->lock);
	if (!v->released)
		unhook_all(v);
	pthread_mutex_unlock(&v->lock);
	/* Stale kicks must not wake the next run: drain the counters. */
	for (int q = 0; q < VIONA_NQUEUES; q++) {
		uint64_t n;
		if (read(v->kick_fd[q], &n, sizeof(n)) < 0) {
			/* EAGAIN: nothing pending. */
		}
	}
}

void viona_notify_moved(struct viona *v, uint64_t notify_gpa)
{
	char err[200];
	pthread_mutex_lock(&v->lock);
	if (!v->released && v->want_running && rehook(v, notify_gpa, err, sizeof(err))) {
		pthread_mutex_unlock(&v->lock);
		viona_ring_error(v, err);
		return;
	}
	/*
	 * A guest that rang while its doorbells were not decoded (or between
	 * unhook and hook) reached nobody: a spurious kick makes up for it.
	 */
	if (!v->released && v->want_running && notify_gpa != NONE)
		kick_all(v);
	pthread_mutex_unlock(&v->lock);
}

void viona_get_stats(struct viona *v, struct viona_stats *s)
{
	s->lease_renewals = atomic_load(&v->lease_renewals);
	s->ring_errors = atomic_load(&v->ring_errors);
	pthread_mutex_lock(&v->lock);
	s->running = v->running;
	pthread_mutex_unlock(&v->lock);
}
