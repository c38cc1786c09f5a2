/*
 * A vCPU: one KVM vCPU fd, its shared kvm_run page and the thread that runs
 * it. vcpu.c holds the run loop and the exit dispatch.
 */
#ifndef KHYVE_VCPU_H
#define KHYVE_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

/* Exit reasons we count, bhyvectl --get-stats style. */
enum vcpu_stat {
	VCPU_STAT_IO,
	VCPU_STAT_MMIO,
	VCPU_STAT_INTR,          /* kicked out by a signal / immediate_exit */
	VCPU_STAT_SHUTDOWN,
	VCPU_STAT_HLT,
	VCPU_STAT_OTHER,
	VCPU_STAT_COUNT,
};

/* What the idle monitor last learned about a vCPU it had to kick. */
enum vcpu_idle {
	VCPU_IDLE_UNKNOWN = 0,
	VCPU_IDLE_RUNNING,       /* running, or halted with interrupts enabled */
	VCPU_IDLE_DEAD,          /* halted with IF=0: only NMI/INIT can wake it */
	VCPU_IDLE_PARKED,        /* never started: waiting for INIT/SIPI */
};

struct vcpu {
	struct vm *vm;
	uint32_t id;             /* index 0..maxcpus-1 */
	uint32_t apic_id;
	int fd;                  /* -1 until created in KVM */
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;

	/* Requests from other threads; set before the kick (see vcpu.c). */
	atomic_bool probe_requested;
	atomic_int idle;         /* enum vcpu_idle, written by the vCPU thread */
	atomic_ulong userspace_exits;  /* all exits to userspace, for the monitor */
	unsigned long monitor_seen_exits;  /* monitor's private copy */

	atomic_ulong stats[VCPU_STAT_COUNT];
};

/* Create the KVM vCPU, map its kvm_run, install its CPUID table. */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, char *err, size_t errlen);
int vcpu_start_thread(struct vcpu *vcpu, char *err, size_t errlen);
/* Make the vCPU leave KVM_RUN soon; set any request flag before calling. */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_close(struct vcpu *vcpu, int run_size);

/* Install the signal used for kicks; call once before any vCPU thread. */
int vcpu_kick_signal_init(void);

#endif
