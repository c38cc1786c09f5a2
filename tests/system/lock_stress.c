/*
 * Stress test of the VM locking model (src/vm_lock.c), meant to run under
 * ThreadSanitizer: while every vCPU of the lm-stress micro-guest spins
 * (incrementing a shared counter and exiting to userspace on each
 * iteration), worker threads concurrently
 *   - read the memory map and guest memory under the read lock (2 threads),
 *   - map and unmap an extra memory segment (the writer side),
 *   - freeze random vCPUs and read their registers,
 *   - pause and resume the VM, checking that a paused guest does not move,
 *   - hot-add vCPUs up to maxcpus, then check one more is refused.
 * It fails on any failed operation, a worker that made no progress, a paused
 * guest that moved, a guest that stopped making progress, or a hang (the
 * calling script has a timeout). TSan fails it on any data race.
 *
 *   lock_stress GUEST_BIN SECONDS CPUS MAXCPUS
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "machine.h"
#include "vcpu.h"
#include "vm.h"
#include "vm_lock.h"

#define COUNTER_GPA 0x6000ULL
#define EXTRA_GPA   0x200000000ULL   /* 8 GiB: far above the guest's RAM */
#define EXTRA_LEN   (2ULL << 20)
#define EXTRA_BYTE  0xa5

enum op { OP_READ, OP_MAP, OP_REGS, OP_PAUSE, OP_HOTADD, OP_COUNT };
static const char *const op_names[OP_COUNT] = { "map reads", "map changes", "register reads",
						 "pause/resume", "hot-adds" };

static struct machine m;
static uint8_t *extra;
static atomic_bool stop_workers;
static atomic_ulong ops[OP_COUNT], errors[OP_COUNT];
static atomic_ulong extra_seen;

static void error(enum op o, const char *what)
{
	atomic_fetch_add(&errors[o], 1);
	fprintf(stderr, "lock_stress: %s: %s\n", op_names[o], what);
}

static uint32_t read_counter(void)
{
	vm_map_rdlock(&m.vm);
	volatile uint32_t *c = memmap_translate(&m.vm.mem, COUNTER_GPA, 4);
	uint32_t v = c ? *c : 0;
	vm_map_rdunlock(&m.vm);
	return v;
}

static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000 }, NULL);
}

static void *reader(void *arg)
{
	while (!atomic_load(&stop_workers)) {
		vm_map_rdlock(&m.vm);
		volatile uint32_t *c = memmap_translate(&m.vm.mem, COUNTER_GPA, 4);
		volatile uint8_t *x = memmap_translate(&m.vm.mem, EXTRA_GPA + 4096, 1);
		if (!c)
			error(OP_READ, "guest RAM vanished from the map");
		else
			(void)*c;
		if (x) {
			if (*x != EXTRA_BYTE)
				error(OP_READ, "extra segment maps the wrong memory");
			atomic_fetch_add(&extra_seen, 1);
		}
		/* Statistics are lock-free relaxed atomics. */
		(void)atomic_load_explicit(&m.vm.vcpus[0].stats[VCPU_STAT_IO], memory_order_relaxed);
		vm_map_rdunlock(&m.vm);
		atomic_fetch_add(&ops[OP_READ], 1);
	}
	return NULL;
}

static void *mapper(void *arg)
{
	char err[256];
	while (!atomic_load(&stop_workers)) {
		if (vm_mem_map(&m.vm, EXTRA_GPA, EXTRA_LEN, extra, err, sizeof(err)))
			error(OP_MAP, err);
		pause_ms(1);
		if (vm_mem_unmap(&m.vm, EXTRA_GPA, err, sizeof(err)))
			error(OP_MAP, err);
		atomic_fetch_add(&ops[OP_MAP], 1);
	}
	return NULL;
}

static void *regs_reader(void *arg)
{
	unsigned seed = 1;
	while (!atomic_load(&stop_workers)) {
		uint32_t online = atomic_load(&m.vm.online_vcpus);
		struct vcpu *v = &m.vm.vcpus[rand_r(&seed) % online];
		if (!vcpu_freeze(v)) {
			error(OP_REGS, "an online vCPU could not be frozen");
			continue;
		}
		struct kvm_regs regs;
		if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
			error(OP_REGS, strerror(errno));
		vcpu_read_activity(v);
		vcpu_unfreeze(v);
		atomic_fetch_add(&ops[OP_REGS], 1);
	}
	return NULL;
}

static void *pauser(void *arg)
{
	while (!atomic_load(&stop_workers)) {
		if (vm_pause(&m.vm)) {
			error(OP_PAUSE, "pause refused");
			continue;
		}
		uint32_t before = read_counter();
		pause_ms(2);
		if (read_counter() != before)
			error(OP_PAUSE, "the guest ran while paused");
		if (vm_resume(&m.vm))
			error(OP_PAUSE, "resume refused");
		pause_ms(3);
		atomic_fetch_add(&ops[OP_PAUSE], 1);
	}
	return NULL;
}

static void *hotadder(void *arg)
{
	char err[256];
	/* All the way to maxcpus even if the others stop first: bounded by maxcpus. */
	while (atomic_load(&m.vm.online_vcpus) < m.vm.topo.maxcpus) {
		if (vm_add_vcpu(&m.vm, err, sizeof(err)) < 0)
			error(OP_HOTADD, err);
		else
			atomic_fetch_add(&ops[OP_HOTADD], 1);
		pause_ms(20);
	}
	if (vm_add_vcpu(&m.vm, err, sizeof(err)) >= 0 || !strstr(err, "maxcpus"))
		error(OP_HOTADD, "a vCPU beyond maxcpus was not refused");
	return NULL;
}

static int failures;

static void *driver(void *arg)
{
	long seconds = (long)(intptr_t)arg;
	/* Wait for the guest to run at all (bounded). */
	for (int i = 0; i < 3000 && read_counter() == 0; i++)
		pause_ms(10);
	uint32_t start = read_counter();
	pthread_t t[6];
	void *(*fn[6])(void *) = { reader, reader, mapper, regs_reader, pauser, hotadder };
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, fn[i], NULL);
	pause_ms(seconds * 1000);
	atomic_store(&stop_workers, true);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	uint32_t after_workers = read_counter();
	pause_ms(200);
	uint32_t end = read_counter();

	for (int o = 0; o < OP_COUNT; o++) {
		printf("%-15s %10lu done, %lu failed\n", op_names[o], atomic_load(&ops[o]),
		       atomic_load(&errors[o]));
		if (atomic_load(&errors[o]) || !atomic_load(&ops[o]))
			failures++;
	}
	printf("extra segment seen by readers %lu times\n", atomic_load(&extra_seen));
	printf("guest counter: %u at start, %u after the workers, %u at the end\n", start,
	       after_workers, end);
	printf("vCPUs online: %u of %u\n", atomic_load(&m.vm.online_vcpus), m.vm.topo.maxcpus);
	if (start == 0 || end <= after_workers) {
		printf("the guest did not make progress\n");
		failures++;
	}
	if (atomic_load(&m.vm.online_vcpus) != m.vm.topo.maxcpus)
		failures++;
	vm_suspend(&m.vm, VM_EXIT_POWEROFF);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: lock_stress GUEST_BIN SECONDS CPUS MAXCPUS\n");
		return 2;
	}
	char err[512], topo[64];
	extra = mmap(NULL, EXTRA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(extra, EXTRA_BYTE, EXTRA_LEN);
	snprintf(topo, sizeof(topo), "cpus=%s,maxcpus=%s", argv[3], argv[4]);
	config_init(&m.cfg);
	config_set(&m.cfg, "name", "lock-stress");
	config_set(&m.cfg, "memory.size", "64M");
	config_set(&m.cfg, "boot.raw", argv[1]);
	config_set(&m.cfg, "cpus", argv[3]);
	config_set(&m.cfg, "maxcpus", argv[4]);
	if (getenv("KHYVE_TEST_ALLOW_EMULATED"))
		config_set(&m.cfg, "kvm.allow_emulated", "true");
	if (machine_assemble(&m, err, sizeof(err))) {
		fprintf(stderr, "lock_stress: %s\n", err);
		return 1;
	}
	pthread_t d;
	pthread_create(&d, NULL, driver, (void *)(intptr_t)atol(argv[2]));
	int status = vm_run(&m.vm);
	pthread_join(d, NULL);
	machine_disassemble(&m);
	config_free(&m.cfg);
	munmap(extra, EXTRA_LEN);
	printf("exit status %d, %d failed checks\n", status, failures);
	return status == VM_EXIT_POWEROFF && failures == 0 ? 0 : 1;
}
