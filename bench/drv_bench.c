/*
 * Benchmark of the driver interface (src/vmm_drv.h), with the lm-drv-bench
 * micro-guest on one vCPU. The program is the "driver": it holds the VM and
 * hooks ports through the interface, as viona will.
 *
 *   1. Exits per second for a guest port write handled
 *        (a) by an ioeventfd hook (vmm_drv_ioport_hook): the vCPU exits to
 *            KVM only, which counts the write in an eventfd and re-enters;
 *        (b) by a userspace round trip: KVM_EXIT_IO, ioport_dispatch, an
 *            empty handler, KVM_RUN again.
 *      Timed between the guest's phase markers (a userspace port), median
 *      of the repetitions; the number of writes per phase adapts so that a
 *      phase lasts about PHASE_SECONDS.
 *   2. MSIs per second, ping-pong: the guest's handler EOIs and rings a
 *      hooked doorbell; the hook callback sends the next interrupt, so each
 *      is delivered before the next is sent (no coalescing). Methods:
 *        - irqfd: vmm_drv_msi() with the message of one of the hold's routes
 *          (one eventfd write; KVM's irqfd injects);
 *        - KVM_SIGNAL_MSI: vmm_drv_msi() with a message no route has (its
 *          fallback);
 *        - KVM_IRQ_LINE on IOAPIC pin 22 (edge: raise, lower): the
 *          userspace-injected interrupt a device model without the
 *          interface would use.
 *      Besides the round-trip rate, the host CPU time of the send call.
 * Prints the tables and the ratios. Fails (exit 1) only if something did
 * not work: counts that do not add up, a guest that did not get there.
 *
 *   drv_bench GUEST_BIN [REPS]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "machine.h"
#include "vm.h"
#include "vm_lock.h"
#include "vmm_drv.h"

#define CTL 0x520
#define HOOKED 0x524
#define USER 0x528
#define PP 0x52c
#define BENCH_K 0x6200
#define BENCH_REPS 0x6204
#define BENCH_COUNT 0x6208
#define BENCH_GSI 22
#define PHASE_SECONDS 0.3
#define MSI_ADDR 0xfee00000ULL

static struct machine m;
static struct vmm_hold *hold;
static int reps = 5;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static volatile uint32_t *guest_u32(uint64_t gpa)
{
	return memmap_translate(&m.vm.mem, gpa, 4);
}

/* ---- part 1: exits, timed by the guest's markers (vCPU thread) ---- */

static double phase_start, phase_vcpu_cpu, phase_proc_cpu;
static double hooked_rates[64], user_rates[64];
/* CPU us per write: of the vCPU thread (guest time included), of all the others. */
static double hooked_vcpu[64], user_vcpu[64], hooked_other[64], user_other[64];
static int hooked_n, user_n;

static double process_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
static uint64_t writes_expected;
static atomic_ulong hooked_writes, user_writes;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool guest_ready;

static void adapt_k(double rate)
{
	double k = rate * PHASE_SECONDS;
	if (k < 1000)
		k = 1000;
	if (k > 5e6)
		k = 5e6;
	*guest_u32(BENCH_K) = (uint32_t)k;
}

static void ctl_port(void *opaque, uint16_t port, unsigned size, bool is_write, uint32_t *val)
{
	if (!is_write) {
		*val = 0;
		return;
	}
	double t = now(), vc = thread_cpu(), pc = process_cpu();
	double vcpu_us = 0, other_us = 0;
	uint32_t k = *guest_u32(BENCH_K);
	if (*val == 2 || *val == 4) {
		vcpu_us = (vc - phase_vcpu_cpu) / k * 1e6;
		other_us = ((pc - phase_proc_cpu) - (vc - phase_vcpu_cpu)) / k * 1e6;
	}
	switch (*val) {
	case 1:
	case 3:
		phase_start = t;
		phase_vcpu_cpu = vc;
		phase_proc_cpu = pc;
		break;
	case 2:
		writes_expected += k;
		if (hooked_n < 64) {
			hooked_vcpu[hooked_n] = vcpu_us;
			hooked_other[hooked_n] = other_us;
			hooked_rates[hooked_n++] = k / (t - phase_start);
		}
		break;
	case 4:
		if (user_n < 64) {
			user_vcpu[user_n] = vcpu_us;
			user_other[user_n] = other_us;
			user_rates[user_n++] = k / (t - phase_start);
		}
		/* The next repetition: both phases sized for the slower path's rate. */
		adapt_k(user_rates[user_n - 1] * 4 < hooked_rates[hooked_n - 1]
				? user_rates[user_n - 1] * 4 : hooked_rates[hooked_n - 1]);
		break;
	case 5:
		pthread_mutex_lock(&lock);
		guest_ready = true;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		break;
	}
}

static void user_port(void *opaque, uint16_t port, unsigned size, bool is_write, uint32_t *val)
{
	if (is_write)
		atomic_fetch_add_explicit(&user_writes, 1, memory_order_relaxed);
	else
		*val = 0;
}

static void hooked_port(void *arg, uint64_t count)
{
	atomic_fetch_add_explicit(&hooked_writes, count, memory_order_relaxed);
}

/* ---- part 2: interrupts, ping-pong from the doorbell's callback ---- */

enum method { M_IRQFD, M_SIGNAL_MSI, M_IRQ_LINE, M_COUNT };
static const char *const method_names[M_COUNT] = {
	"irqfd (vmm_drv_msi, routed message)",
	"KVM_SIGNAL_MSI (vmm_drv_msi fallback)",
	"KVM_IRQ_LINE, IOAPIC pin 22 (edge)",
};
static enum method method;
static uint64_t rounds_left, sent;
static double send_cpu;
static bool round_done;

static void send_one(void)
{
	double t0 = thread_cpu();
	switch (method) {
	case M_IRQFD: vmm_drv_msi(hold, MSI_ADDR, 0x41); break;
	case M_SIGNAL_MSI: vmm_drv_msi(hold, MSI_ADDR, 0x42); break;
	case M_IRQ_LINE:
		vm_irq_line(&m.vm, BENCH_GSI, 1);
		vm_irq_line(&m.vm, BENCH_GSI, 0);
		break;
	default: break;
	}
	send_cpu += thread_cpu() - t0;
	sent++;
}

/* On the driver thread: the guest handled the last interrupt. */
static void pingpong(void *arg, uint64_t count)
{
	pthread_mutex_lock(&lock);
	if (rounds_left > 0) {
		rounds_left--;
		send_one();
	} else {
		round_done = true;
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
}

struct msi_result { double rate, send_us; };

static struct msi_result run_method(enum method mt, uint64_t rounds)
{
	pthread_mutex_lock(&lock);
	method = mt;
	rounds_left = rounds - 1;
	round_done = false;
	send_cpu = 0;
	double t0 = now();
	send_one();
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 60;
	while (!round_done)
		if (pthread_cond_timedwait(&cond, &lock, &deadline)) {
			fprintf(stderr, "drv_bench: %s: no answer from the guest after %llu of %llu "
				"interrupts\n", method_names[mt],
				(unsigned long long)(rounds - rounds_left - 1),
				(unsigned long long)rounds);
			exit(1);
		}
	double dt = now() - t0;
	struct msi_result r = { rounds / dt, send_cpu / rounds * 1e6 };
	pthread_mutex_unlock(&lock);
	return r;
}

static int failures;

static void *controller(void *arg)
{
	pthread_mutex_lock(&lock);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 600;
	while (!guest_ready)
		if (pthread_cond_timedwait(&cond, &lock, &deadline)) {
			fprintf(stderr, "drv_bench: the guest never finished the exit phases\n");
			failures++;
			pthread_mutex_unlock(&lock);
			vm_suspend(&m.vm, VM_EXIT_ERROR);
			return NULL;
		}
	pthread_mutex_unlock(&lock);

	/* The first repetition only sized the others. */
	double h = median(hooked_rates + 1, hooked_n - 1), u = median(user_rates + 1, user_n - 1);
	printf("== exits per second: a 2-byte guest port write (1 vCPU, median of %d phases)\n",
	       hooked_n - 1);
	double hv = median(hooked_vcpu + 1, hooked_n - 1), uv = median(user_vcpu + 1, user_n - 1);
	double ho = median(hooked_other + 1, hooked_n - 1), uo = median(user_other + 1, user_n - 1);
	printf("%-38s %10s %9s %14s %14s\n", "handled by", "writes/s", "us/write",
	       "vCPU CPU us/w", "other CPU us/w");
	printf("%-38s %10.0f %9.2f %14.2f %14.2f\n", "ioeventfd (vmm_drv_ioport_hook)", h, 1e6 / h,
	       hv, ho);
	printf("%-38s %10.0f %9.2f %14.2f %14.2f\n", "userspace round trip (KVM_EXIT_IO)", u,
	       1e6 / u, uv, uo);
	printf("ratio ioeventfd / userspace: %.2f (writes/s), %.2f (vCPU thread CPU per write)\n",
	       h / u, hv / uv);
	printf("(vCPU CPU: the vCPU thread, guest time included; other: every other thread, here\n"
	       " the driver thread draining the eventfd)\n");
	/* Every hooked write reached the driver, none went to userspace. */
	for (int i = 0; i < 200 && atomic_load(&hooked_writes) < writes_expected; i++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	if (atomic_load(&hooked_writes) != writes_expected) {
		printf("the driver counted %lu hooked writes, the guest made %llu\n",
		       atomic_load(&hooked_writes), (unsigned long long)writes_expected);
		failures++;
	}

	/* Calibrate each method's rounds to ~PHASE_SECONDS, then REPS interleaved runs. */
	uint64_t rounds[M_COUNT];
	for (int mt = 0; mt < M_COUNT; mt++) {
		struct msi_result r = run_method(mt, 200);
		double n = r.rate * PHASE_SECONDS;
		rounds[mt] = n < 200 ? 200 : n > 2e6 ? 2000000 : (uint64_t)n;
	}
	double rate[M_COUNT][64], cost[M_COUNT][64];
	for (int i = 0; i < reps; i++)
		for (int mt = 0; mt < M_COUNT; mt++) {
			struct msi_result r = run_method(mt, rounds[mt]);
			rate[mt][i] = r.rate;
			cost[mt][i] = r.send_us;
		}
	double med_rate[M_COUNT], med_cost[M_COUNT];
	for (int mt = 0; mt < M_COUNT; mt++) {
		med_rate[mt] = median(rate[mt], reps);
		med_cost[mt] = median(cost[mt], reps);
	}
	printf("\n== interrupts per second, ping-pong (each delivered, EOIed and acknowledged "
	       "through a hooked doorbell before the next; median of %d runs)\n", reps);
	printf("%-42s %14s %14s %12s\n", "sent with", "round trips/s", "us/round trip",
	       "send CPU us");
	for (int mt = 0; mt < M_COUNT; mt++)
		printf("%-42s %14.0f %14.2f %12.2f\n", method_names[mt], med_rate[mt],
		       1e6 / med_rate[mt], med_cost[mt]);
	printf("ratio irqfd / KVM_SIGNAL_MSI: %.2f (rate), %.2f (send CPU, lower is cheaper)\n",
	       med_rate[M_IRQFD] / med_rate[M_SIGNAL_MSI], med_cost[M_IRQFD] / med_cost[M_SIGNAL_MSI]);
	printf("ratio irqfd / KVM_IRQ_LINE:   %.2f (rate), %.2f (send CPU)\n",
	       med_rate[M_IRQFD] / med_rate[M_IRQ_LINE], med_cost[M_IRQFD] / med_cost[M_IRQ_LINE]);

	/* Every interrupt sent was handled by the guest: none coalesced or lost. */
	nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	uint32_t handled = *guest_u32(BENCH_COUNT);
	struct vmm_drv_stats s;
	vmm_drv_get_stats(&m.vm, &s);
	printf("paths taken: %lu MSIs through irqfd, %lu through KVM_SIGNAL_MSI; guest handled "
	       "%u of %llu interrupts sent\n", s.msi_irqfd, s.msi_signal, handled,
	       (unsigned long long)sent);
	if (handled != sent || !s.msi_irqfd || !s.msi_signal) {
		printf("the interrupt counts do not add up\n");
		failures++;
	}
	vm_suspend(&m.vm, VM_EXIT_POWEROFF);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: drv_bench GUEST_BIN [REPS]\n");
		return 2;
	}
	if (argc == 3)
		reps = atoi(argv[2]);
	if (reps < 1 || reps > 64)
		reps = 5;
	char err[512];
	config_init(&m.cfg);
	config_set(&m.cfg, "name", "drv-bench");
	config_set(&m.cfg, "memory.size", "64M");
	config_set(&m.cfg, "boot.raw", argv[1]);
	config_set(&m.cfg, "cpus", "1");
	if (getenv("KHYVE_TEST_ALLOW_EMULATED"))
		config_set(&m.cfg, "kvm.allow_emulated", "true");
	struct vmm_hook *hk = NULL, *pp = NULL;
	if (machine_assemble(&m, err, sizeof(err)) ||
	    ioport_register(&m.vm.io, CTL, 4, "bench-ctl", ctl_port, NULL, err, sizeof(err)) ||
	    ioport_register(&m.vm.io, USER, 2, "bench-user", user_port, NULL, err, sizeof(err)) ||
	    !(hold = vmm_drv_hold(&m.vm, NULL, NULL, err, sizeof(err))) ||
	    vmm_drv_ioport_hook(hold, HOOKED, 2, hooked_port, NULL, &hk, err, sizeof(err)) ||
	    vmm_drv_ioport_hook(hold, PP, 1, pingpong, NULL, &pp, err, sizeof(err)) ||
	    !vmm_drv_msi_route(hold, MSI_ADDR, 0x41, false, err, sizeof(err))) {
		fprintf(stderr, "drv_bench: %s\n", err);
		return 1;
	}
	*guest_u32(BENCH_K) = 2000;
	*guest_u32(BENCH_REPS) = (uint32_t)reps + 1;   /* the first one calibrates */
	pthread_t c;
	pthread_create(&c, NULL, controller, NULL);
	int status = vm_run(&m.vm);
	pthread_join(c, NULL);
	vmm_drv_rele(hold);
	machine_disassemble(&m);
	config_free(&m.cfg);
	if (status != VM_EXIT_POWEROFF)
		fprintf(stderr, "drv_bench: the VM stopped with status %d\n", status);
	return status == VM_EXIT_POWEROFF && failures == 0 ? 0 : 1;
}
