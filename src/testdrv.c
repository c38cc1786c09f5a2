/*
 * The test driver: theory.
 *
 * It uses the driver interface exactly as viona will:
 *   - attach: vmm_drv_hold() with an on_destroy callback that detaches; an
 *     MSI-X binding (vmm_drv_msix_bind) whose interrupt-config callback
 *     records what the guest did to the vectors; a worker thread.
 *   - doorbells: vmm_drv_ioport_hook / vmm_drv_mmio_hook. The callbacks run
 *     on the VM's driver thread; they only count and wake the worker, as
 *     viona's notify callbacks only wake its ring workers.
 *   - guest memory: the worker holds a lease and reads the "ring" (one u32
 *     at a guest-physical address) through vmm_drv_gpa2kva, with no lock.
 *     The expire callback only flags the lease and wakes the worker, which
 *     breaks it between two uses and signs a new one (sign blocks until the
 *     map change is over).
 *   - interrupts: the worker signals vectors with vmm_drv_msix_signal (one
 *     eventfd write: MSI via irqfd, pending while masked, INTx while MSI-X
 *     is off) and raw messages with vmm_drv_msi.
 *
 * Locking. td->lock (a leaf) guards the worker's queue and counters; the
 * hook callbacks, the expire callback and the interrupt-config callback
 * take only it. td->hook_lock serializes hook changes; no callback takes
 * it, so holding it across vmm_drv_*_unhook (which waits for a running
 * callback) cannot deadlock. The worker calls into vmm_drv without td->lock.
 */
#include "testdrv.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "pci_msix.h"
#include "vmm_drv.h"

#define TESTDRV_MAX_VECTORS 64

struct testdrv {
	struct vm *vm;
	struct vmm_hold *hold;       /* NULL once detached */
	struct vmm_drv_msix *msix;
	unsigned nvec;

	pthread_mutex_t hook_lock;   /* hook changes; no callback takes it */
	struct vmm_hook *io_hook, *mmio_hook;

	pthread_mutex_t lock;        /* everything below */
	pthread_cond_t cond;
	pthread_t worker;
	bool worker_started, stop;
	bool lease_expired;          /* the expire callback ran */
	bool ring_work;              /* a doorbell rang since the worker last looked */
	uint64_t ring_gpa;
	uint32_t fire_pending[TESTDRV_MAX_VECTORS];
	uint32_t raw_pending;
	uint64_t raw_addr;
	uint32_t raw_data;
	struct testdrv_counters c;
	pthread_mutex_t detach_lock; /* detach from on_destroy vs testdrv_free */
};

static void io_doorbell(void *arg, uint64_t count)
{
	struct testdrv *td = arg;
	pthread_mutex_lock(&td->lock);
	td->c.io_writes += count;
	td->ring_work = true;
	pthread_cond_signal(&td->cond);
	pthread_mutex_unlock(&td->lock);
}

static void mmio_doorbell(void *arg, uint64_t count)
{
	struct testdrv *td = arg;
	pthread_mutex_lock(&td->lock);
	td->c.mmio_writes += count;
	td->ring_work = true;
	pthread_cond_signal(&td->cond);
	pthread_mutex_unlock(&td->lock);
}

static void lease_expire(void *arg)
{
	struct testdrv *td = arg;
	pthread_mutex_lock(&td->lock);
	td->lease_expired = true;
	pthread_cond_signal(&td->cond);
	pthread_mutex_unlock(&td->lock);
}

static void intr_config(void *arg, const struct vmm_drv_intr_event *ev)
{
	struct testdrv *td = arg;
	uint32_t e;
	if (ev->what == VMM_DRV_INTR_MODE)
		e = TESTDRV_CFG_MODE | (ev->mode == PCI_IRQ_MSIX ? TESTDRV_CFG_MSIX : 0);
	else
		e = (ev->vector & 0xffff) | (ev->masked ? TESTDRV_CFG_MASKED : 0) |
		    TESTDRV_CFG_MSIX;
	pthread_mutex_lock(&td->lock);
	td->c.cfg_events++;
	td->c.cfg_last = e;
	pthread_mutex_unlock(&td->lock);
}

static bool has_work(const struct testdrv *td)
{
	if (td->stop || td->lease_expired || td->ring_work || td->raw_pending)
		return true;
	for (unsigned v = 0; v < td->nvec; v++)
		if (td->fire_pending[v])
			return true;
	return false;
}

static void *worker(void *arg)
{
	struct testdrv *td = arg;
	prctl(PR_SET_NAME, "testdrv");
	struct vmm_lease *lease = vmm_drv_lease_sign(td->hold, lease_expire, td);
	pthread_mutex_lock(&td->lock);
	if (lease)
		td->c.leases++;
	for (;;) {
		while (!has_work(td))
			pthread_cond_wait(&td->cond, &td->lock);
		if (td->stop)
			break;
		if (td->lease_expired) {
			/* Between two uses: give it back and wait for the new map. */
			td->lease_expired = false;
			pthread_mutex_unlock(&td->lock);
			if (lease)
				vmm_drv_lease_break(td->hold, lease);
			lease = vmm_drv_lease_sign(td->hold, lease_expire, td);
			pthread_mutex_lock(&td->lock);
			if (lease)
				td->c.leases++;
			continue;
		}
		if (td->ring_work) {
			td->ring_work = false;
			uint64_t gpa = td->ring_gpa;
			pthread_mutex_unlock(&td->lock);
			volatile uint32_t *p = lease ? vmm_drv_gpa2kva(lease, gpa, 4) : NULL;
			uint32_t v = p ? *p : 0xffffffffu;
			pthread_mutex_lock(&td->lock);
			td->c.ring_value = v;
			continue;
		}
		for (unsigned v = 0; v < td->nvec; v++) {
			while (td->fire_pending[v] && !td->stop) {
				td->fire_pending[v]--;
				pthread_mutex_unlock(&td->lock);
				vmm_drv_msix_signal(td->msix, v);
				pthread_mutex_lock(&td->lock);
				td->c.fired++;
			}
		}
		while (td->raw_pending && !td->stop) {
			td->raw_pending--;
			uint64_t a = td->raw_addr;
			uint32_t d = td->raw_data;
			pthread_mutex_unlock(&td->lock);
			vmm_drv_msi(td->hold, a, d);
			pthread_mutex_lock(&td->lock);
			td->c.raw_fired++;
		}
	}
	pthread_mutex_unlock(&td->lock);
	if (lease)
		vmm_drv_lease_break(td->hold, lease);
	return NULL;
}

/* Stop the worker, unhook, unbind, release the hold. Idempotent. */
static void detach(struct testdrv *td)
{
	pthread_mutex_lock(&td->detach_lock);
	if (!td->hold) {
		pthread_mutex_unlock(&td->detach_lock);
		return;
	}
	if (td->worker_started) {
		pthread_mutex_lock(&td->lock);
		td->stop = true;
		pthread_cond_signal(&td->cond);
		pthread_mutex_unlock(&td->lock);
		pthread_join(td->worker, NULL);
		td->worker_started = false;
	}
	pthread_mutex_lock(&td->hook_lock);
	vmm_drv_ioport_unhook(td->hold, &td->io_hook);
	vmm_drv_mmio_unhook(td->hold, &td->mmio_hook);
	vmm_drv_msix_unbind(td->msix);
	td->msix = NULL;
	vmm_drv_rele(td->hold);
	td->hold = NULL;
	pthread_mutex_unlock(&td->hook_lock);
	pthread_mutex_unlock(&td->detach_lock);
}

static void on_destroy(void *arg)
{
	detach(arg);
}

struct testdrv *testdrv_attach(struct vm *vm, struct pci_msix *msix, char *err, size_t errlen)
{
	struct testdrv *td = calloc(1, sizeof(*td));
	if (!td) {
		snprintf(err, errlen, "testdrv: out of memory");
		return NULL;
	}
	td->vm = vm;
	pthread_mutex_init(&td->lock, NULL);
	pthread_mutex_init(&td->hook_lock, NULL);
	pthread_mutex_init(&td->detach_lock, NULL);
	pthread_cond_init(&td->cond, NULL);
	td->hold = vmm_drv_hold(vm, on_destroy, td, err, errlen);
	if (!td->hold)
		goto fail;
	if (msix) {
		td->nvec = msix->nvec < TESTDRV_MAX_VECTORS ? msix->nvec : TESTDRV_MAX_VECTORS;
		td->msix = vmm_drv_msix_bind(td->hold, msix, intr_config, td, err, errlen);
		if (!td->msix)
			goto fail;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&td->worker, NULL, worker, td);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		snprintf(err, errlen, "testdrv: worker thread: %s", strerror(r));
		goto fail;
	}
	td->worker_started = true;
	return td;
fail:
	testdrv_free(td);
	return NULL;
}

void testdrv_free(struct testdrv *td)
{
	if (!td)
		return;
	detach(td);
	pthread_mutex_destroy(&td->lock);
	pthread_mutex_destroy(&td->hook_lock);
	pthread_mutex_destroy(&td->detach_lock);
	pthread_cond_destroy(&td->cond);
	free(td);
}

static void set_hooked(struct testdrv *td, bool io, bool on)
{
	pthread_mutex_lock(&td->lock);
	if (io)
		td->c.io_hooked = on;
	else
		td->c.mmio_hooked = on;
	pthread_mutex_unlock(&td->lock);
}

int testdrv_hook_io(struct testdrv *td, uint16_t port, char *err, size_t errlen)
{
	pthread_mutex_lock(&td->hook_lock);
	int r = -ENODEV;
	if (td->hold) {
		vmm_drv_ioport_unhook(td->hold, &td->io_hook);
		r = vmm_drv_ioport_hook(td->hold, port, 2, io_doorbell, td, &td->io_hook, err,
					errlen);
	} else {
		snprintf(err, errlen, "testdrv: detached");
	}
	set_hooked(td, true, r == 0);
	pthread_mutex_unlock(&td->hook_lock);
	return r;
}

void testdrv_unhook_io(struct testdrv *td)
{
	pthread_mutex_lock(&td->hook_lock);
	if (td->hold)
		vmm_drv_ioport_unhook(td->hold, &td->io_hook);
	set_hooked(td, true, false);
	pthread_mutex_unlock(&td->hook_lock);
}

int testdrv_hook_mmio(struct testdrv *td, uint64_t gpa, char *err, size_t errlen)
{
	pthread_mutex_lock(&td->hook_lock);
	int r = -ENODEV;
	if (td->hold) {
		vmm_drv_mmio_unhook(td->hold, &td->mmio_hook);
		r = vmm_drv_mmio_hook(td->hold, gpa, 0, mmio_doorbell, td, &td->mmio_hook, err,
				      errlen);
	} else {
		snprintf(err, errlen, "testdrv: detached");
	}
	set_hooked(td, false, r == 0);
	pthread_mutex_unlock(&td->hook_lock);
	return r;
}

void testdrv_unhook_mmio(struct testdrv *td)
{
	pthread_mutex_lock(&td->hook_lock);
	if (td->hold)
		vmm_drv_mmio_unhook(td->hold, &td->mmio_hook);
	set_hooked(td, false, false);
	pthread_mutex_unlock(&td->hook_lock);
}

void testdrv_fire(struct testdrv *td, unsigned v, uint32_t n)
{
	pthread_mutex_lock(&td->lock);
	if (v < td->nvec) {
		td->fire_pending[v] += n;
		pthread_cond_signal(&td->cond);
	}
	pthread_mutex_unlock(&td->lock);
}

void testdrv_fire_raw(struct testdrv *td, uint64_t addr, uint32_t data, uint32_t n)
{
	pthread_mutex_lock(&td->lock);
	td->raw_addr = addr;
	td->raw_data = data;
	td->raw_pending += n;
	pthread_cond_signal(&td->cond);
	pthread_mutex_unlock(&td->lock);
}

void testdrv_set_ring(struct testdrv *td, uint64_t gpa)
{
	pthread_mutex_lock(&td->lock);
	td->ring_gpa = gpa;
	pthread_mutex_unlock(&td->lock);
}

void testdrv_get_counters(struct testdrv *td, struct testdrv_counters *c)
{
	pthread_mutex_lock(&td->lock);
	*c = td->c;
	pthread_mutex_unlock(&td->lock);
}
