/*
 * The VM object: one KVM virtual machine and everything khyve hangs on it.
 *
 * Lifetime: vm_create() opens KVM, checks the topology against KVM's limit,
 * allocates every per-vCPU structure from topology.maxcpus (there is no
 * compile-time vCPU limit), maps guest RAM and creates the in-kernel irqchip
 * and PIT. Devices then register on the buses, the loader fills memory, and
 * vm_run() starts one thread per boot vCPU and waits until the VM stops.
 * vm_destroy() joins every thread and closes every fd it opened.
 *
 * Stopping: anything (a device, a vCPU exit, a signal to khyve) calls
 * vm_suspend() with a reason. The first reason wins; every vCPU is kicked
 * out of KVM_RUN with immediate_exit + a signal (vcpu.c explains the
 * ordering that makes the kick impossible to lose) and its thread returns.
 * The reason becomes khyve's exit status, with bhyve(8)'s numbering.
 */
#ifndef KHYVE_VM_H
#define KHYVE_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ioport.h"
#include "memmap.h"
#include "mmio.h"
#include "topology.h"

/* bhyve(8) exit status. */
enum vm_exit_status {
	VM_EXIT_REBOOT = 0,
	VM_EXIT_POWEROFF = 1,
	VM_EXIT_HALT = 2,
	VM_EXIT_TRIPLEFAULT = 3,
	VM_EXIT_ERROR = 4,
};

struct vcpu;
struct vmm_drv_vm;

/* Run-time RAM (vm_add_memory): a host mapping vm_destroy frees. */
struct vm_hotmem {
	uint8_t *hva;
	uint64_t len;
};

struct vm_options {
	const char *name;
	struct topology topo;
	uint64_t mem_size;
	bool allow_emulated_kvm;   /* run on kvm_pvm anyway (micro-guests only) */
};

struct vm {
	const char *name;
	int kvm_fd, vm_fd;
	struct topology topo;
	uint32_t kvm_max_vcpus;
	int kvm_run_size;

	uint8_t *ram;              /* the boot RAM mapping; its segments point into it */
	uint64_t ram_size;
	struct memmap mem;         /* under map_lock; segs has seg_cap entries */
	size_t seg_cap;
	uint32_t max_memslots;     /* KVM_CAP_NR_MEMSLOTS */
	struct vm_hotmem *hotmem;  /* under map_lock: vm_add_memory's mappings */
	size_t nhotmem;

	struct kvm_cpuid2 *supported_cpuid;
	bool cpuid_arch_caps_msr, cpuid_tsc_deadline;
	char cpu_brand[48];        /* the host CPU's brand string ("" if it has none) */

	struct vcpu *vcpus;        /* topo.maxcpus entries */
	struct ioport_bus io;
	struct mmio_bus mmio;      /* BARs and other MMIO regions (mmio.h) */
	struct vmm_drv_vm *drv;    /* the driver interface (vmm_drv.h) */

	/* The locking model: see the theory statement in vm_lock.c. */
	pthread_rwlock_t map_lock; /* memory map and device set */
	pthread_mutex_t lockall_mutex;
	bool paused;               /* under lockall_mutex */
	bool running;              /* under lockall_mutex: vm_run started the threads */
	uint32_t lockall_frozen;   /* under lockall_mutex: vCPUs vm_lock_all froze */
	atomic_uint online_vcpus;  /* vCPUs created in KVM: 0..online-1 (boot + hot-added) */

	/* Stop protocol. */
	atomic_int suspended;      /* 0 = running, else 1 + enum vm_exit_status */
	int stop_eventfd;          /* readable once suspended */
	char error[256];           /* why, when the status is VM_EXIT_ERROR */
};

/* 0, or -1 with a one-line reason in err. */
int vm_create(struct vm *vm, const struct vm_options *opt, char *err, size_t errlen);

/* Start the boot vCPUs, wait for the VM to stop, join all vCPU threads. */
enum vm_exit_status vm_run(struct vm *vm);

/* Stop the VM with a status; the first caller's status sticks. */
void vm_suspend(struct vm *vm, enum vm_exit_status status);
/* vm_suspend(VM_EXIT_ERROR) recording a one-line reason. */
void vm_fail(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void vm_destroy(struct vm *vm);

/*
 * Memory map changes, the writer side of the map lock: map host memory
 * [hva, hva+len) at guest-physical gpa as a new segment, or remove the
 * segment that starts at gpa. Overlaps, misalignment and running out of KVM
 * memory slots are refused with a reason.
 */
int vm_mem_map(struct vm *vm, uint64_t gpa, uint64_t len, void *hva, char *err,
	       size_t errlen);
int vm_mem_unmap(struct vm *vm, uint64_t gpa, char *err, size_t errlen);

/*
 * Memory hot-add: map size bytes (a multiple of 2 MiB, 2 MiB to 64 GiB) of
 * new anonymous RAM at the first 1 GiB-aligned guest-physical address at or
 * above max(4 GiB, top of RAM) that overlaps nothing; *gpa_out is where.
 * A map change like any other: drivers' leases are broken and renewed. The
 * guest is not told (no ACPI memory device yet). vm_destroy frees it.
 */
int vm_add_memory(struct vm *vm, uint64_t size, uint64_t *gpa_out, char *err, size_t errlen);

/* Pause: every vCPU frozen until vm_resume. -1 if already paused / not paused. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);

/*
 * Bring the next vCPU online (index online_vcpus, up to maxcpus): create it
 * in KVM under lock-all and start its thread (or let vm_run() start it, if
 * the VM is not running yet); it waits in KVM for INIT/SIPI from the guest.
 * Returns the new vCPU's index, or -1 with a reason.
 */
int vm_add_vcpu(struct vm *vm, char *err, size_t errlen);

/* Assert (level=1) or deassert an interrupt line of the in-kernel irqchip. */
void vm_irq_line(struct vm *vm, uint32_t gsi, int level);

#endif
