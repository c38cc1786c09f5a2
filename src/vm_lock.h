/*
 * The VM locking model. The theory statement is at the top of vm_lock.c.
 *
 *   vcpu_freeze / vcpu_unfreeze     one vCPU, for work in its context
 *   vm_map_rdlock / vm_map_wrlock   the memory map and device set
 *   vm_lock_all / vm_unlock_all     every vCPU, for VM-exclusive work
 */
#ifndef KHYVE_VM_LOCK_H
#define KHYVE_VM_LOCK_H

#include <stdbool.h>

struct vm;
struct vcpu;

/*
 * Who owns a vCPU, as bhyve's vcpu_state. bhyve's fourth state, SLEEPING (a
 * vCPU halted in the kernel's HLT handler), is KVM's business here: a vCPU
 * halted in KVM is RUNNING to us, and khyvectl reports it as sleeping from
 * its KVM MP state (vcpu_activity in vcpu.h).
 */
enum vcpu_state {
	VCPU_IDLE,       /* nobody owns it: no thread yet, or between owners */
	VCPU_FROZEN,     /* held still by one or more freezers (not its thread) */
	VCPU_RUNNING,    /* its thread owns it: in KVM_RUN or handling an exit */
};

const char *vcpu_state_name(enum vcpu_state s);

void vm_lock_init(struct vm *vm);
void vm_lock_destroy(struct vm *vm);
void vcpu_lock_init(struct vcpu *v);
void vcpu_lock_destroy(struct vcpu *v);

/*
 * Freeze one vCPU: on return it is out of KVM_RUN, its thread is parked at
 * its safe point, and the caller may use the vCPU fd (registers, MP state,
 * events). Freezers share: the vCPU runs again when the last one unfreezes.
 * Never called by a vCPU thread (see the theory statement). Returns false if
 * the vCPU does not exist in KVM (not yet hot-added), or if the VM stopped
 * before the vCPU parked (then nothing is frozen and nothing to unfreeze).
 */
bool vcpu_freeze(struct vcpu *v);
void vcpu_unfreeze(struct vcpu *v);

/*
 * For the vCPU's own thread, at its safe point between two KVM_RUNs: block
 * while the vCPU is frozen, then mark it RUNNING. Returns false when the VM is stopping.
 */
bool vcpu_enter_run(struct vcpu *v);

/* The VM-wide read/write lock over the memory map and the device set. */
void vm_map_rdlock(struct vm *vm);
void vm_map_rdunlock(struct vm *vm);
void vm_map_wrlock(struct vm *vm);
void vm_map_wrunlock(struct vm *vm);

/* Freeze every existing vCPU in ascending order; serialized among callers. */
void vm_lock_all(struct vm *vm);
void vm_unlock_all(struct vm *vm);

/* Wake vCPU threads parked at their safe point so they see a stop. */
void vm_lock_wake_all(struct vm *vm);

#endif
