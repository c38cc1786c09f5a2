#include "vm.h"
#include "errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "boot_layout.h"
#include "vcpu.h"
#include "vm_lock.h"
#include "vmm_drv.h"

/* KVM needs three pages for the TSS (VMX real-mode emulation) and one for
 * the identity map; both must be outside RAM and below 4 GiB. */
#define KVM_TSS_GPA          0xfffbd000ULL
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ULL

#define MSR_IA32_ARCH_CAPABILITIES 0x10a

static bool kvm_is_emulating_only(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0 &&
	       access("/sys/module/kvm_intel", F_OK) != 0 &&
	       access("/sys/module/kvm_amd", F_OK) != 0;
}

static struct kvm_cpuid2 *get_supported_cpuid(int kvm_fd)
{
	for (uint32_t n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

/*
 * Does KVM let a guest read MSR 0x10a? Some KVMs advertise the CPUID bit but
 * fail the MSR, and a guest that trusts the bit then takes a #GP at boot.
 */
static bool arch_capabilities_msr_works(int kvm_fd)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = MSR_IA32_ARCH_CAPABILITIES };
	return ioctl(kvm_fd, KVM_GET_MSRS, &m) == 1;
}

/* The host's CPUID leaf (GCC's <cpuid.h> is shadowed by ours). */
static void host_cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(0));
}

/* The host CPU's brand string (CPUID 0x80000002-4), for cpuid.c; "" if none. */
static void host_brand_string(char brand[48])
{
	uint32_t r[4];
	memset(brand, 0, 48);
	host_cpuid(0x80000000u, r);
	if (r[0] < 0x80000004u)
		return;
	for (uint32_t i = 0; i < 3; i++) {
		host_cpuid(0x80000002u + i, r);
		memcpy(brand + 16 * i, r, 16);
	}
}

/*
 * Anonymous host memory for guest RAM, 2 MiB-aligned. NORESERVE: guest RAM
 * is committed as the guest touches it, so a large -m costs nothing until
 * used. The mapping is 2 MiB-aligned (map 2 MiB more, trim both ends), as
 * QEMU does: KVM can use a huge stage-2 page only where guest-physical and
 * host-virtual addresses are congruent modulo 2 MiB. Measured in the
 * testbox: 15,898 4 KiB stage-2 faults and no huge mappings for a 1-vCPU
 * boot unaligned, and 18% less guest time to /init with 2 vCPUs aligned.
 * NULL with a reason.
 */
static uint8_t *alloc_guest_ram(uint64_t size, char *err, size_t errlen)
{
	const uint64_t align = 2ULL << 20;
	uint8_t *raw = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		fail_with(err, errlen, "cannot map %llu MiB of guest memory: %s",
			  (unsigned long long)(size >> 20), strerror(errno));
		return NULL;
	}
	uint8_t *aligned = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (aligned > raw)
		munmap(raw, (size_t)(aligned - raw));
	if (raw + size + align > aligned + size)
		munmap(aligned + size, (size_t)(raw + size + align - (aligned + size)));
	madvise(aligned, size, MADV_HUGEPAGE);
	return aligned;
}

static int map_memory(struct vm *vm, uint64_t size, char *err, size_t errlen)
{
	if (size < 2 * BOOT_HIGH_RAM_GPA)
		return fail_with(err, errlen, "memory size %llu KiB is too small (at least 2 MiB)",
			    (unsigned long long)(size >> 10));
	vm->ram = alloc_guest_ram(size, err, errlen);
	if (!vm->ram)
		return -1;
	vm->ram_size = size;

	/* RAM that would sit in the 32-bit PCI hole moves above 4 GiB. */
	uint64_t low = size < BOOT_PCI_HOLE_GPA ? size : BOOT_PCI_HOLE_GPA;
	if (vm_mem_map(vm, 0, low, vm->ram, err, errlen))
		return -1;
	if (size > low && vm_mem_map(vm, BOOT_PCI_HOLE_END, size - low, vm->ram + low, err, errlen))
		return -1;
	return 0;
}

static int set_memslot(struct vm *vm, const struct mem_segment *seg, uint64_t len,
		       char *err, size_t errlen)
{
	struct kvm_userspace_memory_region r = {
		.slot = seg->slot,
		.guest_phys_addr = seg->gpa,
		.memory_size = len,   /* 0 deletes the slot */
		.userspace_addr = (uint64_t)(uintptr_t)seg->hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION slot %u at 0x%llx: %s", seg->slot,
			 (unsigned long long)seg->gpa, strerror(errno));
		return -1;
	}
	return 0;
}

/* vm_mem_map's work, the map write lock held. */
static int mem_map_locked(struct vm *vm, uint64_t gpa, uint64_t len, void *hva, char *err,
			  size_t errlen)
{
	if (len == 0 || (gpa | len | (uintptr_t)hva) & 0xfff || gpa + len < gpa)
		return fail_with(err, errlen, "memory segment 0x%llx+0x%llx: not page-aligned or empty",
			    (unsigned long long)gpa, (unsigned long long)len);
	struct memmap *m = &vm->mem;
	uint32_t slot = 0;
	for (size_t i = 0; i < m->nsegs; i++) {
		const struct mem_segment *s = &m->segs[i];
		if (gpa < s->gpa + s->len && s->gpa < gpa + len)
			return fail_with(err, errlen, "memory segment 0x%llx+0x%llx overlaps 0x%llx+0x%llx",
				    (unsigned long long)gpa, (unsigned long long)len,
				    (unsigned long long)s->gpa, (unsigned long long)s->len);
	}
	/* The lowest free slot: slots are few (KVM_CAP_NR_MEMSLOTS), reuse them. */
	for (bool used = true; used; slot += used) {
		used = false;
		for (size_t i = 0; i < m->nsegs; i++)
			used |= m->segs[i].slot == slot;
	}
	if (slot >= vm->max_memslots)
		return fail_with(err, errlen, "no free KVM memory slot (KVM offers %u)",
			    vm->max_memslots);
	if (m->nsegs == vm->seg_cap) {
		size_t cap = vm->seg_cap ? vm->seg_cap * 2 : 4;
		struct mem_segment *ns = realloc(m->segs, cap * sizeof(*ns));
		if (!ns)
			return fail_with(err, errlen, "out of memory for the memory map");
		m->segs = ns;
		vm->seg_cap = cap;
	}
	struct mem_segment seg = { gpa, len, hva, slot };
	if (set_memslot(vm, &seg, len, err, errlen))
		return -1;
	m->segs[m->nsegs++] = seg;
	return 0;
}

int vm_mem_map(struct vm *vm, uint64_t gpa, uint64_t len, void *hva, char *err,
	       size_t errlen)
{
	vm_map_wrlock(vm);
	int r = mem_map_locked(vm, gpa, len, hva, err, errlen);
	vm_map_wrunlock(vm);
	return r;
}

int vm_mem_unmap(struct vm *vm, uint64_t gpa, char *err, size_t errlen)
{
	int r = -1;
	vm_map_wrlock(vm);
	struct memmap *m = &vm->mem;
	size_t i = 0;
	while (i < m->nsegs && m->segs[i].gpa != gpa)
		i++;
	if (i == m->nsegs)
		fail_with(err, errlen, "no memory segment starts at 0x%llx", (unsigned long long)gpa);
	else if (set_memslot(vm, &m->segs[i], 0, err, errlen) == 0) {
		m->segs[i] = m->segs[--m->nsegs];
		r = 0;
	}
	vm_map_wrunlock(vm);
	return r;
}

/*
 * Memory hot-add, its first step: a real change of the memory map under a
 * running guest, so that everything that translates guest addresses --
 * leases of accelerated drivers above all -- has to survive one. The guest
 * is not told: there is no ACPI memory device yet, so it never uses the new
 * RAM (and a guest that probes it anyway just finds RAM there).
 *
 * Where: above everything, at the first 1 GiB boundary at or above both
 * 4 GiB and the top of RAM that no MMIO region claims: 1 GiB so that every
 * add starts where the guest can map it with 1 GiB pages, and no two adds
 * share a boundary region. Below 4 GiB there is no room (the PCI hole).
 */
#define HOTMEM_MIN   (2ULL << 20)    /* also the granule: one huge page */
#define HOTMEM_MAX   (64ULL << 30)
#define HOTMEM_ALIGN (1ULL << 30)

/*
 * The guest's physical-address width as KVM reports it (CPUID 0x80000008,
 * which the guest sees unchanged); x86's architectural 52 if unknown.
 */
static unsigned guest_phys_bits(const struct vm *vm)
{
	const struct kvm_cpuid2 *c = vm->supported_cpuid;
	for (uint32_t i = 0; c && i < c->nent; i++) {
		unsigned bits = c->entries[i].eax & 0xff;
		if (c->entries[i].function == 0x80000008 && bits >= 32 && bits <= 52)
			return bits;
	}
	return 52;
}

int vm_add_memory(struct vm *vm, uint64_t size, uint64_t *gpa_out, char *err, size_t errlen)
{
	if (size < HOTMEM_MIN || size > HOTMEM_MAX)
		return fail_with(err, errlen, "cannot add %llu bytes of memory: the size must be "
			    "2 MiB to 64 GiB", (unsigned long long)size);
	if (size % HOTMEM_MIN)
		return fail_with(err, errlen, "cannot add %llu bytes of memory: the size must be a "
			    "multiple of 2 MiB", (unsigned long long)size);
	if (atomic_load(&vm->suspended))
		return fail_with(err, errlen, "the VM is stopping");
	/* Outside the map lock: it waits for no one, and leases are broken meanwhile. */
	uint8_t *hva = alloc_guest_ram(size, err, errlen);
	if (!hva)
		return -1;

	/* Placement and mapping under one write lock: two adds cannot pick the same place. */
	int r = -1;
	vm_map_wrlock(vm);
	uint64_t top = memmap_ram_top(&vm->mem), gpa = BOOT_PCI_HOLE_END;
	if (top > gpa)
		gpa = (top + HOTMEM_ALIGN - 1) & ~(HOTMEM_ALIGN - 1);
	unsigned bits = guest_phys_bits(vm);
	uint64_t limit = 1ULL << bits;
	/* A 64-bit BAR the guest placed up here is not overwritten. */
	while (gpa <= limit - size && mmio_claimed(&vm->mmio, gpa, size))
		gpa += HOTMEM_ALIGN;
	struct vm_hotmem *h = realloc(vm->hotmem, (vm->nhotmem + 1) * sizeof(*h));
	if (h)
		vm->hotmem = h;
	if (gpa > limit - size)
		fail_with(err, errlen, "no room for %llu MiB of memory above 0x%llx in the guest's "
			  "%u-bit physical address space", (unsigned long long)(size >> 20),
			  (unsigned long long)top, bits);
	else if (!h)
		fail_with(err, errlen, "out of memory for the hot-added memory list");
	else if (mem_map_locked(vm, gpa, size, hva, err, errlen) == 0) {
		vm->hotmem[vm->nhotmem++] = (struct vm_hotmem){ hva, size };
		r = 0;
	}
	if (r && vm->nhotmem == 0) {
		/* Nothing added after all: nothing for vm_destroy to find. */
		free(vm->hotmem);
		vm->hotmem = NULL;
	}
	vm_map_wrunlock(vm);
	if (r) {
		munmap(hva, size);
		return -1;
	}
	if (gpa_out)
		*gpa_out = gpa;
	return 0;
}

static int create_irqchip(struct vm *vm, char *err, size_t errlen)
{
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
		return fail_with(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	uint64_t idmap = KVM_IDENTITY_MAP_GPA;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return fail_with(err, errlen, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail_with(err, errlen, "KVM_CREATE_IRQCHIP (in-kernel LAPIC/IOAPIC/PIC): %s",
			    strerror(errno));
	/* The speaker port 0x61 is answered in the kernel: no exits for it. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return fail_with(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
	return 0;
}

static int enable_x2apic_ids(struct vm *vm, char *err, size_t errlen)
{
	/*
	 * APIC IDs of 255 and above only exist in x2APIC mode, and KVM only
	 * routes them when told to use 32-bit IDs.
	 */
	if (topology_max_apic_id(&vm->topo) < 255)
		return 0;
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X2APIC_API,
		.args[0] = KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK,
	};
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return fail_with(err, errlen, "APIC IDs up to %u need KVM_CAP_X2APIC_API: %s",
			    topology_max_apic_id(&vm->topo), strerror(errno));
	return 0;
}

int vm_create(struct vm *vm, const struct vm_options *opt, char *err, size_t errlen)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_eventfd = -1;
	vm->name = opt->name;
	vm->topo = opt->topo;
	ioport_bus_init(&vm->io);
	mmio_bus_init(&vm->mmio);
	vm_lock_init(vm);

	if (kvm_is_emulating_only() && !opt->allow_emulated_kvm)
		return fail_with(err, errlen,
			    "this host's /dev/kvm is kvm_pvm, which only emulates guest code and "
			    "cannot boot Linux; run khyve in the testbox (make testbox-shell)");
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return fail_with(err, errlen, "cannot open /dev/kvm: %s%s", strerror(errno),
			    errno == ENOENT ? " (no KVM here: use the testbox, make testbox-shell)"
					    : "");
	int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		return fail_with(err, errlen, "KVM API version %d, khyve needs %d", api,
			    KVM_API_VERSION);
	static const struct { long cap; const char *what; } needed[] = {
		{ KVM_CAP_IRQCHIP, "in-kernel irqchip" },
		{ KVM_CAP_PIT2, "in-kernel PIT" },
		{ KVM_CAP_IMMEDIATE_EXIT, "immediate_exit" },
		{ KVM_CAP_EXT_CPUID, "KVM_GET_SUPPORTED_CPUID" },
		{ KVM_CAP_USER_MEMORY, "user memory regions" },
	};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0)
			return fail_with(err, errlen, "this KVM lacks %s", needed[i].what);

	int maxv = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (maxv <= 0)
		maxv = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	vm->kvm_max_vcpus = maxv > 0 ? (uint32_t)maxv : 1;
	if (topology_check_limit(&vm->topo, vm->kvm_max_vcpus, err, errlen))
		return -1;
	int max_id = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID);
	if (max_id > 0 && topology_max_apic_id(&vm->topo) >= (uint32_t)max_id)
		return fail_with(err, errlen, "-c: the topology needs APIC IDs up to %u; KVM allows "
			    "below %d", topology_max_apic_id(&vm->topo), max_id);

	int slots = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	vm->max_memslots = slots > 0 ? (uint32_t)slots : 32;
	vm->kvm_run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->kvm_run_size <= 0)
		return fail_with(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->supported_cpuid = get_supported_cpuid(vm->kvm_fd);
	if (!vm->supported_cpuid)
		return fail_with(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	vm->cpuid_arch_caps_msr = arch_capabilities_msr_works(vm->kvm_fd);
	vm->cpuid_tsc_deadline =
		ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	host_brand_string(vm->cpu_brand);

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return fail_with(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_eventfd < 0)
		return fail_with(err, errlen, "eventfd: %s", strerror(errno));
	/* Before the first map change: map changes expire drivers' leases. */
	if (vmm_drv_vm_init(vm, err, errlen))
		return -1;

	/* Every per-vCPU structure, sized from maxcpus at run time. */
	vm->vcpus = calloc(vm->topo.maxcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return fail_with(err, errlen, "out of memory for %u vCPUs", vm->topo.maxcpus);
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].id = i;
		vm->vcpus[i].apic_id = topology_apic_id(&vm->topo, i);
		vm->vcpus[i].fd = -1;
		vcpu_lock_init(&vm->vcpus[i]);
	}

	if (map_memory(vm, opt->mem_size, err, errlen) || create_irqchip(vm, err, errlen) ||
	    enable_x2apic_ids(vm, err, errlen))
		return -1;
	/* The boot vCPUs exist from the start; the rest are hot-added later. */
	for (uint32_t i = 0; i < vm->topo.cpus; i++) {
		if (vcpu_create(vm, &vm->vcpus[i], err, errlen))
			return -1;
		atomic_fetch_add(&vm->online_vcpus, 1);
	}
	/* One APIC map rebuild with every boot vCPU in it (vcpu.h). */
	return vcpu_lapic_setup(&vm->vcpus[0], err, errlen);
}

void vm_suspend(struct vm *vm, enum vm_exit_status status)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->suspended, &expected, 1 + (int)status))
		return;
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	vm_lock_wake_all(vm);
	uint64_t one = 1;
	if (write(vm->stop_eventfd, &one, sizeof(one)) < 0) {
		/* Cannot happen with a fresh eventfd; the kicks above still stop it. */
	}
}

void vm_fail(struct vm *vm, const char *fmt, ...)
{
	int expected = 0;
	/* Record the reason only if we are the ones who stop the VM. */
	if (atomic_load(&vm->suspended) != 0)
		return;
	char msg[sizeof(vm->error)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&error_lock);
	if (!vm->error[0])
		memcpy(vm->error, msg, sizeof(msg));
	pthread_mutex_unlock(&error_lock);
	(void)expected;
	vm_suspend(vm, VM_EXIT_ERROR);
}

void vm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq);
}

/*
 * The halt monitor (see vcpu.c): once a second, look at every started vCPU
 * that has not exited to userspace since the last look, by freezing it and
 * reading its MP state. If every one is halted with interrupts disabled or
 * was never started, confirm with a second full pass (a vCPU may have sent a
 * SIPI just before halting) and stop the VM with bhyve's "halted" status.
 * A paused VM is left alone: its vCPUs are frozen on purpose.
 */
#define MONITOR_PERIOD_MS 1000

static bool all_vcpus_dead(struct vm *vm, bool only_quiet)
{
	bool all_dead = true, any_dead = false;
	for (uint32_t i = 0; i < vm->topo.maxcpus && all_dead; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (!atomic_load(&v->thread_started))
			continue;
		unsigned long seen = atomic_load(&v->userspace_exits);
		if (only_quiet && seen != v->monitor_seen_exits) {
			v->monitor_seen_exits = seen;
			all_dead = false;
			continue;
		}
		if (!vcpu_freeze(v))
			continue;
		enum vcpu_activity a = vcpu_read_activity(v);
		vcpu_unfreeze(v);
		v->monitor_seen_exits = atomic_load(&v->userspace_exits);
		if (a == VCPU_ACT_DEAD)
			any_dead = true;
		else if (a != VCPU_ACT_PARKED)
			all_dead = false;
	}
	return all_dead && any_dead;
}

static bool vm_is_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->lockall_mutex);
	bool p = vm->paused;
	pthread_mutex_unlock(&vm->lockall_mutex);
	return p;
}

static void *halt_monitor(void *arg)
{
	struct vm *vm = arg;
	prctl(PR_SET_NAME, "halt-monitor");  /* from inside: the sandbox forbids /proc */
	/* The stop eventfd stays readable once written: it ends the wait. */
	struct pollfd stop = { vm->stop_eventfd, POLLIN, 0 };
	while (!atomic_load(&vm->suspended)) {
		if (poll(&stop, 1, MONITOR_PERIOD_MS) != 0)
			continue;
		if (!vm_is_paused(vm) && all_vcpus_dead(vm, true) && all_vcpus_dead(vm, false))
			vm_suspend(vm, VM_EXIT_HALT);
	}
	return NULL;
}

enum vm_exit_status vm_run(struct vm *vm)
{
	char err[256];
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	/* vCPU threads inherit this mask and unblock only their kick signal. */
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	vcpu_kick_signal_init();
	sigdelset(&mask, SIGUSR1);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	/*
	 * Under lockall_mutex, so that a vCPU hot-added meanwhile gets its thread
	 * exactly once: here if it was created before, by vm_add_vcpu() after.
	 */
	pthread_mutex_lock(&vm->lockall_mutex);
	vm->running = true;
	uint32_t n = atomic_load(&vm->online_vcpus);
	for (uint32_t i = 0; i < n; i++) {
		if (vcpu_start_thread(&vm->vcpus[i], err, sizeof(err))) {
			vm_fail(vm, "%s", err);
			break;
		}
	}
	pthread_mutex_unlock(&vm->lockall_mutex);
	/* A stop that raced with thread start-up missed those threads' kicks. */
	if (atomic_load(&vm->suspended))
		for (uint32_t i = 0; i < n; i++)
			vcpu_kick(&vm->vcpus[i]);

	/*
	 * The halt monitor has a thread of its own, so that a freeze it waits
	 * for can never delay this thread's answer to SIGTERM.
	 */
	pthread_t monitor;
	bool monitor_started = pthread_create(&monitor, NULL, halt_monitor, vm) == 0;

	struct pollfd pfd[2] = { { vm->stop_eventfd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
	while (!atomic_load(&vm->suspended)) {
		int r = poll(pfd, sfd >= 0 ? 2 : 1, -1);
		if (r > 0 && sfd >= 0 && (pfd[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				/* The host pulled the plug: as a power-off. */
				vm_suspend(vm, VM_EXIT_POWEROFF);
		}
	}
	if (monitor_started)
		pthread_join(monitor, NULL);
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	if (sfd >= 0)
		close(sfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return (enum vm_exit_status)(atomic_load(&vm->suspended) - 1);
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus)
		for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
			vcpu_kick(&vm->vcpus[i]);
			vcpu_join(&vm->vcpus[i]);
			vcpu_close(&vm->vcpus[i], vm->kvm_run_size);
		}
	/* Drivers let go (hooks, irqfds, leases) while the locks, fds and RAM exist. */
	vmm_drv_vm_destroy(vm);
	if (vm->vcpus) {
		for (uint32_t i = 0; i < vm->topo.maxcpus; i++)
			vcpu_lock_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
		vm_lock_destroy(vm);
	}
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	vm->ram = NULL;
	for (size_t i = 0; i < vm->nhotmem; i++)
		munmap(vm->hotmem[i].hva, vm->hotmem[i].len);
	free(vm->hotmem);
	vm->hotmem = NULL;
	vm->nhotmem = 0;
	free(vm->mem.segs);
	vm->mem.segs = NULL;
	vm->mem.nsegs = vm->seg_cap = 0;
	free(vm->supported_cpuid);
	vm->supported_cpuid = NULL;
	ioport_bus_free(&vm->io);
	mmio_bus_free(&vm->mmio);
	if (vm->stop_eventfd >= 0)
		close(vm->stop_eventfd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->stop_eventfd = vm->vm_fd = vm->kvm_fd = -1;
}

int vm_pause(struct vm *vm)
{
	vm_lock_all(vm);
	if (vm->paused) {
		vm_unlock_all(vm);
		return -1;
	}
	/* Keep lock-all's freezes (resume drops them), release only the mutex. */
	vm->paused = true;
	vm->lockall_frozen = 0;
	pthread_mutex_unlock(&vm->lockall_mutex);
	return 0;
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lockall_mutex);
	int r = -1;
	if (vm->paused) {
		for (uint32_t i = vm->topo.maxcpus; i-- > 0;)
			if (atomic_load(&vm->vcpus[i].created))
				vcpu_unfreeze(&vm->vcpus[i]);
		vm->paused = false;
		r = 0;
	}
	pthread_mutex_unlock(&vm->lockall_mutex);
	return r;
}

int vm_add_vcpu(struct vm *vm, char *err, size_t errlen)
{
	vm_lock_all(vm);
	uint32_t id = atomic_load(&vm->online_vcpus);
	int r = -1;
	if (atomic_load(&vm->suspended)) {
		snprintf(err, errlen, "the VM is stopping");
	} else if (id >= vm->topo.maxcpus) {
		snprintf(err, errlen, "all %u vCPUs (maxcpus) are already online",
			 vm->topo.maxcpus);
	} else {
		/*
		 * Any step may fail (KVM, memory, the thread limit). The vCPU
		 * counts as online only once all have worked, so that the next
		 * add-cpu retries the same index, picking up where this one
		 * stopped (vcpu_create() reuses a vCPU KVM already has).
		 */
		struct vcpu *v = &vm->vcpus[id];
		bool fresh = !atomic_load(&v->created);
		if (vcpu_create(vm, v, err, errlen) == 0) {
			/*
			 * A vCPU added to a paused VM starts paused like the rest.
			 * Once only: from now on it is `created`, and pause and
			 * resume count it in like any other, thread or not.
			 */
			if (fresh && vm->paused) {
				pthread_mutex_lock(&v->lock);
				v->freezers++;
				v->state = VCPU_FROZEN;
				pthread_mutex_unlock(&v->lock);
			}
			/* Before vm_run() the thread is started there, with the rest. */
			if (vcpu_lapic_setup(v, err, errlen) == 0 &&
			    (!vm->running || vcpu_start_thread(v, err, errlen) == 0)) {
				atomic_fetch_add(&vm->online_vcpus, 1);
				r = (int)id;
			}
		}
	}
	vm_unlock_all(vm);
	return r;
}
