#include "machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acpi.h"
#include "boot_layout.h"
#include "cli.h"
#include "cpu_hotplug.h"
#include "errmsg.h"
#include "linux_boot.h"
#include "pci_emul.h"
#include "pci_hostbridge.h"
#include "pci_testdev.h"
#include "power.h"
#include "raw_boot.h"
#include "size.h"
#include "topology.h"
#include "uart_8250.h"
#include "vcpu.h"
#include "x86_entry.h"

#define DEFAULT_MEMORY "256M"
#define COM1_PORT 0x3f8
#define COM1_IRQ 4
#define COM2_PORT 0x2f8
#define COM2_IRQ 3
#define IOAPIC_GPA 0xfec00000u
#define LAPIC_GPA 0xfee00000u
#define PCI_MMIO32_BASE BOOT_PCI_HOLE_GPA
#define PCI_MMIO32_END 0xfec00000ULL   /* one past the window; the IOAPIC follows */
#define PCI_INTX_GSI_BASE 16

static int build_options(struct machine *m, struct vm_options *o, char *err, size_t errlen)
{
	char topo[256];
	if (cli_topology_string(&m->cfg, topo, sizeof(topo))) {
		snprintf(err, errlen, "-c: topology too long");
		return -1;
	}
	if (topology_parse(topo, &o->topo, err, errlen))
		return -1;
	if (size_parse(config_get_default(&m->cfg, "memory.size", DEFAULT_MEMORY), &o->mem_size,
		       err, errlen))
		return -1;
	o->name = config_get(&m->cfg, "name");
	return config_get_bool(&m->cfg, "kvm.allow_emulated", false, &o->allow_emulated_kvm,
			       err, errlen);
}

static int add_uart(struct machine *m, int idx, uint16_t port, uint32_t irq, char *err,
		    size_t errlen)
{
	char key[32];
	snprintf(key, sizeof(key), "lpc.com%d.path", idx + 1);
	const char *path = config_get(&m->cfg, key);
	int in = -1, out = -1;
	if (path && strcmp(path, "stdio") == 0) {
		in = STDIN_FILENO;
		out = STDOUT_FILENO;
	} else if (path && *path) {
		snprintf(err, errlen, "%s=%s: only 'stdio' is supported", key, path);
		return -1;
	}
	/* The UART exists even unconnected: Linux probes COM1 and expects it. */
	m->com[idx] = uart_8250_create(&m->vm, port, irq, in, out, err, errlen);
	return m->com[idx] ? 0 : -1;
}

/* pci.testdev=true and/or pci.testdev.slot=N: the driver-interface test device. */
static int add_testdev(struct machine *m, char *err, size_t errlen)
{
	const char *slot_s = config_get(&m->cfg, "pci.testdev.slot");
	bool on;
	if (config_get_bool(&m->cfg, "pci.testdev", slot_s != NULL, &on, err, errlen))
		return -1;
	if (!on)
		return 0;
	unsigned long slot = TESTDEV_DEFAULT_SLOT;
	if (slot_s) {
		char *end;
		slot = strtoul(slot_s, &end, 0);
		if (!*slot_s || *end || slot == 0 || slot >= PCI_SLOTS) {
			snprintf(err, errlen, "pci.testdev.slot=%s: expected a slot from 1 to %u",
				 slot_s, PCI_SLOTS - 1);
			return -1;
		}
	}
	m->testdev = pci_testdev_create(&m->vm, &m->pci, (uint8_t)slot, err, errlen);
	return m->testdev ? 0 : -1;
}

/* The emulations -s SLOT,EMULATION can name (pci_emul.h). */
static const struct pci_emul *const pci_emuls[] = {
	&pci_emul_virtio_blk,
	&pci_emul_virtio_net,
};

/* pci.0.SLOT.0.device for slots 1-31; slot 0 can only be the host bridge. */
static int add_pci_slots(struct machine *m, char *err, size_t errlen)
{
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
		char prefix[32], key[48];
		snprintf(prefix, sizeof(prefix), "pci.0.%u.0", slot);
		snprintf(key, sizeof(key), "%s.device", prefix);
		const char *name = config_get(&m->cfg, key);
		if (!name || strcmp(name, "hostbridge") == 0) {
			if (name && slot != 0)
				return fail_with(err, errlen, "%s=hostbridge: the host bridge is "
						 "slot 0", key);
			continue;
		}
		const struct pci_emul *e = NULL;
		for (size_t i = 0; i < sizeof(pci_emuls) / sizeof(*pci_emuls); i++)
			if (strcmp(pci_emuls[i]->name, name) == 0)
				e = pci_emuls[i];
		if (!e)
			return fail_with(err, errlen, "%s=%s: unknown emulation (virtio-net, "
					 "virtio-blk, hostbridge)", key, name);
		if (slot == 0)
			return fail_with(err, errlen, "%s=%s: slot 0 is the host bridge", key, name);
		m->slot_dev[slot] = e->create(&m->vm, &m->pci, (uint8_t)slot, &m->cfg, prefix, err,
					      errlen);
		if (!m->slot_dev[slot])
			return -1;
		m->slot_emul[slot] = e;
	}
	return 0;
}

static int build_acpi(struct machine *m, char *err, size_t errlen)
{
	struct acpi_config a = {
		.topo = &m->vm.topo,
		.sleep_ctl_port = POWER_SLEEP_CTL_PORT,
		.reset_port = POWER_RESET_PORT,
		.reset_value = POWER_RESET_VALUE,
		.s5_sleep_type = POWER_S5_SLEEP_TYPE,
		.ioapic_addr = IOAPIC_GPA,
		.lapic_addr = LAPIC_GPA,
		.ioapic_id = 0,
		.ioapic_gsis = 24,
		.pci_mmio32_base = PCI_MMIO32_BASE,
		.pci_mmio32_end = PCI_MMIO32_END,
		.pci_intx_gsi_base = PCI_INTX_GSI_BASE,
		.cpu_hotplug_port = CPU_HOTPLUG_PORT,
		.cpu_hotplug_gsi = CPU_HOTPLUG_GSI,
	};
	return acpi_build(&a, &m->vm.mem, BOOT_RSDP_GPA, BOOT_ACPI_TABLES_GPA,
			  BOOT_ACPI_TABLES_END, err, errlen);
}

static int load_guest(struct machine *m, char *err, size_t errlen)
{
	const char *raw = config_get(&m->cfg, "boot.raw");
	if (raw)
		return raw_boot_load(&m->vm, raw, config_get_default(&m->cfg, "boot.raw.mode", "long"),
				     err, errlen);
	struct linux_boot_params_in in = {
		.kernel_path = config_get(&m->cfg, "boot.kernel"),
		.initrd_path = config_get(&m->cfg, "boot.initrd"),
		.cmdline = config_get_default(&m->cfg, "boot.cmdline", ""),
	};
	if (!in.kernel_path) {
		snprintf(err, errlen, "nothing to boot: set -o boot.kernel=PATH (see --help)");
		return -1;
	}
	if (config_get_bool(&m->cfg, "boot.classic", false, &in.classic, err, errlen))
		return -1;
	struct linux_boot_entry entry;
	if (linux_boot_load(&in, &m->vm.mem, &entry, err, errlen))
		return -1;
	return x86_enter_long_mode(&m->vm, &m->vm.vcpus[0], entry.rip, entry.rsi, 0, err, errlen);
}

int machine_assemble(struct machine *m, char *err, size_t errlen)
{
	struct vm_options o = { 0 };
	if (build_options(m, &o, err, errlen))
		return -1;
	m->vm_created = true;
	if (vm_create(&m->vm, &o, err, errlen))
		return -1;
	if (power_register(&m->vm, err, errlen))
		return -1;
	if (pci_bus_init(&m->pci, &m->vm, err, errlen))
		return -1;
	m->pci_ready = true;
	if (pci_hostbridge_add(&m->pci, err, errlen) ||
	    add_uart(m, 0, COM1_PORT, COM1_IRQ, err, errlen) ||
	    add_uart(m, 1, COM2_PORT, COM2_IRQ, err, errlen) || add_testdev(m, err, errlen) ||
	    add_pci_slots(m, err, errlen))
		return -1;
	/* Before the ACPI tables, which describe its ports and interrupt. */
	m->hotplug = cpu_hotplug_create(&m->vm, err, errlen);
	if (!m->hotplug)
		return -1;
	if (build_acpi(m, err, errlen))
		return -1;
	return load_guest(m, err, errlen);
}

void machine_disassemble(struct machine *m)
{
	/* vCPU threads first: nothing may touch a device after it is gone. */
	if (m->vm_created)
		vm_destroy(&m->vm);
	for (int i = 0; i < 2; i++)
		uart_8250_destroy(m->com[i]);
	cpu_hotplug_destroy(m->hotplug);
	m->hotplug = NULL;
	pci_testdev_destroy(m->testdev);   /* its driver let go in vm_destroy */
	m->testdev = NULL;
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
		if (m->slot_emul[slot])
			m->slot_emul[slot]->destroy(m->slot_dev[slot]);
		m->slot_emul[slot] = NULL;
		m->slot_dev[slot] = NULL;
	}
	if (m->pci_ready)
		pci_bus_free(&m->pci);
	m->vm_created = m->pci_ready = false;
	m->com[0] = m->com[1] = NULL;
}

