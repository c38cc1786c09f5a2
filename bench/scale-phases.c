/*
 * scale-phases: where the time goes when khyve creates, starts and destroys
 * a VM of N vCPUs.
 *
 *   scale-phases GUEST_BIN N...      khyve's own code (libkhyve), per N:
 *       assemble  machine_assemble(): vm_create (KVM VM, RAM, irqchip, every
 *                 vCPU: KVM_CREATE_VCPU, kvm_run mmap, CPUID, LAPIC), devices,
 *                 ACPI, guest image
 *       run       vm_run(): one thread per vCPU, the BSP powers off at once,
 *                 the APs stay parked; stop (kick all) and join all
 *       teardown  machine_disassemble(): close every vCPU fd, unmap, close VM
 *   scale-phases --breakdown N       the same KVM calls made directly, each
 *                 kind timed on its own (sum over the N vCPUs), to see which
 *                 one dominates; the sequence mirrors vm.c/vcpu.c.
 *
 * Output: key=value lines; bench/scale.sh turns them into tables.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cpuid.h"
#include "machine.h"
#include "topology.h"
#include "vm.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int phases(const char *guest, const char *n)
{
	static struct machine m;
	char err[512];
	config_init(&m.cfg);
	config_set(&m.cfg, "name", "scale");
	config_set(&m.cfg, "cpus", n);
	config_set(&m.cfg, "memory.size", "64M");
	config_set(&m.cfg, "boot.raw", guest);
	if (getenv("KHYVE_TEST_ALLOW_EMULATED"))
		config_set(&m.cfg, "kvm.allow_emulated", "true");
	double t0 = now_ms();
	int status = VM_EXIT_ERROR;
	int r = machine_assemble(&m, err, sizeof(err));
	double t1 = now_ms();
	if (r)
		fprintf(stderr, "scale-phases: %s vCPUs: %s\n", n, err);
	else
		status = vm_run(&m.vm);
	double t2 = now_ms();
	machine_disassemble(&m);
	double t3 = now_ms();
	config_free(&m.cfg);
	printf("n=%s assemble_ms=%.1f run_ms=%.1f teardown_ms=%.1f total_ms=%.1f status=%d\n", n,
	       t1 - t0, t2 - t1, t3 - t2, t3 - t0, status);
	fflush(stdout);
	return status == VM_EXIT_POWEROFF ? 0 : 1;
}

/* --breakdown: the KVM calls of vm_create/vcpu_create/vm_run/vm_destroy, each timed. */
enum { T_CREATE_VCPU, T_MMAP_RUN, T_CPUID_BUILD, T_SET_CPUID, T_X2APIC, T_LAPIC,
       T_BARE_THREADS, T_THREAD_CREATE, T_THREADS_IN, T_KICK, T_JOIN, T_MUNMAP, T_CLOSE_VCPU, T_CLOSE_VM,
       T_COUNT };
static const char *tname[T_COUNT] = {
	"KVM_CREATE_VCPU", "mmap(kvm_run)", "cpuid_build", "KVM_SET_CPUID2",
	"KVM_SET_MSRS(x2apic, BSP only)", "KVM_GET/SET_LAPIC (BSP, once)",
	"bare threads: create+join (no KVM)", "pthread_create", "threads-reach-KVM_RUN",
	"pthread_kill(kick)", "pthread_join", "munmap(kvm_run)", "close(vcpu fd)",
	"close(vm fd)+kvm fd",
};

struct bvcpu {
	int fd;
	struct kvm_run *run;
	pthread_t th;
};
static atomic_int entered;

static void on_kick(int sig) { (void)sig; }

static void *bare_thread(void *arg)
{
	atomic_fetch_add(&entered, 1);
	return arg;
}

static void *bthread(void *arg)
{
	struct bvcpu *v = arg;
	atomic_fetch_add(&entered, 1);
	/* Parked (never got a SIPI): KVM_RUN blocks until the kick. */
	while (!v->run->immediate_exit) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0 && errno != EINTR && errno != EAGAIN)
			break;
	}
	return NULL;
}

static int breakdown(uint32_t n)
{
	double t[T_COUNT] = { 0 }, a;
	char err[256];
	struct topology topo;
	char spec[32];
	snprintf(spec, sizeof(spec), "%u", n);
	if (topology_parse(spec, &topo, err, sizeof(err))) {
		fprintf(stderr, "scale-phases: %s\n", err);
		return 1;
	}
	double t_start = now_ms();
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_cpuid2 *sup = calloc(1, sizeof(*sup) + 4096 * sizeof(sup->entries[0]));
	sup->nent = 4096;
	if (kvm < 0 || ioctl(kvm, KVM_GET_SUPPORTED_CPUID, sup) < 0) {
		perror("scale-phases: /dev/kvm");
		return 1;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	size_t ram = 64 << 20;
	void *mem = mmap(NULL, ram, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct kvm_userspace_memory_region r = { .slot = 0, .memory_size = ram,
						 .userspace_addr = (uintptr_t)mem };
	ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	uint64_t idmap = 0xfffbc000ULL;
	ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		perror("scale-phases: KVM_CREATE_IRQCHIP");
		return 1;
	}
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	ioctl(vm, KVM_CREATE_PIT2, &pit);
	bool x2 = topology_max_apic_id(&topo) >= 255;
	if (x2) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_X2APIC_API,
			.args[0] = KVM_X2APIC_API_USE_32BIT_IDS |
				   KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK };
		ioctl(vm, KVM_ENABLE_CAP, &cap);
	}
	double t_vm = now_ms() - t_start;

	struct bvcpu *v = calloc(n, sizeof(*v));
	uint32_t max = sup->nent + 8;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	struct cpuid_filter f = { 0 };
	for (uint32_t i = 0; i < n; i++) {
		a = now_ms();
		v[i].fd = ioctl(vm, KVM_CREATE_VCPU, (unsigned long)topology_apic_id(&topo, i));
		t[T_CREATE_VCPU] += now_ms() - a;
		if (v[i].fd < 0) {
			fprintf(stderr, "scale-phases: KVM_CREATE_VCPU %u: %s\n", i, strerror(errno));
			return 1;
		}
		a = now_ms();
		v[i].run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				v[i].fd, 0);
		t[T_MMAP_RUN] += now_ms() - a;
		a = now_ms();
		int ne = cpuid_build(sup->entries, sup->nent, &f, &topo, i, c->entries, max);
		t[T_CPUID_BUILD] += now_ms() - a;
		c->nent = (uint32_t)ne;
		a = now_ms();
		if (ioctl(v[i].fd, KVM_SET_CPUID2, c) < 0)
			fprintf(stderr, "scale-phases: KVM_SET_CPUID2: %s\n", strerror(errno));
		t[T_SET_CPUID] += now_ms() - a;
		/* As vcpu.c: only the BSP starts in x2APIC mode. */
		if (x2 && i == 0) {
			struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {
				.h.nmsrs = 1, .e.index = 0x1b,
				.e.data = 0xfee00000ULL | (3ULL << 10) | (1ULL << 8) };
			a = now_ms();
			ioctl(v[i].fd, KVM_SET_MSRS, &m);
			t[T_X2APIC] += now_ms() - a;
		}
	}
	/* As vm.c: the BSP's LINT0/1, once, after every boot vCPU exists. */
	struct kvm_lapic_state l;
	a = now_ms();
	ioctl(v[0].fd, KVM_GET_LAPIC, &l);
	ioctl(v[0].fd, KVM_SET_LAPIC, &l);
	t[T_LAPIC] += now_ms() - a;
	/* Threads: every vCPU parked in KVM_RUN (none gets a SIPI; the BSP is left
	 * out so that nothing runs guest code). */
	struct sigaction sa = { .sa_handler = on_kick };
	sigaction(SIGUSR1, &sa, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* The same number of threads doing nothing: the cost of threads as such. */
	a = now_ms();
	for (uint32_t i = 1; i < n; i++)
		pthread_create(&v[i].th, &attr, bare_thread, NULL);
	for (uint32_t i = 1; i < n; i++)
		pthread_join(v[i].th, NULL);
	t[T_BARE_THREADS] = now_ms() - a;
	atomic_store(&entered, 0);
	a = now_ms();
	for (uint32_t i = 1; i < n; i++)
		pthread_create(&v[i].th, &attr, bthread, &v[i]);
	t[T_THREAD_CREATE] = now_ms() - a;
	while (atomic_load(&entered) < (int)n - 1)
		usleep(100);
	t[T_THREADS_IN] = now_ms() - a;
	usleep(20000); /* let them block in KVM_RUN */
	a = now_ms();
	for (uint32_t i = 1; i < n; i++) {
		__atomic_store_n(&v[i].run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v[i].th, SIGUSR1);
	}
	t[T_KICK] = now_ms() - a;
	a = now_ms();
	for (uint32_t i = 1; i < n; i++)
		pthread_join(v[i].th, NULL);
	t[T_JOIN] = now_ms() - a;
	for (uint32_t i = 0; i < n; i++) {
		a = now_ms();
		munmap(v[i].run, (size_t)run_size);
		t[T_MUNMAP] += now_ms() - a;
		a = now_ms();
		close(v[i].fd);
		t[T_CLOSE_VCPU] += now_ms() - a;
	}
	a = now_ms();
	close(vm);
	close(kvm);
	t[T_CLOSE_VM] = now_ms() - a;
	munmap(mem, ram);
	double total = now_ms() - t_start;
	printf("breakdown n=%u total_ms=%.1f vm_setup_ms=%.1f\n", n, total, t_vm);
	for (int i = 0; i < T_COUNT; i++)
		if (t[i] > 0)
			printf("breakdown n=%u step=%s ms=%.1f per_vcpu_us=%.1f\n", n, tname[i], t[i],
			       t[i] * 1e3 / n);
	free(v);
	free(c);
	free(sup);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--breakdown") == 0)
		return breakdown((uint32_t)strtoul(argv[2], NULL, 10));
	if (argc < 3) {
		fprintf(stderr, "usage: scale-phases GUEST_BIN N... | scale-phases --breakdown N\n");
		return 2;
	}
	int bad = 0;
	for (int i = 2; i < argc; i++)
		bad |= phases(argv[1], argv[i]);
	return bad;
}
