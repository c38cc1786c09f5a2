/*
 * vCPU hot-add that an unmodified guest sees: the CPU hotplug controller.
 *
 * Theory. Adding a vCPU has two halves that must not be confused.
 *   1. KVM's half, vm_add_vcpu(): the next vCPU is created in KVM under
 *      lock-all and its thread started; it sits in KVM waiting for INIT/SIPI,
 *      exactly like a boot AP the guest has not started yet. Nothing in the
 *      guest knows about it.
 *   2. The guest's half, this device: the OS learns of a new processor only
 *      through ACPI. The MADT already lists every possible vCPU (those not
 *      online at boot as "Online Capable"), and every processor device in
 *      the DSDT answers _STA from this controller's present bit. Hot-add sets
 *      the vCPU's present bit and its "insert event pending" bit and asserts
 *      the Generic Event Device's interrupt; the GED's _EVT runs \_SB.CSCN,
 *      which walks the vCPUs through the selector, sends Notify (Cxxx,
 *      DeviceCheck) for each pending insert and clears it (write 1 to
 *      clear). Linux then re-evaluates _STA, finds the processor present,
 *      maps its _MAT (APIC ID) to a logical CPU and registers cpuN; onlining
 *      it sends the INIT/SIPI the new vCPU is waiting for.
 * Register layout, ports and GSI: cpu_hotplug.h. The AML: acpi.c.
 *
 * Interrupt. Level-triggered, active-high, asserted exactly while some vCPU
 * has an insert event pending, so an event can never be lost: if it arrives
 * before the guest's GED driver is bound, or while the scan is running past
 * that vCPU, the line is still high when the guest next unmasks it, and the
 * scan runs again. The level is recomputed and set under the controller's
 * lock, so the line and the pending bits cannot disagree even when a hot-add
 * and a guest's clear race.
 *
 * Locking (vm_lock.c's model). The controller's mutex is a device lock: a
 * leaf, held only for register reads/writes and the KVM_IRQ_LINE ioctl
 * (which takes no khyve lock). cpu_hotplug_add() calls vm_add_vcpu() -- which
 * freezes every vCPU -- without holding it, and only then takes it: nobody
 * waits for a vCPU freeze under a device lock. vCPU threads reach the
 * registers through port I/O and take only this mutex. cpu_hotplug_add()
 * refuses to run on a vCPU thread (it would freeze itself); a guest cannot
 * trigger a hot-add anyway, only khyvectl can.
 *
 * Present bits start as "the boot vCPUs"; nothing clears them (there is no
 * hot-remove), so once a vCPU is present to the guest it stays present.
 */
#include "cpu_hotplug.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioport.h"
#include "vcpu.h"
#include "vm.h"

struct cpu_hotplug {
	struct vm *vm;
	uint32_t maxcpus;
	pthread_mutex_t lock;    /* a device lock: everything below */
	uint32_t selector;
	uint8_t *status;         /* maxcpus entries: CPU_HOTPLUG_PRESENT | _INSERT */
	uint32_t pending;        /* vCPUs with CPU_HOTPLUG_INSERT set */
	bool irq_level;          /* what the GED line is set to */
};

/* Set the GED line to match the pending events; called with hp->lock held. */
static void update_irq(struct cpu_hotplug *hp)
{
	bool level = hp->pending > 0;
	if (level == hp->irq_level)
		return;
	hp->irq_level = level;
	vm_irq_line(hp->vm, CPU_HOTPLUG_GSI, level);
}

static uint8_t selected_status(struct cpu_hotplug *hp)
{
	return hp->selector < hp->maxcpus ? hp->status[hp->selector] : 0;
}

/*
 * The register block. The selector is a 32-bit register that the AML
 * accesses as a dword; narrower accesses read or replace the bytes they
 * cover, as on real hardware. The status register is one byte.
 */
static void hotplug_io(void *opaque, uint16_t port, unsigned size, bool is_write,
		       uint32_t *val)
{
	struct cpu_hotplug *hp = opaque;
	unsigned off = port - CPU_HOTPLUG_PORT;
	pthread_mutex_lock(&hp->lock);
	if (off < CPU_HOTPLUG_REG_SEL + 4) {
		unsigned shift = 8 * (off - CPU_HOTPLUG_REG_SEL);
		unsigned width = size > 4 - (off - CPU_HOTPLUG_REG_SEL)
					 ? 4 - (off - CPU_HOTPLUG_REG_SEL) : size;
		uint32_t mask = width == 4 ? 0xffffffffu : ((1u << (8 * width)) - 1) << shift;
		if (is_write)
			hp->selector = (hp->selector & ~mask) | ((*val << shift) & mask);
		else
			*val = (hp->selector & mask) >> shift;
	} else if (off == CPU_HOTPLUG_REG_STATUS) {
		if (is_write) {
			uint8_t w = (uint8_t)*val;
			if ((w & CPU_HOTPLUG_INSERT) && hp->selector < hp->maxcpus &&
			    (hp->status[hp->selector] & CPU_HOTPLUG_INSERT)) {
				hp->status[hp->selector] &= (uint8_t)~CPU_HOTPLUG_INSERT;
				hp->pending--;
				update_irq(hp);
			}
			/* The present bit is read-only: the guest cannot unplug. */
		} else {
			*val = selected_status(hp);
		}
	} else if (!is_write) {
		*val = 0;
	}
	pthread_mutex_unlock(&hp->lock);
}

struct cpu_hotplug *cpu_hotplug_create(struct vm *vm, char *err, size_t errlen)
{
	struct cpu_hotplug *hp = calloc(1, sizeof(*hp));
	uint8_t *status = calloc(vm->topo.maxcpus ? vm->topo.maxcpus : 1, 1);
	if (!hp || !status) {
		free(hp);
		free(status);
		snprintf(err, errlen, "out of memory for the CPU hotplug controller");
		return NULL;
	}
	hp->vm = vm;
	hp->maxcpus = vm->topo.maxcpus;
	hp->status = status;
	for (uint32_t i = 0; i < vm->topo.cpus && i < hp->maxcpus; i++)
		hp->status[i] = CPU_HOTPLUG_PRESENT;
	pthread_mutex_init(&hp->lock, NULL);
	if (ioport_register(&vm->io, CPU_HOTPLUG_PORT, CPU_HOTPLUG_PORT_LEN, "cpu-hotplug",
			    hotplug_io, hp, err, errlen)) {
		cpu_hotplug_destroy(hp);
		return NULL;
	}
	/* The line starts low (KVM's IOAPIC pins do); say so explicitly. */
	vm_irq_line(vm, CPU_HOTPLUG_GSI, 0);
	return hp;
}

void cpu_hotplug_destroy(struct cpu_hotplug *hp)
{
	if (!hp)
		return;
	pthread_mutex_destroy(&hp->lock);
	free(hp->status);
	free(hp);
}

int cpu_hotplug_insert(struct cpu_hotplug *hp, uint32_t vcpu, char *err, size_t errlen)
{
	if (vcpu >= hp->maxcpus) {
		snprintf(err, errlen, "vCPU %u is beyond maxcpus (%u)", vcpu, hp->maxcpus);
		return -1;
	}
	pthread_mutex_lock(&hp->lock);
	if (!(hp->status[vcpu] & CPU_HOTPLUG_INSERT))
		hp->pending++;
	hp->status[vcpu] |= CPU_HOTPLUG_PRESENT | CPU_HOTPLUG_INSERT;
	update_irq(hp);
	pthread_mutex_unlock(&hp->lock);
	return 0;
}

bool cpu_hotplug_irq_asserted(struct cpu_hotplug *hp)
{
	pthread_mutex_lock(&hp->lock);
	bool level = hp->irq_level;
	pthread_mutex_unlock(&hp->lock);
	return level;
}

/* Is the calling thread one of this VM's vCPU threads? */
static bool on_vcpu_thread(struct vm *vm)
{
	pthread_t self = pthread_self();
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		/* self is published before kickable (vcpu.c). */
		if (atomic_load(&v->kickable) && pthread_equal(v->self, self))
			return true;
	}
	return false;
}

int cpu_hotplug_add(struct cpu_hotplug *hp, char *err, size_t errlen)
{
	struct vm *vm = hp->vm;
	if (on_vcpu_thread(vm)) {
		snprintf(err, errlen, "vCPU hot-add from a vCPU thread (it would freeze itself)");
		return -1;
	}
	/*
	 * vm_add_vcpu() takes the index from online_vcpus, which vm_run() raises
	 * as it starts the boot vCPUs: before that is done, the "next" index
	 * would be a boot vCPU's.
	 */
	if (atomic_load(&vm->online_vcpus) < vm->topo.cpus) {
		snprintf(err, errlen, "the VM is still starting its boot vCPUs; try again");
		return -1;
	}
	/*
	 * The new vCPU thread inherits this thread's signal mask and unblocks
	 * only its kick signal. Boot vCPU threads inherit vm_run()'s mask, with
	 * SIGINT/SIGTERM/SIGHUP blocked so that they reach vm_run()'s signalfd;
	 * a caller such as the control thread may not block them, so block
	 * everything while the thread is created.
	 */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int id = vm_add_vcpu(vm, err, errlen);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (id < 0)
		return -1;
	if (cpu_hotplug_insert(hp, (uint32_t)id, err, errlen))
		return -1;
	return id;
}
