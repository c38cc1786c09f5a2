/*
 * THE VM LOCKING MODEL — big theory statement
 * ===========================================
 *
 * khyve has no compile-time vCPU limit, so it cannot do what bhyve did before
 * VM_MAXCPU went away: serialize VM-wide work by "locking the last vCPU"
 * (vcpu VM_MAXCPU-1), which both punished one arbitrary vCPU and made every
 * VM-wide reader as expensive as a vCPU freeze. Instead there are three kinds
 * of lock, each for one kind of work.
 *
 * 1. Per-vCPU: the freeze (vcpu_freeze / vcpu_unfreeze)
 *    For work in one vCPU's context: reading or writing its registers, its
 *    MP state, injecting an event, taking its statistics snapshot. Each vCPU
 *    has a small mutex + condvar protecting `state` and `freezers`:
 *
 *        IDLE --(thread reaches safe point, no freezers)--> RUNNING
 *        RUNNING --(freezer arrives: kick; thread parks)--> FROZEN
 *        IDLE --(freezer arrives, thread not running)-----> FROZEN
 *        FROZEN --(last freezer leaves)-------------------> IDLE
 *
 *    A freezer increments `freezers`, kicks the vCPU out of KVM_RUN if it is
 *    RUNNING (immediate_exit + signal; vcpu.c explains why that kick cannot
 *    be lost) and waits until the thread parks at its safe point, the top of
 *    its run loop, where no exit is half-handled. Freezers share a frozen
 *    vCPU (a count, not an owner), so a paused VM can still be inspected;
 *    KVM itself serializes the ioctls they issue on the vCPU fd.
 *    Only this vCPU stops: the other vCPUs keep running.
 *
 * 2. VM-wide read/write lock over the memory map and device set
 *    (vm_map_rdlock / vm_map_wrlock), and leases
 *    Readers: anything that needs guest RAM segments or the set of devices
 *    to stay still while it works: translating a guest-physical range to a
 *    host pointer, walking the map for khyvectl. Writer: whatever changes
 *    them: mapping or unmapping a memory segment (vm_mem_map/vm_mem_unmap),
 *    adding a device. (PCI BARs move under the MMIO bus's own lock, mmio.h:
 *    a BAR is not guest RAM, and moving one must not revoke leases.) It is
 *    a pthread rwlock that prefers writers, so a stream of readers cannot
 *    starve a map change. Readers never wait for one another, and the read
 *    side costs the same with 1 vCPU or 1024: nothing in it is per-vCPU.
 *    Leases (vmm_drv.h) are the same read side, made long-lived and
 *    revocable for accelerated drivers: while a driver holds an unbroken
 *    lease the map does not change, so it translates guest addresses with
 *    no lock at all. The writer therefore does more than take the rwlock:
 *    vm_map_wrlock (1) announces a pending change, from which moment
 *    signing a lease blocks, (2) marks every lease expired and calls each
 *    driver's expire callback, in the writer's thread and holding no lock,
 *    (3) waits until every lease has been broken, and only then (4) takes
 *    the rwlock for writing; vm_map_wrunlock drops it and, once no other
 *    change is pending, lets drivers sign again. A map change thus waits
 *    for drivers as it waits for readers, and a driver never holds a
 *    pointer across a change (vmm_drv.c, section 2, has the details).
 *
 * 3. Lock-all (vm_lock_all / vm_unlock_all)
 *    For truly VM-exclusive work: pause, a consistent snapshot of every
 *    vCPU, a topology change (vCPU hot-add). It freezes every existing vCPU
 *    in ascending index order, under `lockall_mutex` so that two lock-all
 *    callers do not interleave. It kicks them all before waiting for any,
 *    so its latency is that of the slowest vCPU, not the sum of all.
 *    Pause freezes every vCPU the same way and keeps them frozen until
 *    resume, without holding lockall_mutex, so a paused VM can still be
 *    inspected and even hot-added to.
 *
 * Cheap frequent paths
 *    - MSI delivery takes no khyve lock at all: KVM_SIGNAL_MSI and irqfd
 *      writes are serialized inside KVM.
 *    - Reading the memory map is a read lock: no vCPU is stopped, and
 *      readers run in parallel. Under a lease it is no lock at all.
 *    - A vCPU's own run loop touches only its own mutex, twice per exit
 *      to userspace, uncontended unless someone is freezing it.
 *    - Statistics are relaxed atomics, read without any lock.
 *
 * Lock ordering (acquire top to bottom, never upwards)
 *    a. vCPU freezes, in ascending vCPU index (lock-all does exactly this);
 *    b. the VM map lock (read or write), and leases: a lease is a
 *       long-held, revocable read hold at this level. The writer's lease
 *       breaking (steps 1-3 above) is done holding nothing: it waits for
 *       drivers, which may need any lock below to finish what they are
 *       doing before they break;
 *    c. device locks (UART, PCI bus, ...), leaves among themselves except
 *       for the PCI bus lock -> MMIO bus lock -> a device's own lock (e.g.
 *       MSI-X), the order config writes and BAR/MMIO accesses take them in;
 *       the driver interface's mutex and the GSI routing mutex are leaves
 *       below those (vmm_drv.c);
 *    d. a vCPU's own mutex, held only for short state changes (leaf).
 *    Consequences: nobody waits for a vCPU to freeze while holding the map
 *    lock, a lease or a device lock (a vCPU thread still inside an exit may
 *    need either to reach its safe point). A driver never signs a lease
 *    while holding the map read lock or an expiring lease of its own (the
 *    change it would wait for waits for it), and breaking a lease never
 *    waits (a driver breaks under the lock its expire callback takes). A vCPU
 *    thread never freezes a vCPU — not even itself — because it would wait
 *    for itself or for a vCPU that waits for it; VM-exclusive work a guest
 *    triggers is handed to the control thread. A thread holding vCPU k
 *    frozen may only freeze vCPUs with a higher index.
 *
 * Stopping
 *    vm_suspend() kicks every vCPU and wakes any thread parked at its safe
 *    point (vm_lock_wake_all), so a frozen vCPU's thread still exits; the
 *    freezer may go on using the fd until it unfreezes, and vm_destroy()
 *    closes fds only after every thread is joined. A freezer still waiting
 *    for a vCPU to park gives up when the VM stops (vcpu_freeze returns
 *    false), so a vCPU thread stuck in a device handler cannot also hang
 *    its freezers; the halt monitor, the one periodic freezer, has its own
 *    thread so that nothing delays vm_run's answer to SIGTERM.
 */
#include "vm_lock.h"

#include <errno.h>

#include "vcpu.h"
#include "vm.h"
#include "vmm_drv.h"

const char *vcpu_state_name(enum vcpu_state s)
{
	switch (s) {
	case VCPU_IDLE: return "idle";
	case VCPU_FROZEN: return "frozen";
	case VCPU_RUNNING: return "running";
	}
	return "?";
}

void vm_lock_init(struct vm *vm)
{
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&vm->map_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&vm->lockall_mutex, NULL);
}

void vm_lock_destroy(struct vm *vm)
{
	pthread_rwlock_destroy(&vm->map_lock);
	pthread_mutex_destroy(&vm->lockall_mutex);
}

void vcpu_lock_init(struct vcpu *v)
{
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	v->state = VCPU_IDLE;
	v->freezers = 0;
}

void vcpu_lock_destroy(struct vcpu *v)
{
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
}

/*
 * A freeze in two halves, so that lock-all can kick every vCPU first and
 * then wait for all of them: its latency is then the slowest vCPU's, not
 * the sum over all vCPUs.
 */
static bool freeze_request(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	bool exists = atomic_load(&v->created);
	if (exists) {
		v->freezers++;
		/* freezers is visible under the lock before the kick: not lost. */
		if (v->state == VCPU_RUNNING)
			vcpu_kick(v);
	}
	pthread_mutex_unlock(&v->lock);
	return exists;
}

/*
 * Wait for the vCPU to park. Gives up (false) when the VM stops first: a
 * vCPU thread stuck in a device handler must not also hang whoever wanted
 * to freeze it (the stop wakes this wait through vm_lock_wake_all). The
 * freezer count stays raised either way; the caller's unfreeze drops it.
 */
static bool freeze_wait(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	while (v->state == VCPU_RUNNING && !atomic_load(&v->vm->suspended))
		pthread_cond_wait(&v->cond, &v->lock);
	bool parked = v->state != VCPU_RUNNING;
	if (parked)
		v->state = VCPU_FROZEN;
	pthread_mutex_unlock(&v->lock);
	return parked;
}

bool vcpu_freeze(struct vcpu *v)
{
	if (!freeze_request(v))
		return false;
	if (!freeze_wait(v)) {
		vcpu_unfreeze(v);
		return false;
	}
	return true;
}

void vcpu_unfreeze(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	if (v->freezers > 0 && --v->freezers == 0) {
		/* A freeze that gave up on a stopping VM left the vCPU RUNNING. */
		if (v->state == VCPU_FROZEN)
			v->state = VCPU_IDLE;
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
}

bool vcpu_enter_run(struct vcpu *v)
{
	struct vm *vm = v->vm;
	pthread_mutex_lock(&v->lock);
	if (v->state == VCPU_RUNNING)
		v->state = VCPU_IDLE;
	while (v->freezers > 0 && !atomic_load(&vm->suspended)) {
		/* Parked at the safe point: tell the freezer it may proceed. */
		v->state = VCPU_FROZEN;
		pthread_cond_broadcast(&v->cond);
		pthread_cond_wait(&v->cond, &v->lock);
	}
	bool run = !atomic_load(&vm->suspended);
	if (run)
		v->state = VCPU_RUNNING;
	else if (v->freezers == 0)
		v->state = VCPU_IDLE;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	return run;
}

void vm_map_rdlock(struct vm *vm) { pthread_rwlock_rdlock(&vm->map_lock); }
void vm_map_rdunlock(struct vm *vm) { pthread_rwlock_unlock(&vm->map_lock); }
/* The writer first revokes every lease (steps 1-3 of section 2), holding nothing. */
void vm_map_wrlock(struct vm *vm)
{
	vmm_drv_map_change_begin(vm);
	pthread_rwlock_wrlock(&vm->map_lock);
}

void vm_map_wrunlock(struct vm *vm)
{
	pthread_rwlock_unlock(&vm->map_lock);
	vmm_drv_map_change_end(vm);
}

void vm_lock_all(struct vm *vm)
{
	pthread_mutex_lock(&vm->lockall_mutex);
	/*
	 * vCPUs are only created under lockall_mutex, in index order, so the
	 * ones that exist now are a prefix, and exactly those get unfrozen.
	 */
	uint32_t n = 0;
	while (n < vm->topo.maxcpus && freeze_request(&vm->vcpus[n]))
		n++;
	for (uint32_t i = 0; i < n; i++)
		freeze_wait(&vm->vcpus[i]);
	vm->lockall_frozen = n;
}

void vm_unlock_all(struct vm *vm)
{
	for (uint32_t i = vm->lockall_frozen; i-- > 0;)
		vcpu_unfreeze(&vm->vcpus[i]);
	vm->lockall_frozen = 0;
	pthread_mutex_unlock(&vm->lockall_mutex);
}

void vm_lock_wake_all(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		pthread_mutex_lock(&v->lock);
		pthread_cond_broadcast(&v->cond);
		pthread_mutex_unlock(&v->lock);
	}
}
