/*
 * seccomp-bpf sandbox.
 *
 * Why. Everything a guest does that is not handled inside KVM ends up in
 * khyve's device models, running with khyve's privileges. A guest that finds
 * a memory-safety bug there owns the khyve process; the sandbox makes that
 * process worth little: while the guest runs, khyve only talks to KVM
 * through fds it already has, reads and writes fds it already has, manages
 * its memory and threads, and handles signals. Everything else (opening
 * files, exec, new sockets, ptrace, mount, bpf, ...) kills the process.
 *
 * When. Setting the machine up needs many system calls (opening /dev/kvm and
 * the kernel, creating the VM and its vCPUs, mapping guest RAM), running it
 * very few. So the filter goes in once, after machine_assemble() and before
 * vm_run() (main.c), and stays for the rest of the process's life, teardown
 * included. Threads are already running at that point (the UART input
 * reader, the control thread), so the filter is installed in every thread at once
 * (SECCOMP_FILTER_FLAG_TSYNC); threads created later (vCPUs, hot-added
 * vCPUs) inherit it. NO_NEW_PRIVS is set first, as seccomp requires of an
 * unprivileged process.
 *
 * What. The allow-list below is the only place that says what khyve may do
 * while running; its default is SECCOMP_RET_KILL_PROCESS: a forbidden call
 * is fatal and visible (the process dies of SIGSYS, status 159 in a shell,
 * and the kernel's audit log names the call: "type=1326 ... syscall=59";
 * the errno rules below are not logged). Arguments are checked where that
 * is cheap and meaningful: ioctl only with the request numbers khyve issues
 * at run time (KVM's, the terminal's, the TAP's), clone only for threads, prctl
 * only to name a thread. Two calls fail with an errno instead of killing:
 * open/openat (EACCES), because glibc's pthread_setname_np() names another
 * thread by writing /proc/self/task/TID/comm, which is not worth a hole
 * (the thread just stays unnamed); and clone3 (ENOSYS), whose flags live
 * in memory a filter cannot read, so that glibc falls back to clone(),
 * whose flags it can.
 *
 * How the list was made: by running khyve under `strace -f` for every
 * micro-guest (power-off, reboot, halt, triple fault, SMP, the malicious
 * ones), the Linux boot test (4 vCPUs, UART interrupts), a micro-guest on a
 * terminal and one driven by every khyvectl verb (hot-add included), and
 * taking every call made once the filter is in, plus the calls of code
 * paths those runs do not reach (the halt monitor's nanosleep, realloc's
 * mremap). Each row says who needs it; to add one, add a row with its
 * reason. Every system test runs sandboxed, so a missing row shows up
 * there as a death by SIGSYS.
 *
 * The control thread's teardown needs newfstatat and unlinkat (removing
 * its socket). It makes both relative to RUNDIR's fd, opened before the
 * sandbox (control_dir_fd(), handed to sandbox_apply()), and the filter
 * allows them on that fd only: not on AT_FDCWD, not on any other
 * directory, so they cannot reach a file elsewhere.
 *
 * Test hook. debug.forbidden-syscall-port=PORT registers an I/O port whose
 * handler calls execve(), which no allow-list will ever contain: a guest
 * writing it proves that a vCPU thread is confined (the process dies of
 * SIGSYS) or, with --no-sandbox, that it is not (execve of a path that does
 * not exist fails and the guest runs on).
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "ioport.h"
#include "vm.h"

/* fds known only at run time that a rule can require an argument to be. */
enum pinned_fd {
	PIN_NONE,
	PIN_RUNDIR,             /* the control socket's directory (control_dir_fd) */
};

struct rule {
	int nr;                 /* SCMP_SYS(name) */
	const char *name;
	uint32_t action;        /* SCMP_ACT_ALLOW or SCMP_ACT_ERRNO(e) */
	int arg;                /* -1: any arguments; else this argument must match */
	uint64_t mask, value;   /* (arg & mask) == value */
	enum pinned_fd pin;     /* else value is this fd (rule dropped without one) */
};

#define ALLOW(sys) { SCMP_SYS(sys), #sys, SCMP_ACT_ALLOW, -1, 0, 0, PIN_NONE }
#define ALLOW_IF(sys, a, m, v) { SCMP_SYS(sys), #sys, SCMP_ACT_ALLOW, a, m, v, PIN_NONE }
/* The kernel reads an ioctl request as 32 bits; so do we. */
#define IOCTL(req) ALLOW_IF(ioctl, 1, 0xffffffffu, (uint32_t)(req))
#define FAIL(sys, e) { SCMP_SYS(sys), #sys, SCMP_ACT_ERRNO(e), -1, 0, 0, PIN_NONE }
/* Only on one fd, e.g. a directory fd for *at() calls: never AT_FDCWD. */
#define ALLOW_ON_FD(sys, a, p) { SCMP_SYS(sys), #sys, SCMP_ACT_ALLOW, a, 0xffffffffu, 0, p }

/*
 * THE allow-list: every system call khyve may make while the guest runs.
 */
static const struct rule allow_list[] = {
	/* KVM, from vCPU threads and devices. */
	IOCTL(KVM_RUN),                 /* vcpu.c: the run loop */
	IOCTL(KVM_GET_MP_STATE),        /* vcpu.c: answering the halt monitor's probe */
	IOCTL(KVM_GET_REGS),            /* vcpu.c: probe (RFLAGS.IF), internal-error report */
	IOCTL(KVM_IRQ_LINE),            /* vm_irq_line(): UART interrupts */
	IOCTL(KVM_CREATE_VCPU),         /* vm_add_vcpu() -> vcpu_create(): vCPU hot-add */
	IOCTL(KVM_SET_CPUID2),          /*   ditto */
	IOCTL(KVM_GET_LAPIC),           /*   ditto (LINT0/LINT1 set-up) */
	IOCTL(KVM_SET_LAPIC),           /*   ditto */
	IOCTL(KVM_SET_MSRS),            /*   ditto (x2APIC mode with APIC IDs >= 255) */
	IOCTL(KVM_SET_USER_MEMORY_REGION),  /* vm_add_memory(): memory hot-add (control thread) */
	/* The driver interface (vmm_drv.h): the guest (re)programs them at run time. */
	IOCTL(KVM_IOEVENTFD),           /* hooks: BAR moves, hook/unhook */
	IOCTL(KVM_IRQFD),               /* MSI-X (un)masking attaches/detaches irqfds */
	IOCTL(KVM_SET_GSI_ROUTING),     /* MSI-X vector reprogramming */
	IOCTL(KVM_SIGNAL_MSI),          /* vmm_drv_msi fallback, pci_msix without a driver */
	/* An eventfd hook keeps a dup of the caller's eventfd (vmm_drv_hook.c): BAR moves. */
	ALLOW_IF(fcntl, 1, ~0ull, F_DUPFD_CLOEXEC),
	/*
	 * A virtio-net backend's TAP (tap.c), opened before the sandbox: the
	 * guest negotiates features, and so the header size and offloads, at
	 * run time.
	 */
	IOCTL(TUNSETVNETHDRSZ),         /* tap_set_vnet_hdr_len: 12 with VERSION_1/MRG_RXBUF */
	IOCTL(TUNSETOFFLOAD),           /* tap_set_offload: what the guest accepts */
	/*
	 * viona's vhost-net datapath (viona_vhost.c, /dev/vhost-net opened
	 * before the sandbox): the guest starts and resets the device, and a
	 * memory-map change re-sends the memory table, at run time.
	 */
	IOCTL(VHOST_SET_FEATURES),
	IOCTL(VHOST_SET_MEM_TABLE),
	IOCTL(VHOST_SET_VRING_NUM),
	IOCTL(VHOST_SET_VRING_BASE),
	IOCTL(VHOST_GET_VRING_BASE),
	IOCTL(VHOST_SET_VRING_ADDR),
	IOCTL(VHOST_SET_VRING_KICK),
	IOCTL(VHOST_SET_VRING_CALL),
	IOCTL(VHOST_SET_VRING_ERR),     /* the eventfd vhost signals a guest's broken ring on */
	IOCTL(VHOST_NET_SET_BACKEND),
	/* The terminal behind -l com1,stdio, restored at teardown. */
	IOCTL(TCGETS),                  /* tcgetattr, isatty */
	IOCTL(TCSETS),                  /* tcsetattr(TCSANOW) */
	IOCTL(TCSETSW),                 /* tcsetattr(TCSADRAIN) */
	IOCTL(TCSETSF),                 /* tcsetattr(TCSAFLUSH) */

	/* I/O on fds opened before the sandbox. */
	ALLOW(read),                    /* UART input, signalfd, eventfds, TAP frames */
	ALLOW(write),                   /* UART output, eventfds, error messages, TAP frames */
	ALLOW(readv),                   /* a TAP frame into virtio-net header + buffers */
	ALLOW(writev),                  /* a TAP frame from a descriptor chain */
	ALLOW(preadv),                  /* virtio-blk: image sectors into guest buffers */
	ALLOW(pwritev),                 /* virtio-blk: guest buffers into image sectors */
	ALLOW(fdatasync),               /* virtio-blk: FLUSH */
	ALLOW(fallocate),               /* virtio-blk: DISCARD (punching a hole) */
	ALLOW(poll),                    /* vm_run()'s wait, UART input thread */
	ALLOW(ppoll),                   /* poll() where libc implements it so */
	ALLOW(close),                   /* teardown */
	/* fstat of an open fd: stdio's first write to a buffered stream. */
	ALLOW(fstat),
	ALLOW_IF(newfstatat, 3, AT_EMPTY_PATH, AT_EMPTY_PATH),
	ALLOW(eventfd2),                /* new stop/notification eventfds, vmm_drv hooks */
	ALLOW(epoll_wait),              /* vmm_drv's driver thread */
	ALLOW(epoll_pwait),             /*   ditto, where libc implements it so */
	ALLOW(epoll_ctl),               /* vmm_drv: hooks, INTx watches */
	ALLOW(epoll_create1),           /* vmm_drv: a driver thread started at run time */

	/*
	 * Memory: malloc, thread stacks, guest RAM hot-added from the control
	 * thread (vm_add_memory: mmap, munmap, madvise MADV_HUGEPAGE), teardown
	 * of guest RAM and kvm_run.
	 */
	ALLOW(brk),
	ALLOW(mmap),
	ALLOW(munmap),
	ALLOW(mremap),                  /* realloc() of a large (mmapped) block */
	ALLOW(mprotect),                /* thread stack guard pages */
	ALLOW(madvise),                 /* exiting threads free their stacks */

	/* Threads: vCPUs start after the sandbox, hot-added ones later still. */
	ALLOW_IF(clone, 0, CLONE_THREAD, CLONE_THREAD),  /* threads, never processes */
	FAIL(clone3, ENOSYS),           /* flags unreadable to a filter: glibc retries with clone */
	ALLOW(set_robust_list),         /* new thread start-up (glibc) */
	ALLOW(rseq),                    /* new thread start-up (glibc) */
	ALLOW(futex),                   /* mutexes, condition variables, pthread_join */
	ALLOW(sched_yield),
	ALLOW(exit),                    /* a thread ends */
	ALLOW(exit_group),              /* khyve ends */
	ALLOW(getpid),                  /* pthread_kill() */
	ALLOW(gettid),
	ALLOW(tgkill),                  /* the vCPU kick (pthread_kill) */
	ALLOW(tkill),
	ALLOW_IF(prctl, 0, ~0ull, PR_SET_NAME),  /* a thread naming itself */
	FAIL(openat, EACCES),           /* pthread_setname_np of another thread: see above */
	FAIL(open, EACCES),

	/* Signals: the kick signal, SIGINT/SIGTERM/SIGHUP through a signalfd. */
	ALLOW(rt_sigaction),
	ALLOW(rt_sigprocmask),
	ALLOW(rt_sigreturn),
	ALLOW(signalfd4),
	ALLOW(restart_syscall),

	/* Time: the halt monitor's waits (vm.c), clocks without the vDSO. */
	ALLOW(nanosleep),
	ALLOW(clock_nanosleep),
	ALLOW(clock_gettime),
	ALLOW(gettimeofday),

	/* vcpu.c's internal-error report looks at /sys/module to add a hint. */
	ALLOW(access),

	/* The control thread (control.c): khyvectl's connections and requests. */
	ALLOW(accept4),                 /* a new control connection */
	ALLOW_IF(getsockopt, 2, ~0ull, SO_PEERCRED),  /* who is asking: same uid or root */
	ALLOW(sendto),                  /* responses (send with MSG_NOSIGNAL) */
	ALLOW(geteuid),                 /* the peer check, the info verb */
	IOCTL(KVM_GET_SREGS),           /* the regs verb (under vcpu_freeze) */
	ALLOW_ON_FD(newfstatat, 0, PIN_RUNDIR),  /* teardown: is RUNDIR/NAME.sock still ours? */
	ALLOW_ON_FD(unlinkat, 0, PIN_RUNDIR),    /* teardown: remove it */
};

/*
 * Test hook (debug.forbidden-syscall-port): a port whose every access makes
 * a system call that is on no allow-list.
 */
static void forbidden_syscall_io(void *opaque, uint16_t port, unsigned size, bool is_write,
				 uint32_t *val)
{
	char *const none[] = { NULL };
	execve("/nonexistent/khyve-sandbox-test-hook", none, none);
	if (!is_write)
		*val = 0;
}

static int register_test_hook(struct vm *vm, const struct config *cfg, char *err,
			      size_t errlen)
{
	const char *s = config_get(cfg, "debug.forbidden-syscall-port");
	if (!s)
		return 0;
	char *end;
	errno = 0;
	unsigned long port = strtoul(s, &end, 0);
	if (errno || !*s || *end || port > 0xffff) {
		snprintf(err, errlen, "debug.forbidden-syscall-port=%s: expected an I/O port "
			 "number from 0 to 0xffff", s);
		return -1;
	}
	return ioport_register(&vm->io, (uint16_t)port, 1, "debug-forbidden-syscall",
			       forbidden_syscall_io, NULL, err, errlen);
}

static int install(const int pinned[], char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		snprintf(err, errlen, "sandbox: seccomp_init failed");
		return -1;
	}
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	const char *what = "enabling thread synchronisation";
	for (size_t i = 0; !r && i < sizeof(allow_list) / sizeof(allow_list[0]); i++) {
		const struct rule *w = &allow_list[i];
		what = w->name;
		uint64_t value = w->value;
		if (w->pin != PIN_NONE) {
			if (pinned[w->pin] < 0)
				continue;  /* no such fd: nothing may make the call */
			value = (uint32_t)pinned[w->pin];
		}
		if (w->arg < 0)
			r = seccomp_rule_add(ctx, w->action, w->nr, 0);
		else
			r = seccomp_rule_add(ctx, w->action, w->nr, 1,
					     SCMP_CMP((unsigned)w->arg, SCMP_CMP_MASKED_EQ, w->mask,
						      value));
	}
	if (r) {
		snprintf(err, errlen, "sandbox: cannot add the rule for %s: %s", what,
			 strerror(-r));
	} else if ((r = seccomp_load(ctx)) != 0) {
		snprintf(err, errlen, "sandbox: cannot install the seccomp filter: %s "
			 "(a kernel without seccomp-bpf? --no-sandbox runs without it)",
			 strerror(-r));
	}
	seccomp_release(ctx);
	return r ? -1 : 0;
}

int sandbox_apply(struct vm *vm, const struct config *cfg, int rundir_fd, char *err,
		  size_t errlen)
{
	const int pinned[] = { [PIN_NONE] = -1, [PIN_RUNDIR] = rundir_fd };
	bool on;
	if (config_get_bool(cfg, "sandbox", true, &on, err, errlen) ||
	    register_test_hook(vm, cfg, err, errlen))
		return -1;
	return on ? install(pinned, err, errlen) : 0;
}
