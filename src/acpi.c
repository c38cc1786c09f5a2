/*
 * Building the guest's ACPI tables (see acpi.h for what they describe and
 * the contract with the device model).
 *
 * Theory. Each table is first built in host memory, with its final size known
 * before any guest address is chosen: the DSDT through the AML builder
 * (aml.c), the others as fixed-layout byte arrays. Then the tables are laid
 * out back to back (16-byte aligned) in the caller's window, the pointers
 * between them filled in, the checksums computed last, and the whole set
 * copied into guest memory in one piece, so a failure leaves guest memory
 * untouched.
 *
 * Choices a reader may wonder about:
 *   - Hardware-reduced ACPI (FADT flag HW_REDUCED_ACPI): the OS then needs no
 *     PM1/GPE blocks, no SCI and no FACS, and powers off through the FADT's
 *     SLEEP_CONTROL_REG. Linux also stops driving the 8259 and the PIT in
 *     this mode (it uses the local APIC timer), which is what we want.
 *   - Only 64-bit pointers: the RSDP's RsdtAddress and the FADT's 32-bit
 *     FIRMWARE_CTRL/DSDT fields are 0; everything goes through the XSDT and
 *     X_DSDT, which every ACPI 2.0+ OS uses, so there is one path to test.
 *   - Table revisions are those of ACPI 6.3, the first with the MADT's
 *     "Online Capable" flag that lets Linux count not-yet-present vCPUs as
 *     hot-pluggable: MADT revision 5, FADT 6.3, RSDP 2, DSDT 2 (64-bit AML
 *     integers).
 *   - MADT PCAT_COMPAT is set: KVM's in-kernel irqchip really contains a
 *     dual 8259, and the flag tells an OS that it exists and must be masked
 *     when it uses the I/O APIC (bhyve and QEMU set it for the same reason).
 *   - No interrupt source override for IRQ 9: hardware-reduced ACPI has no
 *     SCI, so IRQ 9 stays an ordinary ISA edge interrupt.
 *   - The root bridge has _HID/_CID but no _ADR: ACPI says a device has one
 *     or the other (iasl warns about both), and Linux identifies the root
 *     bridge by _SEG/_BBN/_CRS.
 *   - CPU hot-add without GPEs: hardware-reduced ACPI has no GPE blocks, so
 *     the event arrives as a Generic Event Device's interrupt (ACPI 6.5,
 *     5.6.9), whose _EVT runs \_SB.CSCN, the scan: for every vCPU with an
 *     insert event pending in the hotplug controller, Notify (Cxxx, 1)
 *     ("device check": the OS re-reads _STA and adds the processor), then
 *     clear the event. This is QEMU's CPU hotplug AML reduced to inserts,
 *     delivered the way Cloud Hypervisor delivers it.
 */
#include "acpi.h"
#include "errmsg.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "cpu_hotplug.h"   /* the hotplug controller's register layout */

#define ACPI_HEADER_LEN      36
#define ACPI_CREATOR_ID      "KHYV"
#define ACPI_CREATOR_REV     1
#define ACPI_OEM_REVISION    1
#define ACPI_TABLE_ALIGN     16

/* RSDP (ACPI 6.5, 5.2.5.3). */
#define RSDP_LEN             36
#define RSDP_V1_LEN          20   /* bytes covered by the first checksum */
#define RSDP_REVISION        2

/* FADT (ACPI 6.5, 5.2.9), revision 6 minor 3: 276 bytes. */
#define FADT_LEN             276
#define FADT_REVISION        6
#define FADT_MINOR_VERSION   3
#define FADT_OFF_PM_PROFILE  45
#define FADT_OFF_IAPC_BOOT_ARCH 109
#define FADT_OFF_FLAGS       112
#define FADT_OFF_RESET_REG   116
#define FADT_OFF_RESET_VALUE 128
#define FADT_OFF_MINOR_VERSION 131
#define FADT_OFF_X_DSDT      140
#define FADT_OFF_SLEEP_CONTROL 244
#define FADT_OFF_SLEEP_STATUS  256
#define FADT_OFF_HYPERVISOR_ID 268

/* FADT Flags. */
#define FADT_F_WBINVD          (1u << 0)   /* required of every modern system */
#define FADT_F_PWR_BUTTON      (1u << 4)   /* no fixed-feature power button */
#define FADT_F_SLP_BUTTON      (1u << 5)   /* no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP   (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)

/* FADT IAPC_BOOT_ARCH. No 8042 bit: khyve has no keyboard controller. */
#define IAPC_NO_VGA            (1u << 2)   /* don't probe VGA memory/ports */
#define IAPC_NO_ASPM           (1u << 4)   /* no PCIe links whose power to manage */
#define IAPC_NO_CMOS_RTC       (1u << 5)   /* nothing at ports 0x70/0x71 */

/* Generic Address Structure (ACPI 6.5, 5.2.3.2). */
#define GAS_LEN                12
#define GAS_SPACE_SYSTEM_IO    1
#define GAS_ACCESS_BYTE        1

/* MADT (ACPI 6.5, 5.2.12). */
#define MADT_REVISION          5
#define MADT_FIXED_LEN         44
#define MADT_PCAT_COMPAT       (1u << 0)
#define MADT_LAPIC             0
#define MADT_LAPIC_LEN         8
#define MADT_IOAPIC            1
#define MADT_IOAPIC_LEN        12
#define MADT_ISO               2
#define MADT_ISO_LEN           10
#define MADT_LAPIC_NMI         4
#define MADT_LAPIC_NMI_LEN     6
#define MADT_X2APIC            9
#define MADT_X2APIC_LEN        16
#define MADT_X2APIC_NMI        10
#define MADT_X2APIC_NMI_LEN    12
#define MADT_CPU_ENABLED       (1u << 0)
#define MADT_CPU_ONLINE_CAPABLE (1u << 1)
/* MPS INTI flags: polarity bits 1-0 (01 = active high), trigger bits 3-2 (01 = edge). */
#define MPS_INTI_EDGE_HIGH     0x0005
#define MADT_ALL_CPUS_UID      0xff        /* LAPIC NMI "all processors" */
#define MADT_ALL_X2CPUS_UID    0xffffffffu /* x2APIC NMI "all processors" */
#define LAPIC_LINT1            1           /* where NMI arrives on every PC */
/* APIC IDs from here on need x2APIC structures (ACPI 6.5, 5.2.12.12). */
#define XAPIC_ID_LIMIT         255

#define XSDT_ENTRIES           2           /* FADT, MADT */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* Make bytes [0, len) sum to zero by adjusting the byte at csum. */
static void set_checksum(uint8_t *bytes, size_t len, size_t csum)
{
	uint8_t sum = 0;
	bytes[csum] = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + bytes[i]);
	bytes[csum] = (uint8_t)-sum;
}

/* System description table header; the checksum (byte 9) is set last. */
static void table_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t revision)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = revision;
	t[9] = 0;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put32(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put32(t + 32, ACPI_CREATOR_REV);
}

static void gas_io_byte(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SPACE_SYSTEM_IO;
	g[1] = 8;   /* register bit width */
	g[2] = 0;   /* bit offset */
	g[3] = GAS_ACCESS_BYTE;
	put64(g + 4, port);
}

/* --- MADT -------------------------------------------------------------- */

static bool cpu_uses_x2apic(const struct topology *t, uint32_t vcpu)
{
	/* The xAPIC structure has 8-bit APIC ID and UID fields, and 0xff means
	 * "all processors" in LAPIC NMI entries, so both must stay below 255.
	 * (APIC IDs never lag behind indices, so the ID test decides; the index
	 * test only states the UID rule.) */
	return topology_apic_id(t, vcpu) >= XAPIC_ID_LIMIT || vcpu >= XAPIC_ID_LIMIT;
}

/*
 * The MADT structure for vCPU index vcpu (UID = index) into out; returns its
 * length. Shared by the MADT and the processor devices' _MAT so the two
 * cannot disagree.
 */
static size_t madt_cpu_entry(const struct topology *t, uint32_t vcpu, uint32_t flags,
			     uint8_t out[MADT_X2APIC_LEN])
{
	uint32_t apic_id = topology_apic_id(t, vcpu);
	if (cpu_uses_x2apic(t, vcpu)) {
		out[0] = MADT_X2APIC;
		out[1] = MADT_X2APIC_LEN;
		put16(out + 2, 0);
		put32(out + 4, apic_id);
		put32(out + 8, flags);
		put32(out + 12, vcpu);
		return MADT_X2APIC_LEN;
	}
	out[0] = MADT_LAPIC;
	out[1] = MADT_LAPIC_LEN;
	out[2] = (uint8_t)vcpu;
	out[3] = (uint8_t)apic_id;
	put32(out + 4, flags);
	return MADT_LAPIC_LEN;
}

static uint8_t *build_madt(const struct acpi_config *cfg, size_t *lenp)
{
	const struct topology *t = cfg->topo;
	bool any_x2apic = false;
	size_t len = MADT_FIXED_LEN + MADT_IOAPIC_LEN + MADT_ISO_LEN + MADT_LAPIC_NMI_LEN;
	for (uint32_t i = 0; i < t->maxcpus; i++) {
		bool x2 = cpu_uses_x2apic(t, i);
		any_x2apic |= x2;
		len += x2 ? MADT_X2APIC_LEN : MADT_LAPIC_LEN;
	}
	if (any_x2apic)
		len += MADT_X2APIC_NMI_LEN;

	uint8_t *m = calloc(1, len);
	if (!m)
		return NULL;
	table_header(m, "APIC", (uint32_t)len, MADT_REVISION);
	put32(m + 36, cfg->lapic_addr);
	put32(m + 40, MADT_PCAT_COMPAT);
	uint8_t *p = m + MADT_FIXED_LEN;

	/* Processors in index order, so the guest numbers them as we do. Those
	 * not present at boot are Online Capable: possible, hot-pluggable. */
	for (uint32_t i = 0; i < t->maxcpus; i++) {
		uint32_t flags = i < t->cpus ? MADT_CPU_ENABLED : MADT_CPU_ONLINE_CAPABLE;
		p += madt_cpu_entry(t, i, flags, p);
	}

	p[0] = MADT_IOAPIC;
	p[1] = MADT_IOAPIC_LEN;
	p[2] = cfg->ioapic_id;
	p[3] = 0;
	put32(p + 4, cfg->ioapic_addr);
	put32(p + 8, 0);   /* GSI base: this IOAPIC's pin 0 is GSI 0 */
	p += MADT_IOAPIC_LEN;

	/* The PIT's ISA IRQ 0 arrives at IOAPIC pin 2, as on every PC chipset
	 * (pin 0 carries the 8259's ExtINT). */
	p[0] = MADT_ISO;
	p[1] = MADT_ISO_LEN;
	p[2] = 0;          /* bus: ISA */
	p[3] = 0;          /* source: IRQ 0 */
	put32(p + 4, 2);   /* GSI 2 */
	put16(p + 8, MPS_INTI_EDGE_HIGH);
	p += MADT_ISO_LEN;

	p[0] = MADT_LAPIC_NMI;
	p[1] = MADT_LAPIC_NMI_LEN;
	p[2] = MADT_ALL_CPUS_UID;
	put16(p + 3, MPS_INTI_EDGE_HIGH);
	p[5] = LAPIC_LINT1;
	p += MADT_LAPIC_NMI_LEN;

	if (any_x2apic) {
		p[0] = MADT_X2APIC_NMI;
		p[1] = MADT_X2APIC_NMI_LEN;
		put16(p + 2, MPS_INTI_EDGE_HIGH);
		put32(p + 4, MADT_ALL_X2CPUS_UID);
		p[8] = LAPIC_LINT1;
		p += MADT_X2APIC_NMI_LEN;
	}
	*lenp = len;
	return m;
}

/* --- DSDT -------------------------------------------------------------- */

/*
 * \_S5_: Package { SLP_TYP for PM1a/sleep control, PM1b (none), reserved }.
 * Hardware-reduced Linux powers off by writing (SLP_TYP << 2) | SLP_EN to
 * SLEEP_CONTROL_REG, and offers poweroff at all only if \_S5_ exists.
 */
static void dsdt_sleep_states(struct aml *a, const struct acpi_config *cfg)
{
	aml_name(a, "\\_S5");
	aml_package_begin(a, 4);
	aml_integer(a, cfg->s5_sleep_type);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);
}

/*
 * Device (PCI0): the one PCI root bridge, segment 0, buses 0-255.
 * Its _CRS hands the OS the windows it may assign to devices: all I/O ports
 * except the configuration mechanism at 0xCF8-0xCFF (which the bridge itself
 * consumes), the 32-bit MMIO hole and optionally a 64-bit MMIO window.
 */
static void dsdt_pci_root(struct aml *a, const struct acpi_config *cfg)
{
	aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");   /* PCI Express root bridge ... */
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");   /* ... compatible with a PCI root bridge */
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);

	aml_name(a, "_CRS");
	aml_resource_template_begin(a);
	aml_res_word_bus_number(a, 0x00, 0xff);
	aml_res_io(a, 0x0cf8, 0x0cf8, 0x01, 0x08);
	aml_res_word_io(a, 0x0000, 0x0cf7);
	aml_res_word_io(a, 0x0d00, 0xffff);
	aml_res_dword_memory(a, (uint32_t)cfg->pci_mmio32_base,
			     (uint32_t)(cfg->pci_mmio32_end - 1), false);
	if (cfg->pci_mmio64_end > cfg->pci_mmio64_base)
		aml_res_qword_memory(a, cfg->pci_mmio64_base, cfg->pci_mmio64_end - 1, true);
	aml_end(a);

	/*
	 * _PRT: INTx routing in APIC mode, swizzled across slots so that
	 * single-function devices (which all use INTA) spread over four GSIs.
	 * Entry: { Address = slot << 16 | 0xFFFF (any function), Pin (0 = INTA),
	 * Source = 0 (a GSI, not a link device), Source Index = GSI }.
	 */
	aml_name(a, "_PRT");
	aml_package_begin(a, 32 * 4);
	for (uint32_t slot = 0; slot < 32; slot++) {
		for (uint32_t pin = 0; pin < 4; pin++) {
			aml_package_begin(a, 4);
			aml_integer(a, (slot << 16) | 0xffff);
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, cfg->pci_intx_gsi_base + (slot + pin) % 4);
			aml_end(a);
		}
	}
	aml_end(a);

	/*
	 * _OSC: there is no firmware that could want to keep PCIe hotplug, AER
	 * or PME for itself, so grant whatever the OS asks for by returning its
	 * capabilities buffer unchanged (no error bits).
	 */
	aml_method_begin(a, "_OSC", 4, false);
	aml_return(a);
	aml_arg(a, 3);
	aml_end(a);

	aml_end(a);
}

/* Device (COM1): the 16550 UART at 0x3F8, ISA IRQ 4. */
static void dsdt_com1(struct aml *a)
{
	aml_device_begin(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_integer(a, 1);
	aml_name(a, "_CRS");
	aml_resource_template_begin(a);
	aml_res_io(a, 0x03f8, 0x03f8, 0x01, 0x08);
	aml_res_irq_noflags(a, 4);
	aml_end(a);
	aml_end(a);
}

/*
 * Processor device name for vCPU index vcpu: a bank letter and three hex
 * digits, C000-CFFF for the first 4096, then D000... Sixteen banks cover
 * every index topology.h allows (65535), and no bank name can collide with
 * the other names in \_SB (PCI0, COM1, CPHP, CSCN, CTFY, GED_) because each
 * of those has a character that is not a hex digit after its first letter.
 */
static void cpu_device_name(uint32_t vcpu, char name[5])
{
	static const char banks[] = "CDEFGHIJKLMNOPQR";
	snprintf(name, 5, "%c%03X", banks[(vcpu >> 12) & 0xf], vcpu & 0xfff);
}

/*
 * Device (CPHP): the CPU hotplug controller's registers (cpu_hotplug.h),
 * claimed as motherboard resources so no OS hands them to anything else.
 *
 *     OperationRegion (PRST, SystemIO, port, 8)
 *     Field (PRST, DWordAcc, NoLock, WriteAsZeros) { CSEL, 32 }
 *     Field (PRST, ByteAcc, NoLock, WriteAsZeros) { Offset (4), CPEN, 1, CINS, 1 }
 *     Mutex (CPLK, 0)
 *     Method (CSTA, 1) {            // _STA of vCPU Arg0
 *         Acquire (CPLK, 0xFFFF)
 *         CSEL = Arg0
 *         Local0 = Zero
 *         If (CPEN) { Local0 = 0x0F }
 *         Release (CPLK)
 *         Return (Local0)
 *     }
 *
 * CPLK serializes every use of the selector: the OS may evaluate one
 * processor's _STA while the scan walks the others. WriteAsZeros makes
 * "CINS = One" write exactly 0x02 (clear the insert event, nothing else).
 */
static void dsdt_cpu_hotplug_controller(struct aml *a, const struct acpi_config *cfg)
{
	uint16_t port = cfg->cpu_hotplug_port;
	aml_device_begin(a, "CPHP");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name(a, "_UID");
	aml_string(a, "CPU hotplug");
	aml_name(a, "_CRS");
	aml_resource_template_begin(a);
	aml_res_io(a, port, port, 0x01, CPU_HOTPLUG_PORT_LEN);
	aml_end(a);

	aml_operation_region(a, "PRST", AML_REGION_SYSTEM_IO, port, CPU_HOTPLUG_PORT_LEN);
	aml_field_begin(a, "PRST", AML_FIELD_DWORD_ACC, AML_FIELD_WRITE_AS_ZEROS);
	aml_field_unit(a, "CSEL", 32);
	aml_end(a);
	aml_field_begin(a, "PRST", AML_FIELD_BYTE_ACC, AML_FIELD_WRITE_AS_ZEROS);
	aml_field_unit(a, NULL, 8 * CPU_HOTPLUG_REG_STATUS);
	aml_field_unit(a, "CPEN", 1);   /* CPU_HOTPLUG_PRESENT */
	aml_field_unit(a, "CINS", 1);   /* CPU_HOTPLUG_INSERT */
	aml_end(a);
	aml_mutex(a, "CPLK", 0);

	aml_method_begin(a, "CSTA", 1, false);
	aml_acquire(a, "CPLK", 0xffff);
	aml_store(a);
	aml_arg(a, 0);
	aml_name_string(a, "CSEL");
	aml_store(a);
	aml_integer(a, 0);
	aml_local(a, 0);
	aml_if_begin(a);
	aml_name_string(a, "CPEN");
	aml_store(a);
	aml_integer(a, 0x0f);
	aml_local(a, 0);
	aml_end(a);
	aml_release_mutex(a, "CPLK");
	aml_return(a);
	aml_local(a, 0);
	aml_end(a);

	aml_end(a);
}

/*
 * _STA of a processor device: with a hotplug controller, what its present
 * bit says now (Return (\_SB.CPHP.CSTA (vcpu))): 0x0F (present, enabled,
 * shown, functioning) or 0 (not present yet, but possible per the MADT).
 * Without one, that answer fixed at boot.
 */
static void dsdt_cpu_status(struct aml *a, const struct acpi_config *cfg, uint32_t vcpu)
{
	aml_method_begin(a, "_STA", 0, false);
	aml_return(a);
	if (cfg->cpu_hotplug_port) {
		aml_call(a, "\\_SB.CPHP.CSTA");
		aml_integer(a, vcpu);
	} else {
		aml_integer(a, vcpu < cfg->topo->cpus ? 0x0f : 0x00);
	}
	aml_end(a);
}

/*
 * One Device (Cxxx) with _HID "ACPI0007" per possible vCPU; _UID is the
 * vCPU index, the MADT's ACPI processor UID. _MAT is the processor's MADT
 * structure marked Enabled: the OS evaluates it only for a present
 * processor (and Linux ignores a _MAT that is not Enabled), so a CPU
 * hot-added later needs no other change here.
 */
static void dsdt_cpus(struct aml *a, const struct acpi_config *cfg)
{
	const struct topology *t = cfg->topo;
	for (uint32_t i = 0; i < t->maxcpus; i++) {
		char name[5];
		uint8_t mat[MADT_X2APIC_LEN];
		cpu_device_name(i, name);
		aml_device_begin(a, name);
		aml_name(a, "_HID");
		aml_string(a, "ACPI0007");
		aml_name(a, "_UID");
		aml_integer(a, i);
		dsdt_cpu_status(a, cfg, i);
		aml_name(a, "_MAT");
		aml_buffer(a, mat, madt_cpu_entry(t, i, MADT_CPU_ENABLED, mat));
		aml_end(a);
	}
}

/*
 * The scan, and the event that runs it. Only vCPUs not online at boot can
 * have an insert event, so only they are walked and notified.
 *
 *     Method (CTFY, 2) {            // Notify (processor Arg0, Arg1)
 *         If ((Arg0 == 0x02)) { Notify (\_SB.C002, Arg1) }
 *         ...                       // one If per hot-pluggable vCPU
 *     }
 *     Method (CSCN, 0) {
 *         Acquire (\_SB.CPHP.CPLK, 0xFFFF)
 *         Local0 = cpus
 *         While ((Local0 < maxcpus)) {
 *             \_SB.CPHP.CSEL = Local0
 *             If (\_SB.CPHP.CINS) {
 *                 CTFY (Local0, One)           // device check
 *                 \_SB.CPHP.CINS = One        // clear the event
 *             }
 *             Local0++
 *         }
 *         Release (\_SB.CPHP.CPLK)
 *     }
 *     Device (GED_) {
 *         Name (_HID, "ACPI0013")
 *         Name (_CRS, ResourceTemplate () {
 *             Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { gsi } })
 *         Method (_EVT, 1) { If ((Arg0 == gsi)) { \_SB.CSCN () } }
 *     }
 *
 * Notify takes a name, not a computed index, hence CTFY's chain of Ifs (as
 * in QEMU). The OS handles a Notify after the method that queued it, so
 * holding CPLK across it cannot deadlock with the _STA it leads to; and the
 * event is cleared after the Notify is queued, so an event is never lost:
 * the interrupt stays asserted until the last one is cleared.
 */
static void dsdt_cpu_hotplug_event(struct aml *a, const struct acpi_config *cfg)
{
	const struct topology *t = cfg->topo;
	aml_method_begin(a, "CTFY", 2, false);
	for (uint32_t i = t->cpus; i < t->maxcpus; i++) {
		char path[16];
		cpu_device_name(i, path + 5);
		memcpy(path, "\\_SB.", 5);
		aml_if_begin(a);
		aml_lequal(a);
		aml_arg(a, 0);
		aml_integer(a, i);
		aml_notify(a);
		aml_name_string(a, path);
		aml_arg(a, 1);
		aml_end(a);
	}
	aml_end(a);

	aml_method_begin(a, "CSCN", 0, false);
	aml_acquire(a, "\\_SB.CPHP.CPLK", 0xffff);
	aml_store(a);
	aml_integer(a, t->cpus);
	aml_local(a, 0);
	aml_while_begin(a);
	aml_lless(a);
	aml_local(a, 0);
	aml_integer(a, t->maxcpus);
	aml_store(a);
	aml_local(a, 0);
	aml_name_string(a, "\\_SB.CPHP.CSEL");
	aml_if_begin(a);
	aml_name_string(a, "\\_SB.CPHP.CINS");
	aml_call(a, "CTFY");
	aml_local(a, 0);
	aml_integer(a, 1);
	aml_store(a);
	aml_integer(a, 1);
	aml_name_string(a, "\\_SB.CPHP.CINS");
	aml_end(a);
	aml_increment(a);
	aml_local(a, 0);
	aml_end(a);
	aml_release_mutex(a, "\\_SB.CPHP.CPLK");
	aml_end(a);

	aml_device_begin(a, "GED_");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_CRS");
	aml_resource_template_begin(a);
	aml_res_interrupt(a, cfg->cpu_hotplug_gsi, true, false, false);
	aml_end(a);
	aml_method_begin(a, "_EVT", 1, false);
	aml_if_begin(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_integer(a, cfg->cpu_hotplug_gsi);
	aml_call(a, "\\_SB.CSCN");
	aml_end(a);
	aml_end(a);
	aml_end(a);
}

static int build_dsdt(const struct acpi_config *cfg, struct aml *a, char *err,
		      size_t errlen)
{
	uint8_t header[ACPI_HEADER_LEN] = { 0 };
	aml_raw(a, header, sizeof(header));   /* filled in once the length is known */
	dsdt_sleep_states(a, cfg);
	aml_scope_begin(a, "\\_SB");
	dsdt_pci_root(a, cfg);
	dsdt_com1(a);
	/* The controller first: a reader learns CSTA's argument count before the calls. */
	if (cfg->cpu_hotplug_port)
		dsdt_cpu_hotplug_controller(a, cfg);
	dsdt_cpus(a, cfg);
	/* No event device when every possible vCPU is online from the start. */
	if (cfg->cpu_hotplug_port && cfg->topo->cpus < cfg->topo->maxcpus)
		dsdt_cpu_hotplug_event(a, cfg);
	aml_end(a);
	if (aml_check(a, err, errlen))
		return -1;
	table_header(a->code, "DSDT", (uint32_t)a->len, 2);
	return 0;
}

/* --- FADT, XSDT, RSDP -------------------------------------------------- */

static void build_fadt(const struct acpi_config *cfg, uint8_t f[FADT_LEN], uint64_t dsdt_gpa)
{
	memset(f, 0, FADT_LEN);
	table_header(f, "FACP", FADT_LEN, FADT_REVISION);
	/* FIRMWARE_CTRL, DSDT (32-bit), SCI_INT, SMI_CMD, every PM1/PM2/PM
	 * timer/GPE block and their X_ forms stay 0: hardware-reduced. */
	f[FADT_OFF_PM_PROFILE] = 0;   /* Unspecified: a VM is no particular form factor */
	put16(f + FADT_OFF_IAPC_BOOT_ARCH, IAPC_NO_VGA | IAPC_NO_ASPM | IAPC_NO_CMOS_RTC);
	put32(f + FADT_OFF_FLAGS, FADT_F_WBINVD | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
				  FADT_F_RESET_REG_SUP | FADT_F_HW_REDUCED_ACPI);
	gas_io_byte(f + FADT_OFF_RESET_REG, cfg->reset_port);
	f[FADT_OFF_RESET_VALUE] = cfg->reset_value;
	f[FADT_OFF_MINOR_VERSION] = FADT_MINOR_VERSION;
	put64(f + FADT_OFF_X_DSDT, dsdt_gpa);
	gas_io_byte(f + FADT_OFF_SLEEP_CONTROL, cfg->sleep_ctl_port);
	gas_io_byte(f + FADT_OFF_SLEEP_STATUS, cfg->sleep_ctl_port);
	memcpy(f + FADT_OFF_HYPERVISOR_ID, "KHYVE\0\0\0", 8);
	set_checksum(f, FADT_LEN, 9);
}

static int check_config(const struct acpi_config *cfg, char *err, size_t errlen)
{
	const struct topology *t = cfg->topo;
	if (!t || t->maxcpus == 0 || t->cpus == 0 || t->cpus > t->maxcpus)
		return fail_with(err, errlen, "acpi: need 1 <= cpus <= maxcpus");
	if (t->maxcpus > 0x10000)
		return fail_with(err, errlen, "acpi: maxcpus=%u is more than processor device "
			    "names allow (65536)", t->maxcpus);
	if (cfg->s5_sleep_type > 7)
		return fail_with(err, errlen, "acpi: s5_sleep_type %u does not fit SLP_TYP (0-7)",
			    cfg->s5_sleep_type);
	if (cfg->sleep_ctl_port == 0 || cfg->reset_port == 0)
		return fail_with(err, errlen, "acpi: sleep control and reset ports must be non-zero "
			    "(an OS treats 0 as 'not implemented')");
	if (cfg->ioapic_gsis == 0 || cfg->pci_intx_gsi_base + 4u > cfg->ioapic_gsis)
		return fail_with(err, errlen, "acpi: PCI INTx GSIs %u-%u are not IOAPIC pins (0-%d)",
			    cfg->pci_intx_gsi_base, cfg->pci_intx_gsi_base + 3,
			    (int)cfg->ioapic_gsis - 1);
	if (cfg->pci_mmio32_base >= cfg->pci_mmio32_end ||
	    cfg->pci_mmio32_end > 0x100000000ULL)
		return fail_with(err, errlen, "acpi: PCI 32-bit MMIO window [0x%llx, 0x%llx) is "
			    "empty or above 4 GiB", (unsigned long long)cfg->pci_mmio32_base,
			    (unsigned long long)cfg->pci_mmio32_end);
	if (cfg->cpu_hotplug_port &&
	    (cfg->cpu_hotplug_gsi >= cfg->ioapic_gsis ||
	     (cfg->cpu_hotplug_gsi >= cfg->pci_intx_gsi_base &&
	      cfg->cpu_hotplug_gsi < cfg->pci_intx_gsi_base + 4u)))
		return fail_with(err, errlen, "acpi: CPU hotplug GSI %u is not a free IOAPIC pin "
			    "(0-%d, PCI INTx uses %u-%u)", cfg->cpu_hotplug_gsi,
			    (int)cfg->ioapic_gsis - 1, cfg->pci_intx_gsi_base,
			    cfg->pci_intx_gsi_base + 3);
	if (cfg->cpu_hotplug_port &&
	    (uint32_t)cfg->cpu_hotplug_port + CPU_HOTPLUG_PORT_LEN > 0x10000)
		return fail_with(err, errlen, "acpi: CPU hotplug ports 0x%x+%u run past 0xffff",
			    cfg->cpu_hotplug_port, CPU_HOTPLUG_PORT_LEN);
	if ((cfg->pci_mmio64_base || cfg->pci_mmio64_end) &&
	    cfg->pci_mmio64_base >= cfg->pci_mmio64_end)
		return fail_with(err, errlen, "acpi: PCI 64-bit MMIO window [0x%llx, 0x%llx) is "
			    "empty", (unsigned long long)cfg->pci_mmio64_base,
			    (unsigned long long)cfg->pci_mmio64_end);
	return 0;
}

static size_t align_up(size_t v) { return (v + ACPI_TABLE_ALIGN - 1) & ~(size_t)(ACPI_TABLE_ALIGN - 1); }

int acpi_build_sized(const struct acpi_config *cfg, const struct memmap *mem,
		     uint64_t rsdp_gpa, uint64_t tables_gpa, uint64_t tables_end,
		     size_t *used, char *err, size_t errlen)
{
	if (check_config(cfg, err, errlen))
		return -1;
	if (tables_end <= tables_gpa)
		return fail_with(err, errlen, "acpi: empty table window [0x%llx, 0x%llx)",
			    (unsigned long long)tables_gpa, (unsigned long long)tables_end);

	int ret = -1;
	struct aml dsdt;
	aml_init(&dsdt);
	size_t madt_len = 0;
	uint8_t *madt = build_madt(cfg, &madt_len);
	uint8_t *image = NULL;
	if (!madt) {
		fail_with(err, errlen, "acpi: out of memory building the MADT");
		goto out;
	}
	if (build_dsdt(cfg, &dsdt, err, errlen))
		goto out;

	/* Layout: XSDT, FADT, MADT, DSDT, each 16-byte aligned. */
	size_t xsdt_len = ACPI_HEADER_LEN + 8 * XSDT_ENTRIES;
	size_t xsdt_off = 0;
	size_t fadt_off = align_up(xsdt_off + xsdt_len);
	size_t madt_off = align_up(fadt_off + FADT_LEN);
	size_t dsdt_off = align_up(madt_off + madt_len);
	size_t total = dsdt_off + dsdt.len;
	uint64_t window = tables_end - tables_gpa;
	if (total > window) {
		fail_with(err, errlen, "acpi: tables for %u possible vCPUs need %zu bytes but the "
		     "window [0x%llx, 0x%llx) holds %llu", cfg->topo->maxcpus, total,
		     (unsigned long long)tables_gpa, (unsigned long long)tables_end,
		     (unsigned long long)window);
		goto out;
	}
	if (rsdp_gpa < tables_gpa + total && tables_gpa < rsdp_gpa + RSDP_LEN) {
		fail_with(err, errlen, "acpi: RSDP at 0x%llx overlaps the tables at [0x%llx, 0x%llx)",
		     (unsigned long long)rsdp_gpa, (unsigned long long)tables_gpa,
		     (unsigned long long)(tables_gpa + total));
		goto out;
	}
	uint8_t *guest_tables = memmap_translate(mem, tables_gpa, total);
	uint8_t *guest_rsdp = memmap_translate(mem, rsdp_gpa, RSDP_LEN);
	if (!guest_tables || !guest_rsdp) {
		fail_with(err, errlen, "acpi: %s at 0x%llx is not guest RAM",
		     guest_tables ? "RSDP" : "table window",
		     (unsigned long long)(guest_tables ? rsdp_gpa : tables_gpa));
		goto out;
	}

	image = calloc(1, total);
	if (!image) {
		fail_with(err, errlen, "acpi: out of memory (%zu bytes)", total);
		goto out;
	}

	uint8_t *xsdt = image + xsdt_off;
	table_header(xsdt, "XSDT", (uint32_t)xsdt_len, 1);
	put64(xsdt + ACPI_HEADER_LEN, tables_gpa + fadt_off);
	put64(xsdt + ACPI_HEADER_LEN + 8, tables_gpa + madt_off);
	set_checksum(xsdt, xsdt_len, 9);

	build_fadt(cfg, image + fadt_off, tables_gpa + dsdt_off);

	memcpy(image + madt_off, madt, madt_len);
	set_checksum(image + madt_off, madt_len, 9);

	memcpy(image + dsdt_off, dsdt.code, dsdt.len);
	set_checksum(image + dsdt_off, dsdt.len, 9);

	uint8_t rsdp[RSDP_LEN] = { 0 };
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, ACPI_OEM_ID, 6);
	rsdp[15] = RSDP_REVISION;
	put32(rsdp + 16, 0);          /* RsdtAddress: none, the XSDT is the root */
	put32(rsdp + 20, RSDP_LEN);
	put64(rsdp + 24, tables_gpa + xsdt_off);
	set_checksum(rsdp, RSDP_V1_LEN, 8);
	set_checksum(rsdp, RSDP_LEN, 32);

	memcpy(guest_tables, image, total);
	memcpy(guest_rsdp, rsdp, RSDP_LEN);
	if (used)
		*used = total;
	ret = 0;
out:
	free(image);
	free(madt);
	aml_release(&dsdt);
	return ret;
}

int acpi_build(const struct acpi_config *cfg, const struct memmap *mem,
	       uint64_t rsdp_gpa, uint64_t tables_gpa, uint64_t tables_end,
	       char *err, size_t errlen)
{
	return acpi_build_sized(cfg, mem, rsdp_gpa, tables_gpa, tables_end, NULL, err,
				errlen);
}
