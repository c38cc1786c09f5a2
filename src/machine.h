/*
 * A machine: the VM plus the devices khyve gives every guest, assembled from
 * a configuration.
 *
 * The order matters: the VM (KVM objects, RAM, irqchip, boot vCPUs) first,
 * then the devices on its buses, then the ACPI tables that describe them,
 * then the guest image and the boot vCPU's entry state, and only then (in
 * vm_run) the vCPU threads. machine_disassemble() undoes whatever part of
 * that was done, in reverse, whether or not assembly finished, so a failed
 * start leaks nothing either.
 */
#ifndef KHYVE_MACHINE_H
#define KHYVE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "pci.h"
#include "vm.h"

struct uart_8250;
struct cpu_hotplug;
struct pci_testdev;
struct pci_emul;

struct machine {
	struct config cfg;         /* filled by the caller, owned by the caller */
	struct vm vm;
	bool vm_created;
	struct pci_bus pci;
	bool pci_ready;
	struct uart_8250 *com[2];
	struct cpu_hotplug *hotplug;   /* vCPU hot-add (cpu_hotplug.h) */
	struct pci_testdev *testdev;   /* only with pci.testdev (pci_testdev.h) */
	/* -s devices (pci.0.SLOT.0.device), by slot: the emulation and its device. */
	const struct pci_emul *slot_emul[PCI_SLOTS];
	void *slot_dev[PCI_SLOTS];
};

/* 0, or -1 with a one-line reason; call machine_disassemble() either way. */
int machine_assemble(struct machine *m, char *err, size_t errlen);
void machine_disassemble(struct machine *m);

#endif
