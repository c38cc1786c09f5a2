/*
 * vCPU threads and exits.
 *
 * Each vCPU has exactly one thread, which runs KVM_RUN and handles the exits
 * that reach userspace. Other threads work on a vCPU only by freezing it
 * (vm_lock.c): the thread is kicked out of KVM_RUN and parks at its safe
 * point, the top of the run loop, after which the freezer may use the fd.
 *
 * The kick cannot be lost. The kicker (1) records its request (the VM's
 * suspended flag, or a freezer count under the vCPU's mutex), then (2) sets
 * kvm_run->immediate_exit, then (3) sends the kick signal. The vCPU
 * thread, after every return from KVM_RUN, (a) clears immediate_exit and
 * only then (b) reads the requests at its safe point. If the signal lands
 * while the thread is in the guest, KVM_RUN returns EINTR; if it lands
 * anywhere else, immediate_exit makes the next KVM_RUN return EINTR at once
 * without entering the guest. Because (a) precedes (b), a request whose
 * immediate_exit was cleared is always seen by (b).
 *
 * Halt detection. With the in-kernel LAPIC, HLT never reaches userspace, so
 * bhyve's "halted" exit (every vCPU halted with interrupts disabled) needs
 * help: vm.c's monitor freezes vCPUs that have not exited for a while and
 * reads their MP state and RFLAGS.IF (vcpu_read_activity).
 */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cpuid.h"
#include "vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define VCPU_THREAD_STACK (256 * 1024)
#define X86_RFLAGS_IF (1u << 9)

static void kick_handler(int sig) { (void)sig; }

int vcpu_kick_signal_init(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return EINTR, not be restarted. */
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static int set_lapic_lints(struct vcpu *v)
{
	/*
	 * LINT0 as ExtINT (the 8259's output) and LINT1 as NMI, as firmware
	 * leaves them: Linux's early timer check expects the PIC path to work.
	 */
	struct kvm_lapic_state lapic;
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -1;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[0x350];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[0x360];
	*lvt0 = (*lvt0 & ~0x700u) | (7u << 8);   /* delivery mode ExtINT */
	*lvt1 = (*lvt1 & ~0x700u) | (4u << 8);   /* delivery mode NMI */
	return ioctl(v->fd, KVM_SET_LAPIC, &lapic);
}

#define MSR_IA32_APICBASE 0x1b
#define APICBASE_BSP     (1ULL << 8)
#define APICBASE_X2APIC  (1ULL << 10)
#define APICBASE_ENABLE  (1ULL << 11)
#define APICBASE_DEFAULT 0xfee00000ULL

/*
 * APIC IDs of 255 and above exist only in x2APIC mode, and an OS honours
 * the MADT's x2APIC entries only if the boot CPU is already in x2APIC mode
 * when it reads them (Linux: "Allowing 255 CPUs" otherwise). Firmware on
 * such machines hands over the BSP in x2APIC mode; so does khyve. The APs
 * stay in xAPIC mode, as after a real INIT: the OS switches each itself
 * (Linux: x2apic_setup() in cpu_init()), and until then KVM, with
 * KVM_CAP_X2APIC_API (vm.c), delivers INIT/SIPI addressed to an AP's full
 * x2APIC ID even though the AP is in xAPIC mode (its "hotplug hack"). Not
 * switching them saves an APIC map rebuild per vCPU -- a walk over every
 * vCPU each, quadratic: 0.5 s of a 1024-vCPU start in the testbox.
 */
static int set_x2apic_mode(struct vcpu *v)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = {
		.hdr.nmsrs = 1,
		.e.index = MSR_IA32_APICBASE,
		.e.data = APICBASE_DEFAULT | APICBASE_ENABLE | APICBASE_X2APIC |
			  (v->id == 0 ? APICBASE_BSP : 0),
	};
	return ioctl(v->fd, KVM_SET_MSRS, &m) == 1 ? 0 : -1;
}

int vcpu_create(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	/*
	 * KVM has no way to delete a vCPU: one a failed hot-add left behind
	 * is picked up where that attempt stopped, or its index (and APIC
	 * ID) would be lost for good (KVM_CREATE_VCPU: EEXIST).
	 */
	if (v->fd < 0) {
		v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->apic_id);
		if (v->fd < 0) {
			snprintf(err, errlen, "KVM_CREATE_VCPU %u (APIC ID %u): %s", v->id,
				 v->apic_id, strerror(errno));
			return -1;
		}
	}
	if (!v->run) {
		v->run = mmap(NULL, (size_t)vm->kvm_run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			      v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			snprintf(err, errlen, "mmap kvm_run of vCPU %u: %s", v->id, strerror(errno));
			return -1;
		}
	}

	uint32_t max = vm->supported_cpuid->nent + 8;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	if (!c) {
		snprintf(err, errlen, "out of memory for CPUID of vCPU %u", v->id);
		return -1;
	}
	struct cpuid_filter f = {
		.arch_capabilities_msr = vm->cpuid_arch_caps_msr,
		.tsc_deadline_timer = vm->cpuid_tsc_deadline,
		.brand = vm->cpu_brand[0] ? vm->cpu_brand : NULL,
	};
	int n = cpuid_build(vm->supported_cpuid->entries, vm->supported_cpuid->nent, &f,
			    &vm->topo, v->id, c->entries, max);
	int r = -1;
	if (n < 0) {
		snprintf(err, errlen, "CPUID table of vCPU %u does not fit", v->id);
	} else {
		c->nent = (uint32_t)n;
		if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
			snprintf(err, errlen, "KVM_SET_CPUID2 on vCPU %u: %s", v->id,
				 strerror(errno));
		else if (v->id == 0 && topology_max_apic_id(&vm->topo) >= 255 &&
			 set_x2apic_mode(v) < 0)
			snprintf(err, errlen, "switching vCPU %u to x2APIC mode: %s", v->id,
				 strerror(errno));
		else
			r = 0;
	}
	free(c);
	if (r == 0)
		atomic_store(&v->created, true);
	return r;
}

int vcpu_lapic_setup(struct vcpu *v, char *err, size_t errlen)
{
	if (set_lapic_lints(v) == 0)
		return 0;
	snprintf(err, errlen, "setting LAPIC LINT0/1 of vCPU %u: %s", v->id, strerror(errno));
	return -1;
}

static void count(struct vcpu *v, enum vcpu_stat s)
{
	atomic_fetch_add_explicit(&v->stats[s], 1, memory_order_relaxed);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;
	/* A string instruction with a rep prefix arrives as count > 1. */
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		uint32_t val = 0;
		if (is_write)
			memcpy(&val, data, size);
		ioport_dispatch(&v->vm->io, run->io.port, size, is_write, &val);
		if (!is_write)
			memcpy(data, &val, size);
	}
}

static void handle_mmio(struct vcpu *v)
{
	/*
	 * The MMIO bus (BARs); holes read all-ones as an empty bus does and
	 * swallow writes. (The LAPIC and IOAPIC are in KVM.)
	 */
	struct kvm_run *run = v->run;
	mmio_dispatch(&v->vm->mmio, run->mmio.phys_addr, run->mmio.len, run->mmio.is_write,
		      run->mmio.data);
}

const char *vcpu_activity_name(enum vcpu_activity a)
{
	switch (a) {
	case VCPU_ACT_RUNNING: return "running";
	case VCPU_ACT_SLEEPING: return "sleeping";
	case VCPU_ACT_DEAD: return "halted";
	case VCPU_ACT_PARKED: return "parked";
	default: return "unknown";
	}
}

enum vcpu_activity vcpu_read_activity(struct vcpu *v)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	enum vcpu_activity a = VCPU_ACT_UNKNOWN;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0) {
		if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED ||
		    mp.mp_state == KVM_MP_STATE_INIT_RECEIVED)
			a = VCPU_ACT_PARKED;
		else if (mp.mp_state != KVM_MP_STATE_HALTED)
			a = VCPU_ACT_RUNNING;
		else if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
			a = (regs.rflags & X86_RFLAGS_IF) ? VCPU_ACT_SLEEPING : VCPU_ACT_DEAD;
	}
	atomic_store(&v->activity, a);
	return a;
}

static const char *internal_error_name(uint32_t sub)
{
	switch (sub) {
	case KVM_INTERNAL_ERROR_EMULATION: return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
	default: return "internal error";
	}
}

static void handle_internal_error(struct vcpu *v)
{
	struct kvm_regs regs;
	unsigned long long rip = ioctl(v->fd, KVM_GET_REGS, &regs) == 0 ? regs.rip : ~0ull;
	uint32_t sub = v->run->internal.suberror;
	bool emulating = access("/sys/module/kvm_pvm", F_OK) == 0 &&
			 access("/sys/module/kvm_intel", F_OK) != 0 &&
			 access("/sys/module/kvm_amd", F_OK) != 0;
	vm_fail(v->vm, "vCPU %u: KVM %s (suberror %u) at rip 0x%llx%s", v->id,
		internal_error_name(sub), sub, rip,
		emulating ? "; this host's KVM (kvm_pvm) only emulates guest code and "
			    "cannot run this guest: use the testbox (make testbox-shell)" : "");
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	/*
	 * Kickable from here on. The thread publishes its own id: a freezer may
	 * see it RUNNING before pthread_create() has even returned to the starter.
	 */
	v->self = pthread_self();
	atomic_store(&v->kickable, true);
	/* Named from inside: pthread_setname_np on another thread opens /proc. */
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	prctl(PR_SET_NAME, name);

	/* (b) is vcpu_enter_run(): the safe point, where freezers are seen. */
	while (vcpu_enter_run(v)) {
		int r = ioctl(v->fd, KVM_RUN, 0);
		int saved_errno = errno;
		/* (a) before (b): see the theory at the top of this file. */
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		atomic_fetch_add_explicit(&v->userspace_exits, 1, memory_order_relaxed);
		if (r < 0) {
			if (saved_errno == EINTR || saved_errno == EAGAIN) {
				count(v, VCPU_STAT_INTR);
				continue;
			}
			vm_fail(vm, "vCPU %u: KVM_RUN: %s", v->id, strerror(saved_errno));
			break;
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			count(v, VCPU_STAT_IO);
			handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			count(v, VCPU_STAT_MMIO);
			handle_mmio(v);
			break;
		case KVM_EXIT_INTR:
			count(v, VCPU_STAT_INTR);
			break;
		case KVM_EXIT_HLT:
			/* Only without an in-kernel LAPIC, which khyve always has. */
			count(v, VCPU_STAT_HLT);
			break;
		case KVM_EXIT_SHUTDOWN:
			/* A triple fault: the CPU would reset; bhyve calls it status 3. */
			count(v, VCPU_STAT_SHUTDOWN);
			vm_suspend(vm, VM_EXIT_TRIPLEFAULT);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			count(v, VCPU_STAT_OTHER);
			if (v->run->system_event.type == KVM_SYSTEM_EVENT_RESET)
				vm_suspend(vm, VM_EXIT_REBOOT);
			else if (v->run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
				vm_suspend(vm, VM_EXIT_POWEROFF);
			else
				vm_fail(vm, "vCPU %u: unhandled system event %u", v->id,
					v->run->system_event.type);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			count(v, VCPU_STAT_OTHER);
			handle_internal_error(v);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			count(v, VCPU_STAT_OTHER);
			vm_fail(vm, "vCPU %u: VM entry failed (hardware reason 0x%llx)", v->id,
				(unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
			break;
		default:
			count(v, VCPU_STAT_OTHER);
			vm_fail(vm, "vCPU %u: unhandled KVM exit reason %u", v->id,
				v->run->exit_reason);
			break;
		}
	}
	return NULL;
}

int vcpu_start_thread(struct vcpu *v, char *err, size_t errlen)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* Thousands of vCPUs must not reserve 8 MiB of stack each. */
	pthread_attr_setstacksize(&attr, VCPU_THREAD_STACK);
	/*
	 * Every signal blocked whoever starts the thread (vm_run, or the control
	 * thread for a hot-add): the thread unblocks only its kick signal, so
	 * SIGTERM and friends always reach vm_run's signalfd instead.
	 */
	sigset_t all;
	sigfillset(&all);
	pthread_attr_setsigmask_np(&attr, &all);
	int r = pthread_create(&v->thread, &attr, vcpu_thread, v);
	pthread_attr_destroy(&attr);
	if (r) {
		snprintf(err, errlen, "starting the thread of vCPU %u: %s", v->id, strerror(r));
		return -1;
	}
	atomic_store(&v->thread_started, true);
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!atomic_load(&v->created))
		return;
	/* Before the thread runs, immediate_exit alone stops its first KVM_RUN. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load(&v->kickable))
		pthread_kill(v->self, VCPU_KICK_SIGNAL);
}

/*
 * A kick is one signal; it can land just before the thread enters a
 * blocking call (a console write to a pipe nobody reads), which then waits
 * on. So the join kicks again every 100 ms until the thread has gone.
 * (pthread_timedjoin_np, whose deadline is on the wall clock, rather than
 * pthread_clockjoin_np: ThreadSanitizer knows the former as a join and
 * reports a race on everything after the latter. A clock step only
 * changes when the next kick comes.)
 */
void vcpu_join(struct vcpu *v)
{
	if (!atomic_load(&v->thread_started))
		return;
	for (;;) {
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 100 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(v->thread, NULL, &deadline) != ETIMEDOUT)
			break;
		vcpu_kick(v);
	}
	atomic_store(&v->thread_started, false);
	atomic_store(&v->kickable, false);
}

void vcpu_close(struct vcpu *v, int run_size)
{
	if (v->run)
		munmap(v->run, (size_t)run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
	atomic_store(&v->created, false);
}
