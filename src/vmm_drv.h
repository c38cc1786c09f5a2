/*
 * vmm_drv: the interface through which accelerated device drivers (viona,
 * a vhost-net based virtio-net, and the test driver testdrv.c) reach a VM
 * without going through the general device model. Modelled on illumos'
 * vmm_drv. The theory statement is at the top of vmm_drv.c; in short:
 *
 *   hold   vmm_drv_hold / vmm_drv_rele / vmm_drv_release_reqd
 *          A driver's reference to the VM, kept for the VM's life. The VM
 *          is not torn down under a hold: vm_destroy() asks every holder to
 *          let go (the on_destroy callback; vmm_drv_release_reqd() turns
 *          true) and waits until each has called vmm_drv_rele().
 *   lease  vmm_drv_lease_sign / vmm_drv_lease_break / vmm_drv_lease_expired
 *          / vmm_drv_gpa2kva
 *          While a lease holds, guest-physical ranges translate to host
 *          pointers with no lock at all. A memory-map change first expires
 *          every lease (the expire callback), waits until each is broken,
 *          changes the map, and only then lets drivers sign again.
 *          vmm_drv_lease_segments lists the RAM segments behind a lease
 *          (vhost's memory table).
 *   hooks  vmm_drv_ioport_hook / vmm_drv_mmio_hook (+ _unhook)
 *          A guest write to a hooked port or address is signalled through
 *          KVM_IOEVENTFD: the vCPU never leaves the kernel; the callback runs
 *          later on the VM's driver thread with the number of writes.
 *          Unhooking is synchronous. The _eventfd variants signal an
 *          eventfd of the caller's instead (vhost's kick), with no callback.
 *   MSIs   vmm_drv_msi, routes (vmm_drv_msi_route*), and MSI-X bindings
 *          (vmm_drv_msix_*) that keep one irqfd route per vector in step with
 *          the guest's MSI-X table, masking and INTx fallback included.
 *
 * Conventions: functions that can fail return 0 or a negative errno and
 * write a one-line reason to err. Callbacks run with no khyve lock held
 * unless said otherwise.
 */
#ifndef KHYVE_VMM_DRV_H
#define KHYVE_VMM_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci_msix.h"

struct vm;
struct vmm_hold;
struct vmm_lease;
struct vmm_hook;
struct vmm_msi_route;
struct vmm_drv_msix;

/* ---- Holds ---- */

/* The VM is being destroyed: stop using it and call vmm_drv_rele() (here or later). */
typedef void (*vmm_drv_rele_fn)(void *arg);

/*
 * Take a hold on vm. on_destroy (may be NULL: then poll vmm_drv_release_reqd)
 * is called once, in vm_destroy()'s thread, with no lock held. NULL with a
 * reason if the VM is being destroyed or its KVM lacks irqfd/ioeventfd/GSI
 * routing.
 */
struct vmm_hold *vmm_drv_hold(struct vm *vm, vmm_drv_rele_fn on_destroy, void *arg,
			      char *err, size_t errlen);
/*
 * Let go. Whatever the hold still owns goes with it, synchronously: hooks
 * are unhooked, MSI-X bindings unbound, routes freed, leases broken. After
 * it returns nothing derived from the hold may be used, and no callback of
 * the hold runs any more (it waits for running ones: do not call it holding
 * a lock a callback takes). May be called from the hold's on_destroy and
 * hook callbacks, not from an expire or interrupt-config callback.
 */
void vmm_drv_rele(struct vmm_hold *hold);
bool vmm_drv_release_reqd(struct vmm_hold *hold);
struct vm *vmm_drv_vm(struct vmm_hold *hold);

/* ---- Leases ---- */

/*
 * The lease is expiring (a memory-map change is waiting for it): break it
 * soon. Called in the map changer's thread, with no lock held. It may call
 * vmm_drv_lease_break() itself, or ask another thread to (and may wait for
 * that). A break does not wait for this callback, so it may run while, or
 * just after, another thread breaks the lease: it should only signal, and
 * its argument must stay valid until vmm_drv_rele().
 */
typedef void (*vmm_drv_expire_fn)(void *arg);

/*
 * Sign a lease. Blocks while a map change is pending (the map is about to
 * change under the old translations); NULL once release is requested.
 * Never sign while holding the VM map read lock or a lease of your own that
 * may be expiring, nor from a hook callback (the driver thread would stall
 * every hook of the VM): the map change you would wait for waits for you.
 * The lease may expire as soon as this returns, before the caller has
 * stored it where its expire callback looks: a driver that breaks leases
 * from the callback must check vmm_drv_lease_expired() once after storing.
 */
struct vmm_lease *vmm_drv_lease_sign(struct vmm_hold *hold, vmm_drv_expire_fn expire, void *arg);
/*
 * Give the lease back: pointers from it are invalid from now on. Never
 * waits (it may be called under a lock the expire callback takes).
 */
void vmm_drv_lease_break(struct vmm_hold *hold, struct vmm_lease *lease);
/* Has a map change asked for this lease? (Translations stay valid until it is broken.) */
bool vmm_drv_lease_expired(struct vmm_lease *lease);
/*
 * Host pointer for guest-physical [gpa, gpa+len), valid until the lease is
 * broken; NULL unless the range lies wholly inside one RAM segment. Takes
 * no lock.
 */
void *vmm_drv_gpa2kva(struct vmm_lease *lease, uint64_t gpa, uint64_t len);

/* One RAM segment: guest-physical [gpa, gpa+len) is host [hva, hva+len). */
struct vmm_drv_segment {
	uint64_t gpa, len;
	void *hva;
};
/*
 * The guest's RAM segments, in the memory map's order: fills out[0..max)
 * and returns how many there are (which may exceed max: call again with a
 * bigger array). What it describes holds while the lease is unbroken --
 * the map cannot change before the break -- so a driver that hands it to
 * the kernel (vhost's VHOST_SET_MEM_TABLE) must replace it there, from a
 * new lease, after every expiry. Takes no lock.
 */
size_t vmm_drv_lease_segments(struct vmm_lease *lease, struct vmm_drv_segment *out, size_t max);

/* ---- I/O-port and MMIO hooks (KVM_IOEVENTFD) ---- */

/* count: guest writes since the last call (>= 1); on the VM's driver thread. */
typedef void (*vmm_drv_hook_fn)(void *arg, uint64_t count);

/*
 * Hook writes of exactly size bytes (1, 2 or 4) to port: they are counted
 * in the kernel and reported to cb; the vCPU does not exit to userspace.
 * Other accesses to the port (reads, other sizes) still exit as before.
 * -EBUSY if a device model claims any of the ports, KVM's in-kernel PIC/PIT
 * answers them, or another hook overlaps; -EINVAL for a bad size.
 */
int vmm_drv_ioport_hook(struct vmm_hold *hold, uint16_t port, unsigned size, vmm_drv_hook_fn cb,
			void *arg, struct vmm_hook **cookie, char *err, size_t errlen);
/*
 * As vmm_drv_ioport_hook, but only for writes of this value (virtio's queue
 * notify: one hook per queue index on the same port). Hooks on the same
 * port and size with different values coexist.
 */
int vmm_drv_ioport_hook_match(struct vmm_hold *hold, uint16_t port, unsigned size,
			      uint64_t value, vmm_drv_hook_fn cb, void *arg,
			      struct vmm_hook **cookie, char *err, size_t errlen);
/*
 * Unhook (*cookie becomes NULL). Synchronous: when it returns the port is
 * no longer hooked (writes exit to userspace again), writes still pending
 * in the eventfd are dropped, and no callback for this hook is running or
 * will ever run. It waits for a running callback to finish (unless called
 * from that callback), so do not call it holding a lock the callback takes.
 */
void vmm_drv_ioport_unhook(struct vmm_hold *hold, struct vmm_hook **cookie);

/*
 * Hook guest writes at gpa: of exactly size bytes (1, 2, 4, 8), or of any
 * size when size is 0 (KVM's fast MMIO path). -EBUSY if a device model's
 * MMIO region, the in-kernel LAPIC/IOAPIC or another hook overlaps. Hooking
 * guest RAM is pointless (RAM writes never exit) but not refused.
 */
int vmm_drv_mmio_hook(struct vmm_hold *hold, uint64_t gpa, unsigned size, vmm_drv_hook_fn cb,
		      void *arg, struct vmm_hook **cookie, char *err, size_t errlen);
void vmm_drv_mmio_unhook(struct vmm_hold *hold, struct vmm_hook **cookie);

/*
 * Eventfd hooks: as vmm_drv_ioport_hook / vmm_drv_mmio_hook (same sizes,
 * same -EBUSY and -EINVAL rules), but the guest's writes increment efd, an
 * eventfd of the caller's, and nothing else happens: the driver thread
 * does not watch it, no callback runs. Whoever reads efd consumes the
 * doorbells -- vhost (VHOST_SET_VRING_KICK) or the driver's own thread.
 * The caller keeps ownership of efd: the interface holds a duplicate of
 * it for KVM (so it may even be closed while hooked), and unhooking
 * (vmm_drv_ioport_unhook / vmm_drv_mmio_unhook, or vmm_drv_rele) deassigns
 * it synchronously -- guest writes exit to userspace again when it returns
 * -- but never closes or reads efd: its count is left as it was. So the
 * same efd may be hooked again elsewhere after an unhook (a BAR move), and
 * may be hooked at several places at once (every write to any of them
 * counts in it). -EINVAL if KVM refuses efd (not an eventfd).
 */
int vmm_drv_ioport_hook_eventfd(struct vmm_hold *hold, uint16_t port, unsigned size, int efd,
				struct vmm_hook **cookie, char *err, size_t errlen);
int vmm_drv_mmio_hook_eventfd(struct vmm_hold *hold, uint64_t gpa, unsigned size, int efd,
			      struct vmm_hook **cookie, char *err, size_t errlen);

/* ---- MSIs ---- */

/*
 * Send one MSI (address, data) now, without trapping the guest to userspace.
 * Fast path: if the message is that of an unmasked route of this hold (its
 * own routes, or its MSI-X bindings' vectors), one eventfd write to the
 * route's irqfd. Otherwise KVM_SIGNAL_MSI. This is the raw message: it does
 * not honour MSI-X masking (use vmm_drv_msix_signal for that). Takes no
 * lock. 0, or -errno from KVM.
 */
int vmm_drv_msi(struct vmm_hold *hold, uint64_t addr, uint32_t data);

/*
 * A route: a GSI whose message is (addr, data), with an irqfd attached to it
 * while unmasked. Writing its eventfd (vmm_drv_msi_route_fd, e.g. handed to
 * vhost as a call fd) sends the message; while masked, writes accumulate in
 * the eventfd and one message is sent when it is unmasked. A hold has at
 * most VMM_DRV_MAX_ROUTES. Calls for one route must not race each other.
 */
#define VMM_DRV_MAX_ROUTES 256
struct vmm_msi_route *vmm_drv_msi_route(struct vmm_hold *hold, uint64_t addr, uint32_t data,
					bool masked, char *err, size_t errlen);
int vmm_drv_msi_route_set(struct vmm_msi_route *route, uint64_t addr, uint32_t data,
			  bool masked, char *err, size_t errlen);
int vmm_drv_msi_route_fd(struct vmm_msi_route *route);
/* Pending: masked with at least one undelivered write. */
bool vmm_drv_msi_route_pending(struct vmm_msi_route *route);
void vmm_drv_msi_route_free(struct vmm_msi_route *route);

/* ---- MSI-X bindings: the interrupt-config callback ---- */

enum vmm_drv_intr_what {
	VMM_DRV_INTR_VECTOR,   /* vector's message or mask changed */
	VMM_DRV_INTR_MODE,     /* MSI-X enabled, or disabled (INTx fallback) */
};

struct vmm_drv_intr_event {
	enum vmm_drv_intr_what what;
	unsigned vector;
	uint64_t addr;
	uint32_t data;
	bool masked;
	enum pci_irq_mode mode;
};

/*
 * Called when the guest reprograms a vector (masked or not: masked says
 * which), masks or unmasks it, or switches between MSI-X and INTx -- AFTER
 * the interface has brought the vector's irqfd route in step. Runs in the
 * thread that made the change (usually a vCPU) with the device's MSI-X
 * lock held: it must not call into the MSI-X model or wait for a thread
 * that does; vmm_drv_msix_signal and vmm_drv_msi are fine.
 */
typedef void (*vmm_drv_intr_fn)(void *arg, const struct vmm_drv_intr_event *ev);

/*
 * Bind to a device's MSI-X capability: one route + irqfd per vector, kept
 * in step with the guest's table (masked vectors detached, pending in their
 * eventfd, delivered once on unmask), and, while MSI-X is disabled, the
 * vectors' eventfds raise the device's INTx line instead (through the
 * driver thread and pci_msix_notify). cb may be NULL. The current state is
 * replayed to cb before this returns.
 */
struct vmm_drv_msix *vmm_drv_msix_bind(struct vmm_hold *hold, struct pci_msix *msix,
				       vmm_drv_intr_fn cb, void *arg, char *err, size_t errlen);
/* Synchronous: no callback after it returns. Not with the MSI-X lock held. */
void vmm_drv_msix_unbind(struct vmm_drv_msix *b);
/* Raise vector v: MSI now, pending while masked, INTx while MSI-X is off. No lock. */
int vmm_drv_msix_signal(struct vmm_drv_msix *b, unsigned v);
/* The eventfd behind vector v (for an in-kernel signaller such as vhost). */
int vmm_drv_msix_fd(struct vmm_drv_msix *b, unsigned v);

/* ---- Statistics (relaxed counters, for tests and khyvectl) ---- */

struct vmm_drv_stats {
	unsigned long holds, leases_signed, leases_broken, lease_expiries, map_changes,
		hook_callbacks, hook_writes, msi_irqfd, msi_signal, routing_commits;
};
void vmm_drv_get_stats(struct vm *vm, struct vmm_drv_stats *s);

/* ---- The VM's side (vm.c, vm_lock.c) ---- */

int vmm_drv_vm_init(struct vm *vm, char *err, size_t errlen);
/* From vm_destroy(), vCPUs joined: ask holders to let go, wait for them, free. */
void vmm_drv_vm_destroy(struct vm *vm);
/* The writer side of the map lock: expire and wait for leases / let signing resume. */
void vmm_drv_map_change_begin(struct vm *vm);
void vmm_drv_map_change_end(struct vm *vm);

#endif
