/*
 * Stress test of the driver interface (src/vmm_drv.h) against memory-map
 * changes, meant to run under ThreadSanitizer and AddressSanitizer (and as
 * the release build). While every vCPU of the lm-stress micro-guest spins:
 *   - three "driver" threads translate guest addresses under leases and
 *     read what they point to, continuously, caching the pointers for the
 *     lease's life as viona caches its ring pointers. Two poll
 *     vmm_drv_lease_expired() and break the lease themselves; the third
 *     reads under a mutex of its own that its expire callback takes to
 *     break the lease from the writer's thread;
 *   - a reader walks the map under the ordinary read lock;
 *   - two mappers map and unmap extra segments (the writer side, which must
 *     break every lease first). After each unmap the segment's backing
 *     memory is poisoned and released: munmap'ed (release, TSan: a stale
 *     read is a SIGSEGV or a data race) or free()d (ASan: a stale read is a
 *     heap-use-after-free). Every segment is filled with one non-poison
 *     byte value, so a stale read in the release build also shows up as a
 *     wrong byte;
 *   - a hooker hooks and unhooks the port the guest writes (ioeventfd); its
 *     callback fails the test if it runs while the port is not hooked
 *     (unhook must be synchronous). Before the guest runs, hook admission
 *     is checked: value-matched hooks coexist, claimed ports and KVM's
 *     in-kernel devices are refused; and a lease is broken under the lock
 *     its running expire callback waits for (viona's pattern: no deadlock).
 * At the end the lease readers are still running: the VM's destruction
 * asks the hold to let go (on_destroy), which stops them, and waits.
 * Fails on any wrong read, a translation that should have succeeded and did
 * not, a callback after unhook, a worker that made no progress, leases
 * never broken or renewed, or a hang (the calling script has a timeout).
 *
 *   drv_lease_stress GUEST_BIN SECONDS CPUS
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "machine.h"
#include "vm.h"
#include "vm_lock.h"
#include "vmm_drv.h"

#if defined(__SANITIZE_ADDRESS__)
#define USE_FREE 1   /* poisoned backing goes to ASan's quarantine */
#else
#define USE_FREE 0
#endif

#define COUNTER_GPA 0x6000ULL
#define BUSY_PORT   0x510             /* lm-stress writes it on every iteration */
#define NSLOTS      2
#define SLOT_GPA(i) (0x200000000ULL + (uint64_t)(i) * 0x100000ULL)
#define SLOT_LEN    (64 * 1024)
#define POISON      0xdd
#define NREADERS    3

static struct machine m;
static struct vmm_hold *hold;
static atomic_bool stop_writers, stop_readers;
static atomic_ulong errors;
static atomic_ulong map_cycles, rd_reads, hook_cycles, hook_calls, stray_calls;
static atomic_bool hooked, in_cb;

static void error(const char *what)
{
	atomic_fetch_add(&errors, 1);
	fprintf(stderr, "drv_lease_stress: %s\n", what);
}

static void pause_us(long us)
{
	nanosleep(&(struct timespec){ us / 1000000, (us % 1000000) * 1000 }, NULL);
}

/* ---- lease readers ---- */

struct reader {
	int id;
	bool break_in_callback;
	pthread_t thread;
	pthread_mutex_t mu;          /* mode B: held while reading; the callback takes it */
	struct vmm_lease *lease;     /* mode B: under mu */
	atomic_ulong reads, signs, renewals, callbacks, seg_reads;
};
static struct reader readers[NREADERS];

static void expire(void *arg)
{
	struct reader *r = arg;
	atomic_fetch_add(&r->callbacks, 1);
	if (!r->break_in_callback)
		return;   /* mode A: the reader polls vmm_drv_lease_expired() */
	pthread_mutex_lock(&r->mu);
	if (r->lease) {
		vmm_drv_lease_break(hold, r->lease);
		r->lease = NULL;
	}
	pthread_mutex_unlock(&r->mu);
}

/* Read a cached segment pointer: every byte is the segment's one value. */
static void check_segment(struct reader *r, const volatile uint8_t *p, unsigned *seed)
{
	uint8_t first = p[0];
	uint8_t any = p[rand_r(seed) % SLOT_LEN];
	uint8_t last = p[SLOT_LEN - 1];
	if (first == POISON || first == 0 || any != first || last != first)
		error("a leased segment pointer read poisoned or foreign memory (use after change)");
	atomic_fetch_add_explicit(&r->seg_reads, 1, memory_order_relaxed);
}

static void read_once(struct reader *r, volatile uint32_t *ctr, volatile uint8_t *seg[NSLOTS],
		      unsigned *seed)
{
	(void)*ctr;
	for (int i = 0; i < NSLOTS; i++)
		if (seg[i])
			check_segment(r, seg[i], seed);
	atomic_fetch_add_explicit(&r->reads, 1, memory_order_relaxed);
}

static bool translate(struct vmm_lease *l, volatile uint32_t **ctr, volatile uint8_t *seg[NSLOTS])
{
	*ctr = vmm_drv_gpa2kva(l, COUNTER_GPA, 4);
	if (!*ctr) {
		error("guest RAM did not translate under a lease");
		return false;
	}
	/* Straddling the end of RAM or a hole: must fail cleanly. */
	if (vmm_drv_gpa2kva(l, m.vm.ram_size - 4, 8) || vmm_drv_gpa2kva(l, ~0ULL - 3, 8))
		error("a range outside RAM translated");
	for (int i = 0; i < NSLOTS; i++) {
		seg[i] = vmm_drv_gpa2kva(l, SLOT_GPA(i), SLOT_LEN);
		if (vmm_drv_gpa2kva(l, SLOT_GPA(i) + SLOT_LEN - 4, 8))
			error("a range straddling a segment's end translated");
	}
	return true;
}

static void *reader_a(void *arg)
{
	struct reader *r = arg;
	unsigned seed = (unsigned)r->id + 1;
	while (!atomic_load(&stop_readers)) {
		struct vmm_lease *l = vmm_drv_lease_sign(hold, expire, r);
		if (!l)
			break;   /* release requested */
		atomic_fetch_add(&r->signs, 1);
		volatile uint32_t *ctr;
		volatile uint8_t *seg[NSLOTS];
		if (translate(l, &ctr, seg))
			while (!atomic_load(&stop_readers) && !vmm_drv_lease_expired(l))
				read_once(r, ctr, seg, &seed);
		bool renewal = vmm_drv_lease_expired(l);
		vmm_drv_lease_break(hold, l);
		if (renewal)
			atomic_fetch_add(&r->renewals, 1);
	}
	return NULL;
}

static void *reader_b(void *arg)
{
	struct reader *r = arg;
	unsigned seed = (unsigned)r->id + 1;
	while (!atomic_load(&stop_readers)) {
		struct vmm_lease *l = vmm_drv_lease_sign(hold, expire, r);
		if (!l)
			break;
		atomic_fetch_add(&r->signs, 1);
		volatile uint32_t *ctr;
		volatile uint8_t *seg[NSLOTS];
		pthread_mutex_lock(&r->mu);
		r->lease = l;
		/*
		 * The expire callback may have run between sign and here, when it
		 * could not see the lease: expired is set before it is called.
		 */
		if (vmm_drv_lease_expired(l)) {
			vmm_drv_lease_break(hold, l);
			r->lease = NULL;
		}
		bool ok = r->lease && translate(l, &ctr, seg);
		pthread_mutex_unlock(&r->mu);
		for (bool live = ok; live && !atomic_load(&stop_readers);) {
			pthread_mutex_lock(&r->mu);
			live = r->lease != NULL;   /* the callback broke it */
			for (int i = 0; live && i < 64; i++)
				read_once(r, ctr, seg, &seed);
			pthread_mutex_unlock(&r->mu);
		}
		pthread_mutex_lock(&r->mu);
		if (r->lease) {
			vmm_drv_lease_break(hold, r->lease);
			r->lease = NULL;
		} else {
			atomic_fetch_add(&r->renewals, 1);
		}
		pthread_mutex_unlock(&r->mu);
	}
	return NULL;
}

/* ---- the ordinary read side ---- */

static void *rdlock_reader(void *arg)
{
	while (!atomic_load(&stop_writers)) {
		vm_map_rdlock(&m.vm);
		volatile uint8_t *p = memmap_translate(&m.vm.mem, SLOT_GPA(0), SLOT_LEN);
		if (p && (p[0] == POISON || p[SLOT_LEN / 2] != p[0]))
			error("a segment read under the map read lock was poisoned");
		vm_map_rdunlock(&m.vm);
		atomic_fetch_add_explicit(&rd_reads, 1, memory_order_relaxed);
	}
	return NULL;
}

/* ---- map changes with poisoned, released backing ---- */

static void *backing_get(void)
{
#if USE_FREE
	return aligned_alloc(4096, SLOT_LEN);
#else
	void *p = mmap(NULL, SLOT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
#endif
}

static void backing_put(void *p)
{
	memset(p, POISON, SLOT_LEN);
#if USE_FREE
	free(p);
#else
	munmap(p, SLOT_LEN);
#endif
}

static void *mapper(void *arg)
{
	int slot = (int)(intptr_t)arg;
	char err[256];
	uint8_t value = (uint8_t)(1 + slot * 100);
	while (!atomic_load(&stop_writers)) {
		uint8_t *b = backing_get();
		if (!b) {
			error("out of memory for a segment");
			break;
		}
		value = value == 0xfe ? 1 : value + 1;
		if (value == POISON)
			value++;
		memset(b, value, SLOT_LEN);
		if (vm_mem_map(&m.vm, SLOT_GPA(slot), SLOT_LEN, b, err, sizeof(err))) {
			error(err);
			backing_put(b);
			break;
		}
		pause_us(300);
		if (vm_mem_unmap(&m.vm, SLOT_GPA(slot), err, sizeof(err))) {
			error(err);
			break;   /* leak it: it may still be mapped */
		}
		backing_put(b);
		atomic_fetch_add(&map_cycles, 1);
		pause_us(200);
	}
	return NULL;
}

/* ---- hook / unhook the guest's busy port ---- */

static void busy_port(void *arg, uint64_t count)
{
	/*
	 * Take a while, during which the hooker unhooks (it waits for in_cb):
	 * the port must still count as hooked when the callback ENDS, since
	 * unhook waits for a running callback before it returns.
	 */
	atomic_store(&in_cb, true);
	pause_us(200);
	atomic_store(&in_cb, false);
	if (!atomic_load(&hooked)) {
		atomic_fetch_add(&stray_calls, 1);
		error("a hook callback ran after its unhook returned");
	}
	atomic_fetch_add(&hook_calls, 1);
}

static void *hooker(void *arg)
{
	char err[256];
	while (!atomic_load(&stop_writers)) {
		struct vmm_hook *c;
		atomic_store(&hooked, true);
		if (vmm_drv_ioport_hook(hold, BUSY_PORT, 1, busy_port, NULL, &c, err, sizeof(err))) {
			error(err);
			atomic_store(&hooked, false);
			break;
		}
		/* A second hook on a hooked port is refused. */
		struct vmm_hook *c2;
		if (vmm_drv_ioport_hook(hold, BUSY_PORT, 1, busy_port, NULL, &c2, err, sizeof(err)) !=
		    -EBUSY)
			error("a port hooked twice was not refused");
		/* Unhook while a callback runs, if one comes within 20 ms. */
		for (int i = 0; i < 2000 && !atomic_load(&in_cb); i++)
			pause_us(10);
		vmm_drv_ioport_unhook(hold, &c);
		atomic_store(&hooked, false);
		if (c)
			error("unhook did not clear the cookie");
		atomic_fetch_add(&hook_cycles, 1);
		pause_us(200);
	}
	return NULL;
}

/* ---- the VM's destruction asks the hold to let go ---- */

static atomic_int destroy_calls;

static void on_destroy(void *arg)
{
	atomic_fetch_add(&destroy_calls, 1);
	if (!vmm_drv_release_reqd(hold))
		error("on_destroy without release_reqd");
	atomic_store(&stop_readers, true);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(readers[i].thread, NULL);
	vmm_drv_rele(hold);
}

static int failures;

/* Hook admission (before the guest runs): what coexists, what is refused. */
static void check_hook_rules(void)
{
	char err[256];
	struct vmm_hook *a = NULL, *b = NULL, *c = NULL;
	struct rule { const char *what; int got, want; } r[8];
	int n = 0;
#define RULE(w, call, expect) r[n++] = (struct rule){ w, call, expect }
	RULE("match 1 on 0x511", vmm_drv_ioport_hook_match(hold, 0x511, 2, 1, busy_port, NULL, &a,
							    err, sizeof(err)), 0);
	RULE("match 2 on 0x511 (another value)", vmm_drv_ioport_hook_match(hold, 0x511, 2, 2,
			busy_port, NULL, &b, err, sizeof(err)), 0);
	RULE("match 2 on 0x511 again", vmm_drv_ioport_hook_match(hold, 0x511, 2, 2, busy_port,
			NULL, &c, err, sizeof(err)), -EBUSY);
	RULE("any value on 0x511", vmm_drv_ioport_hook(hold, 0x511, 2, busy_port, NULL, &c, err,
						       sizeof(err)), -EBUSY);
	RULE("size 3", vmm_drv_ioport_hook(hold, 0x600, 3, busy_port, NULL, &c, err,
					   sizeof(err)), -EINVAL);
	RULE("the power port 0x600", vmm_drv_ioport_hook(hold, 0x600, 1, busy_port, NULL, &c,
							 err, sizeof(err)), -EBUSY);
	RULE("the LAPIC page", vmm_drv_mmio_hook(hold, 0xfee00030, 4, busy_port, NULL, &c, err,
						 sizeof(err)), -EBUSY);
	RULE("the IOAPIC", vmm_drv_mmio_hook(hold, 0xfec00000, 0, busy_port, NULL, &c, err,
					     sizeof(err)), -EBUSY);
#undef RULE
	for (int i = 0; i < n; i++)
		if (r[i].got != r[i].want) {
			printf("hooking %s: got %d, expected %d\n", r[i].what, r[i].got, r[i].want);
			failures++;
		}
	vmm_drv_ioport_unhook(hold, &a);
	vmm_drv_ioport_unhook(hold, &b);
	/* Once unhooked, the port is free again for any value. */
	if (vmm_drv_ioport_hook(hold, 0x511, 2, busy_port, NULL, &c, err, sizeof(err))) {
		printf("hooking 0x511 after unhooking it: %s\n", err);
		failures++;
	}
	vmm_drv_ioport_unhook(hold, &c);
}

/*
 * viona's pattern, deterministically: the driver breaks its lease under the
 * lock its expire callback takes, while that callback is running (blocked
 * on the lock) in the map changer's thread. A break that waited for the
 * callback would deadlock here.
 */
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool cb_entered;

static void locking_expire(void *arg)
{
	atomic_store(&cb_entered, true);
	pthread_mutex_lock(&cb_lock);
	pthread_mutex_unlock(&cb_lock);
}

static void *map_once(void *arg)
{
	char err[256];
	uint8_t *b = backing_get();
	memset(b, 1, SLOT_LEN);
	if (vm_mem_map(&m.vm, SLOT_GPA(0), SLOT_LEN, b, err, sizeof(err)) ||
	    vm_mem_unmap(&m.vm, SLOT_GPA(0), err, sizeof(err)))
		error(err);
	backing_put(b);
	return NULL;
}

static void check_break_under_callback_lock(void)
{
	struct vmm_lease *l = vmm_drv_lease_sign(hold, locking_expire, NULL);
	pthread_mutex_lock(&cb_lock);
	pthread_t t;
	pthread_create(&t, NULL, map_once, NULL);
	while (!atomic_load(&cb_entered))
		pause_us(100);
	vmm_drv_lease_break(hold, l);   /* the callback is running, waiting for cb_lock */
	pthread_mutex_unlock(&cb_lock);
	pthread_join(t, NULL);
	printf("lease broken under its callback's lock while the callback ran: no deadlock\n");
}

static uint32_t guest_counter(void)
{
	vm_map_rdlock(&m.vm);
	volatile uint32_t *c = memmap_translate(&m.vm.mem, COUNTER_GPA, 4);
	uint32_t v = c ? *c : 0;
	vm_map_rdunlock(&m.vm);
	return v;
}

static void *controller(void *arg)
{
	long seconds = (long)(intptr_t)arg;
	for (int i = 0; i < 3000 && guest_counter() == 0; i++)
		pause_us(10000);
	uint32_t start = guest_counter();
	for (int i = 0; i < NREADERS; i++) {
		readers[i].id = i;
		readers[i].break_in_callback = i == NREADERS - 1;
		pthread_mutex_init(&readers[i].mu, NULL);
		pthread_create(&readers[i].thread, NULL,
			       readers[i].break_in_callback ? reader_b : reader_a, &readers[i]);
	}
	pthread_t w[4];
	pthread_create(&w[0], NULL, rdlock_reader, NULL);
	pthread_create(&w[1], NULL, mapper, (void *)0);
	pthread_create(&w[2], NULL, mapper, (void *)1);
	pthread_create(&w[3], NULL, hooker, NULL);
	pause_us(seconds * 1000000);
	atomic_store(&stop_writers, true);
	for (int i = 0; i < 4; i++)
		pthread_join(w[i], NULL);
	/* Readers keep reading: vm_destroy's on_destroy stops them. */
	pause_us(100000);
	uint32_t end = guest_counter();
	struct vmm_drv_stats s;
	vmm_drv_get_stats(&m.vm, &s);

	printf("%-10s %10s %8s %9s %10s %10s\n", "reader", "reads", "leases", "renewals",
	       "callbacks", "seg reads");
	for (int i = 0; i < NREADERS; i++) {
		struct reader *r = &readers[i];
		printf("%-10s %10lu %8lu %9lu %10lu %10lu\n", r->break_in_callback ? "cb-break" : "poll",
		       atomic_load(&r->reads), atomic_load(&r->signs), atomic_load(&r->renewals),
		       atomic_load(&r->callbacks), atomic_load(&r->seg_reads));
		if (!atomic_load(&r->reads) || !atomic_load(&r->renewals) ||
		    !atomic_load(&r->callbacks) || !atomic_load(&r->seg_reads)) {
			printf("reader %d made no progress, or was never broken and renewed\n", i);
			failures++;
		}
	}
	printf("map cycles %lu, read-lock reads %lu, hook cycles %lu, hook callbacks %lu "
	       "(%lu after unhook)\n", atomic_load(&map_cycles), atomic_load(&rd_reads),
	       atomic_load(&hook_cycles), atomic_load(&hook_calls), atomic_load(&stray_calls));
	printf("interface: %lu leases signed, %lu broken, %lu map changes, %lu of them expired "
	       "leases; %lu hook callbacks for %lu writes\n", s.leases_signed, s.leases_broken,
	       s.map_changes, s.lease_expiries, s.hook_callbacks, s.hook_writes);
	printf("guest counter: %u at start, %u at the end\n", start, end);
	if (!atomic_load(&map_cycles) || !atomic_load(&rd_reads) || !atomic_load(&hook_cycles) ||
	    !atomic_load(&hook_calls) || !s.lease_expiries || s.leases_broken == 0 ||
	    start == 0 || end <= start) {
		printf("some worker made no progress\n");
		failures++;
	}
	vm_suspend(&m.vm, VM_EXIT_POWEROFF);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: drv_lease_stress GUEST_BIN SECONDS CPUS\n");
		return 2;
	}
	char err[512];
	config_init(&m.cfg);
	config_set(&m.cfg, "name", "drv-lease-stress");
	config_set(&m.cfg, "memory.size", "64M");
	config_set(&m.cfg, "boot.raw", argv[1]);
	config_set(&m.cfg, "cpus", argv[3]);
	if (getenv("KHYVE_TEST_ALLOW_EMULATED"))
		config_set(&m.cfg, "kvm.allow_emulated", "true");
	if (machine_assemble(&m, err, sizeof(err))) {
		fprintf(stderr, "drv_lease_stress: %s\n", err);
		return 1;
	}
	hold = vmm_drv_hold(&m.vm, on_destroy, NULL, err, sizeof(err));
	if (!hold) {
		fprintf(stderr, "drv_lease_stress: %s\n", err);
		return 1;
	}
	check_hook_rules();
	check_break_under_callback_lock();
	pthread_t c;
	pthread_create(&c, NULL, controller, (void *)(intptr_t)atol(argv[2]));
	int status = vm_run(&m.vm);
	pthread_join(c, NULL);
	machine_disassemble(&m);
	config_free(&m.cfg);
	if (atomic_load(&destroy_calls) != 1) {
		printf("on_destroy was called %d times\n", atomic_load(&destroy_calls));
		failures++;
	}
	unsigned long e = atomic_load(&errors);
	printf("exit status %d, %d failed checks, %lu errors\n", status, failures, e);
	return status == VM_EXIT_POWEROFF && failures == 0 && e == 0 ? 0 : 1;
}
