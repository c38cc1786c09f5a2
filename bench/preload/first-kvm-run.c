/*
 * first-kvm-run.so: LD_PRELOAD into a VM monitor (khyve or QEMU) to learn
 * when it first enters the guest. On the process's first KVM_RUN it writes
 * one line to stderr, "KHYVE-BENCH: first KVM_RUN", which runwatch -e
 * times. bench/boot.sh splits a boot in two with it: the monitor's own
 * start-up (process start to the first guest instruction) and the rest (for
 * khyve: the guest kernel itself; for QEMU: its firmware, the kernel's
 * decompressor and then the same kernel).
 *
 * Every ioctl of the process passes through here, so this stays minimal:
 * one relaxed load on the path after the first KVM_RUN, the raw syscalls
 * (nothing that could allocate or take a lock inside a signal-sensitive
 * path), and whatever seccomp filter the monitor installs allows ioctl and
 * write already.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_bool seen;

int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (request == KVM_RUN && !atomic_load_explicit(&seen, memory_order_relaxed) &&
	    !atomic_exchange(&seen, true)) {
		static const char line[] = "KHYVE-BENCH: first KVM_RUN\n";
		syscall(SYS_write, 2, line, sizeof(line) - 1);
	}
	return (int)syscall(SYS_ioctl, fd, request, arg);
}
