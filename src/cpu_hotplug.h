/*
 * vCPU hot-add through ACPI, so an unmodified guest sees a new CPU appear.
 * (Interface fixed first so the control plane can call it; the
 * implementation and its theory statement are in cpu_hotplug.c.)
 *
 * The one place that says where the hotplug hardware sits:
 *
 *   I/O ports 0x0cd8-0x0cdf, the controller's register block
 *     +0  CPU_HOTPLUG_REG_SEL     32-bit, read/write: selector, a vCPU index
 *     +4  CPU_HOTPLUG_REG_STATUS   8-bit: status of the selected vCPU
 *           bit 0 CPU_HOTPLUG_PRESENT   present (enabled); read-only
 *           bit 1 CPU_HOTPLUG_INSERT    insert event pending; write 1 to clear
 *         A selector at or beyond maxcpus reads status 0. The other ports of
 *         the block read 0 and ignore writes.
 *   IOAPIC pin (GSI) 20, CPU_HOTPLUG_GSI: the Generic Event Device's
 *     interrupt, level-triggered, active-high, asserted exactly while some
 *     vCPU has an insert event pending.
 *
 * Neither collides with COM1/COM2 (0x3f8/0x2f8, IRQ 4/3), the PCI
 * configuration ports (0xcf8-0xcff, 0xcf9 reset), the sleep control port
 * (0x600), the i8042 (0x60/0x64), the PIT (0x40, GSI 2) or PCI INTx (GSI
 * 16-19); ports below 0x1000 are never handed to PCI BARs by Linux, and the
 * DSDT also claims the block as motherboard resources (\_SB.CPHP, PNP0C02).
 * acpi.c builds the AML that drives these registers (see acpi.h).
 */
#ifndef KHYVE_CPU_HOTPLUG_H
#define KHYVE_CPU_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPU_HOTPLUG_PORT        0x0cd8
#define CPU_HOTPLUG_PORT_LEN    8
#define CPU_HOTPLUG_REG_SEL     0
#define CPU_HOTPLUG_REG_STATUS  4
#define CPU_HOTPLUG_PRESENT     0x01
#define CPU_HOTPLUG_INSERT      0x02
#define CPU_HOTPLUG_GSI         20

struct vm;
struct cpu_hotplug;

/* Register the hotplug controller's ports and interrupt on the VM. */
struct cpu_hotplug *cpu_hotplug_create(struct vm *vm, char *err, size_t errlen);
void cpu_hotplug_destroy(struct cpu_hotplug *hp);

/*
 * Bring the next vCPU (index = CPUs online so far) online in KVM and tell
 * the guest through ACPI that it is present. Returns the new vCPU's index,
 * or -1 with a one-line reason (e.g. maxcpus reached). Safe to call from
 * any thread except a vCPU thread.
 */
int cpu_hotplug_add(struct cpu_hotplug *hp, char *err, size_t errlen);

/*
 * The device-model half of cpu_hotplug_add(), for a vCPU that already
 * exists in KVM: mark it present with an insert event pending and assert
 * the GED interrupt. Exposed so the register semantics can be tested
 * without KVM; -1 with a reason if vcpu is not below maxcpus.
 */
int cpu_hotplug_insert(struct cpu_hotplug *hp, uint32_t vcpu, char *err, size_t errlen);

/* Is the GED interrupt asserted now (some insert event pending)? */
bool cpu_hotplug_irq_asserted(struct cpu_hotplug *hp);

#endif
