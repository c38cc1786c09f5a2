/*
 * ACPI tables for the guest: RSDP -> XSDT -> {FADT -> DSDT, MADT}.
 *
 * khyve's platform is hardware-reduced ACPI (as in Firecracker and Cloud
 * Hypervisor): no PM1 event/control blocks, no SCI, no GPEs, no FACS. What
 * an OS needs from ACPI is then just
 *   - the CPUs and interrupt controllers (MADT, and processor devices in the
 *     DSDT so CPUs can later be hot-added),
 *   - the PCI root bridge with its windows and INTx routing (DSDT \_SB.PCI0),
 *   - the COM1 UART (DSDT \_SB.COM1),
 *   - how to power off (FADT SLEEP_CONTROL_REG + \_S5) and reboot
 *     (FADT RESET_REG).
 *
 * Contract with the device model (what must sit behind the ports named here):
 *   sleep_ctl_port, 8-bit I/O, serving as both SLEEP_CONTROL_REG and
 *   SLEEP_STATUS_REG. A write with SLP_EN (bit 5) set and SLP_TYP (bits 4-2)
 *   equal to s5_sleep_type powers the VM off; Linux writes
 *   (s5_sleep_type << 2) | 0x20. Before that Linux writes 0x80 (WAK_STS,
 *   write-1-to-clear) to the same port: that must be accepted and ignored.
 *   Reads return 0 (no wake status).
 *   reset_port, 8-bit I/O: writing reset_value resets the VM.
 *   PCI INTx: pin P (0=INTA) of device slot S raises IOAPIC pin
 *   pci_intx_gsi_base + ((S + P) % 4), level-triggered, active-low as the
 *   guest programs it (the _PRT entries say so by naming a GSI).
 *   ISA IRQ 0 (the PIT) is declared as arriving at GSI 2 (interrupt source
 *   override), as on real PCs: route KVM's GSI 0 to IOAPIC pin 2 if the PIT
 *   is ever used through the IOAPIC.
 *   cpu_hotplug_port (when non-zero): the CPU hotplug controller's register
 *   block, CPU_HOTPLUG_PORT_LEN ports with the layout of cpu_hotplug.h: a
 *   32-bit selector (a vCPU index) and an 8-bit status of the selected vCPU
 *   (bit 0 present, read-only; bit 1 insert event pending, write 1 to
 *   clear). The GED (\_SB.GED_, only when cpus < maxcpus) interrupt is
 *   cpu_hotplug_gsi, level-triggered, active-high: the device model holds it
 *   asserted while any insert event is pending. Every processor's _STA reads
 *   its present bit, so a vCPU the device model marks present is present to
 *   the OS. With port 0 there is no controller and _STA is fixed at boot.
 *   APIC IDs >= 255 are described by x2APIC structures, as ACPI requires.
 *   Linux accepts those only if the boot vCPU already runs in x2APIC mode
 *   when it parses the MADT (as firmware leaves it on such machines), so
 *   when topology_max_apic_id() >= 255 the vCPUs must start with x2APIC
 *   enabled in IA32_APIC_BASE; otherwise Linux drops those CPUs silently.
 */
#ifndef KHYVE_ACPI_H
#define KHYVE_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "memmap.h"
#include "topology.h"

struct acpi_config {
	const struct topology *topo;   /* maxcpus entries in MADT, only cpus enabled */
	uint16_t sleep_ctl_port;       /* FADT SLEEP_CONTROL_REG / SLEEP_STATUS_REG (I/O, 8-bit) */
	uint16_t reset_port;           /* FADT RESET_REG (I/O, 8-bit) */
	uint8_t  reset_value;
	uint8_t  s5_sleep_type;        /* SLP_TYP in \_S5_ (0-7), what the guest writes */
	uint32_t ioapic_addr;          /* 0xFEC00000 */
	uint32_t lapic_addr;           /* 0xFEE00000 */
	uint8_t  ioapic_id;
	uint32_t ioapic_gsis;          /* IOAPIC pins, GSIs 0..ioapic_gsis-1 (24) */
	/* PCI root bridge windows, [base, end): end is one past the last byte. */
	uint64_t pci_mmio32_base, pci_mmio32_end;   /* below 4 GiB */
	uint64_t pci_mmio64_base, pci_mmio64_end;   /* 0,0 = none */
	uint8_t  pci_intx_gsi_base;    /* INTx of slot S pin P -> GSI base + ((S + P) % 4) */
	uint16_t cpu_hotplug_port;     /* CPU hotplug registers (cpu_hotplug.h); 0 = none */
	uint32_t cpu_hotplug_gsi;      /* the GED's interrupt, an IOAPIC pin */
};

/* Identification in every table header (and the RSDP's OEM ID). */
#define ACPI_OEM_ID        "KHYVE "    /* 6 bytes */
#define ACPI_OEM_TABLE_ID  "KHYVEVM "  /* 8 bytes */

/*
 * Write the RSDP at rsdp_gpa and all other tables in [tables_gpa, tables_end)
 * of guest memory. Returns 0, or -1 with a one-line reason in err (a bad
 * config, tables that do not fit the window, memory that is not RAM).
 */
int acpi_build(const struct acpi_config *cfg, const struct memmap *mem,
	       uint64_t rsdp_gpa, uint64_t tables_gpa, uint64_t tables_end,
	       char *err, size_t errlen);

/* acpi_build() that also stores in *used how much of the window the tables take. */
int acpi_build_sized(const struct acpi_config *cfg, const struct memmap *mem,
		     uint64_t rsdp_gpa, uint64_t tables_gpa, uint64_t tables_end,
		     size_t *used, char *err, size_t errlen);

#endif
