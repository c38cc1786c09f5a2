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

#include "vm_lock.h"

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

/* What a vCPU is doing inside KVM, read from its MP state and RFLAGS.IF. */
enum vcpu_activity {
	VCPU_ACT_UNKNOWN = 0,
	VCPU_ACT_RUNNING,        /* executing guest code */
	VCPU_ACT_SLEEPING,       /* halted with interrupts enabled: waits for one */
	VCPU_ACT_DEAD,           /* halted with IF=0: only NMI/INIT can wake it */
	VCPU_ACT_PARKED,         /* never started: waiting for INIT/SIPI */
};

const char *vcpu_activity_name(enum vcpu_activity a);

struct vcpu {
	struct vm *vm;
	uint32_t id;             /* index 0..maxcpus-1 */
	uint32_t apic_id;
	int fd;                  /* -1 until created in KVM */
	atomic_bool created;     /* fd and run are valid (boot vCPU or hot-added) */
	struct kvm_run *run;
	pthread_t thread;        /* for join, written by the starter */
	atomic_bool thread_started;
	pthread_t self;          /* for kicks, written by the thread itself */
	atomic_bool kickable;

	/* The per-vCPU lock of the locking model (vm_lock.c). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vcpu_state state;   /* under lock */
	unsigned freezers;       /* under lock */

	atomic_ulong userspace_exits;  /* all exits to userspace, for the monitor */
	unsigned long monitor_seen_exits;  /* the halt monitor's private copy */
	atomic_int activity;     /* enum vcpu_activity, last seen while frozen */

	atomic_ulong stats[VCPU_STAT_COUNT];
};

/* Create the KVM vCPU, map its kvm_run, install its CPUID table. */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, char *err, size_t errlen);
/*
 * LINT0 ExtINT / LINT1 NMI, as firmware leaves them, through KVM_SET_LAPIC,
 * which also makes KVM rebuild its APIC map with every vCPU then online.
 * KVM builds the map at vCPU creation before the new vCPU counts as
 * online, so the last vCPU created is missing from it until something
 * rebuilds it: without that, INIT/SIPI addressed to the missing vCPU's APIC
 * ID reaches nobody (seen: Linux "Booting Processor 2" then EIO on a
 * hot-added vCPU). Each rebuild walks every vCPU, so it is done once for
 * the boot vCPUs (on the BSP, after the last is created; APs need no LINTs:
 * INIT masks them) and once per hot-added vCPU -- not per boot vCPU, which
 * was quadratic (1.7-2.3 s of a 1024-vCPU start in the testbox).
 */
int vcpu_lapic_setup(struct vcpu *vcpu, char *err, size_t errlen);
int vcpu_start_thread(struct vcpu *vcpu, char *err, size_t errlen);
/* Make the vCPU leave KVM_RUN soon; set any request flag before calling. */
void vcpu_kick(struct vcpu *vcpu);
/* Read the activity of a vCPU the caller has frozen, and remember it. */
enum vcpu_activity vcpu_read_activity(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_close(struct vcpu *vcpu, int run_size);

/* Install the signal used for kicks; call once before any vCPU thread. */
int vcpu_kick_signal_init(void);

#endif
