/*
 * Benchmark of the VM locking model (src/vm_lock.c) against vCPU count.
 *
 * For each vCPU count, with a guest whose vCPUs are either all busy
 * (lm-stress: spinning and exiting to userspace) or all idle (lm-idle:
 * halted in KVM with interrupts enabled), this measures from another thread:
 *   - lock-all: vm_lock_all + vm_unlock_all, the VM-exclusive operation
 *     (pause, snapshot, hot-add) — expected to grow with the vCPU count,
 *     since every vCPU must be kicked out of the guest and parked;
 *   - one freeze: vcpu_freeze + vcpu_unfreeze of vCPU 0 — work in one vCPU's
 *     context must not depend on how many other vCPUs there are;
 *   - map read: vm_map_rdlock + memmap_translate + vm_map_rdunlock — the
 *     frequent read side, which must stay flat (timed in thread CPU time).
 * The vCPUs get 2 ms back in the guest between rounds, so every round
 * really has to kick running vCPUs out.
 * Prints one table row per vCPU count (medians; lock-all also its max).
 *
 *   lock_bench GUEST_BIN N...
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "machine.h"
#include "vcpu.h"
#include "vm.h"
#include "vm_lock.h"

#define COUNTER_GPA 0x6000ULL
#define LOCKALL_ROUNDS 40
#define FREEZE_ROUNDS 100
#define READ_ROUNDS 2000000

static struct machine m;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static double thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Let the vCPUs get back into the guest before the next round. */
static void let_run(void)
{
	nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
}

static uint32_t counter(void)
{
	vm_map_rdlock(&m.vm);
	volatile uint32_t *c = memmap_translate(&m.vm.mem, COUNTER_GPA, 4);
	uint32_t v = c ? *c : 0;
	vm_map_rdunlock(&m.vm);
	return v;
}

struct result {
	double lockall_med, lockall_max, freeze_med, read_ns;
	int ok;
};

static void *measure(void *arg)
{
	struct result *r = arg;
	/* Every vCPU checks in by incrementing the counter (bounded wait). */
	uint32_t cpus = m.vm.topo.cpus;
	for (int i = 0; i < 6000 && counter() < cpus; i++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	r->ok = counter() >= cpus;
	double la[LOCKALL_ROUNDS], fr[FREEZE_ROUNDS];
	for (int i = 0; i < LOCKALL_ROUNDS; i++) {
		double t0 = now_us();
		vm_lock_all(&m.vm);
		vm_unlock_all(&m.vm);
		la[i] = now_us() - t0;
		let_run();
	}
	for (int i = 0; i < FREEZE_ROUNDS; i++) {
		double t0 = now_us();
		vcpu_freeze(&m.vm.vcpus[0]);
		vcpu_unfreeze(&m.vm.vcpus[0]);
		fr[i] = now_us() - t0;
		let_run();
	}
	/*
	 * The read side is timed in this thread's CPU time: with many busy
	 * vCPU threads on few host CPUs, wall time would mostly measure how
	 * often this thread was preempted, not what the read costs.
	 */
	double t0 = thread_cpu_ns();
	for (int i = 0; i < READ_ROUNDS; i++) {
		vm_map_rdlock(&m.vm);
		volatile uint8_t *p = memmap_translate(&m.vm.mem, COUNTER_GPA, 4);
		(void)*p;
		vm_map_rdunlock(&m.vm);
	}
	r->read_ns = (thread_cpu_ns() - t0) / READ_ROUNDS;
	r->lockall_med = median(la, LOCKALL_ROUNDS);
	r->lockall_max = la[LOCKALL_ROUNDS - 1];
	r->freeze_med = median(fr, FREEZE_ROUNDS);
	vm_suspend(&m.vm, VM_EXIT_POWEROFF);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: lock_bench GUEST_BIN N...\n");
		return 2;
	}
	printf("%6s  %14s  %14s  %14s  %12s\n", "vCPUs", "lock-all (us)", "lock-all max",
	       "1 freeze (us)", "map read (ns)");
	int bad = 0;
	for (int a = 2; a < argc; a++) {
		char err[512];
		config_init(&m.cfg);
		config_set(&m.cfg, "name", "lock-bench");
		config_set(&m.cfg, "memory.size", "64M");
		config_set(&m.cfg, "boot.raw", argv[1]);
		config_set(&m.cfg, "cpus", argv[a]);
		if (getenv("KHYVE_TEST_ALLOW_EMULATED"))
			config_set(&m.cfg, "kvm.allow_emulated", "true");
		struct result r = { 0 };
		if (machine_assemble(&m, err, sizeof(err))) {
			fprintf(stderr, "lock_bench: %s\n", err);
			bad = 1;
		} else {
			pthread_t t;
			pthread_create(&t, NULL, measure, &r);
			vm_run(&m.vm);
			pthread_join(t, NULL);
			if (!r.ok) {
				fprintf(stderr, "lock_bench: the guest never ran with %s vCPUs\n", argv[a]);
				bad = 1;
			} else {
				printf("%6s  %14.1f  %14.1f  %14.1f  %12.1f\n", argv[a], r.lockall_med,
				       r.lockall_max, r.freeze_med, r.read_ns);
			}
		}
		machine_disassemble(&m);
		config_free(&m.cfg);
		fflush(stdout);
	}
	return bad;
}
