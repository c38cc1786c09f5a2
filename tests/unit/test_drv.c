/*
 * Unit tests for the pure parts under the driver interface: the KVM GSI
 * routing table (irq_routing.c: construction with KVM's default irqchip
 * routes, GSI allocation, commits only on change, rollback), the MMIO bus
 * (mmio.c) and the MSI-X capability model (pci_msix.c: register semantics,
 * masking, pending bits, function mask, INTx fallback, and what a backend
 * is told, in which order). A VM object with no KVM behind it stands in, as
 * in test_devices.c; deliveries and the INTx line go to test hooks.
 *
 * Then the parts of the interface itself that a VM without running vCPU
 * threads can show, on a real KVM VM (vm_create, one vCPU that the test
 * runs itself, KVM_RUN in this thread): eventfd hooks (the guest's writes
 * count in the caller's eventfd, unhook leaves it open and counting
 * nothing more, re-hooking elsewhere, collisions, release with the hold)
 * and lease segments. On a kvm_pvm host these need
 * KHYVE_TEST_ALLOW_EMULATED=1 (vm_create refuses otherwise); without a
 * usable KVM they skip with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "boot_layout.h"
#include "irq_routing.h"
#include "mmio.h"
#include "pci.h"
#include "pci_msix.h"
#include "topology.h"
#include "vcpu.h"
#include "vm.h"
#include "vmm_drv.h"
#include "x86_entry.h"

/* ---- GSI routing ---- */

static void test_routing_build(void **state)
{
	struct kvm_irq_routing_entry e[64];
	int n = irq_routing_build(NULL, 0, e, 64);
	assert_int_equal(n, IRQ_ROUTING_DEFAULT_ENTRIES);
	assert_int_equal(n, 40);
	/* Every GSI 0-23 to its IOAPIC pin; 0-15 also to the PIC, master then slave. */
	int ioapic = 0, pic = 0;
	for (int i = 0; i < n; i++) {
		assert_int_equal(e[i].type, KVM_IRQ_ROUTING_IRQCHIP);
		if (e[i].u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC) {
			assert_int_equal(e[i].u.irqchip.pin, e[i].gsi);
			assert_true(e[i].gsi < 24);
			ioapic++;
		} else {
			assert_true(e[i].gsi < 16);
			assert_int_equal(e[i].u.irqchip.irqchip,
					 e[i].gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE);
			assert_int_equal(e[i].u.irqchip.pin, e[i].gsi % 8);
			pic++;
		}
	}
	assert_int_equal(ioapic, 24);
	assert_int_equal(pic, 16);

	struct irq_msi_route r[2] = {
		{ 24, 0xfee01000, 0x41 },
		{ 30, 0x12fee00000ULL, 0x4042 },
	};
	n = irq_routing_build(r, 2, e, 64);
	assert_int_equal(n, 42);
	assert_int_equal(e[40].type, KVM_IRQ_ROUTING_MSI);
	assert_int_equal(e[40].gsi, 24);
	assert_int_equal(e[40].u.msi.address_lo, 0xfee01000);
	assert_int_equal(e[40].u.msi.address_hi, 0);
	assert_int_equal(e[40].u.msi.data, 0x41);
	assert_int_equal(e[41].gsi, 30);
	assert_int_equal(e[41].u.msi.address_lo, 0xfee00000);
	assert_int_equal(e[41].u.msi.address_hi, 0x12);   /* extended destination IDs */
	assert_int_equal(e[41].u.msi.data, 0x4042);

	/* An MSI route may not take over an irqchip GSI, nor exceed KVM's limit. */
	struct irq_msi_route bad = { 23, 0xfee00000, 0x41 };
	assert_int_equal(irq_routing_build(&bad, 1, e, 64), -1);
	bad.gsi = IRQ_ROUTING_MAX_GSI;
	assert_int_equal(irq_routing_build(&bad, 1, e, 64), -1);
	/* Room for the defaults and the routes, or nothing. */
	assert_int_equal(irq_routing_build(r, 2, e, 41), -1);
	assert_int_equal(irq_routing_build(NULL, 0, e, 39), -1);
}

struct installs {
	int count, fail_next;
	uint32_t last_nr;
	struct kvm_irq_routing_entry last[64];
};

static int fake_install(void *arg, const struct kvm_irq_routing *t)
{
	struct installs *in = arg;
	if (in->fail_next) {
		in->fail_next = 0;
		return -ENOSPC;
	}
	in->count++;
	in->last_nr = t->nr;
	memcpy(in->last, t->entries, t->nr * sizeof(t->entries[0]));
	return 0;
}

static void test_routing_table(void **state)
{
	struct irq_routing r;
	struct installs in = { 0 };
	char err[256];
	uint32_t g[4];
	irq_routing_init(&r, -1);
	r.install = fake_install;
	r.install_arg = &in;

	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x41, &g[0], err, sizeof(err)), 0);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x42, &g[1], err, sizeof(err)), 0);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x43, &g[2], err, sizeof(err)), 0);
	assert_int_equal(g[0], 24);
	assert_int_equal(g[1], 25);
	assert_int_equal(g[2], 26);
	assert_int_equal(in.count, 3);
	/* Every installed table keeps the 40 default irqchip entries first. */
	assert_int_equal(in.last_nr, 43);
	assert_int_equal(in.last[0].type, KVM_IRQ_ROUTING_IRQCHIP);
	assert_int_equal(in.last[39].type, KVM_IRQ_ROUTING_IRQCHIP);
	assert_int_equal(in.last[42].gsi, 26);

	/* Same message: no new table; another: one. */
	assert_int_equal(irq_routing_set_msi(&r, 25, 0xfee00000, 0x42, err, sizeof(err)), 0);
	assert_int_equal(in.count, 3);
	assert_int_equal(irq_routing_set_msi(&r, 25, 0xfee01000, 0x52, err, sizeof(err)), 0);
	assert_int_equal(in.count, 4);
	assert_int_equal(in.last[41].gsi, 25);
	assert_int_equal(in.last[41].u.msi.data, 0x52);
	assert_int_equal(irq_routing_set_msi(&r, 99, 0, 0, err, sizeof(err)), -1);

	/* A freed GSI is the next one handed out. */
	irq_routing_del_msi(&r, 25);
	assert_int_equal(in.count, 5);
	assert_int_equal(in.last_nr, 42);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x44, &g[3], err, sizeof(err)), 0);
	assert_int_equal(g[3], 25);

	/* KVM refusing a table leaves the old one: no route, and the next add reuses the GSI. */
	in.fail_next = 1;
	uint32_t x = 0;
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x45, &x, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "KVM_SET_GSI_ROUTING"));
	assert_int_equal(r.n, 3);
	in.fail_next = 1;
	assert_int_equal(irq_routing_set_msi(&r, 24, 0xfee00000, 0x99, err, sizeof(err)), -1);
	assert_int_equal(r.routes[0].data, 0x41);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x45, &x, err, sizeof(err)), 0);
	assert_int_equal(x, 27);
	irq_routing_fini(&r);
}

/* ---- MMIO bus ---- */

static uint64_t last_off;
static void region_a(void *o, uint64_t off, unsigned size, bool w, uint64_t *v)
{
	last_off = off;
	if (!w)
		*v = 0x1122334455667788ull;
}

static uint64_t mmio(struct mmio_bus *b, uint64_t gpa, unsigned len, bool w, uint64_t val)
{
	uint8_t data[8];
	memcpy(data, &val, 8);
	mmio_dispatch(b, gpa, len, w, data);
	uint64_t out = 0;
	memcpy(&out, data, len);
	return out;
}

static void test_mmio_bus(void **state)
{
	struct mmio_bus b;
	char err[256];
	int tag1, tag2;
	mmio_bus_init(&b);
	assert_int_equal(mmio_register(&b, 0xc0000000, 0x1000, "a", region_a, &tag1, err,
				       sizeof(err)), 0);
	assert_int_equal(mmio_register(&b, 0xc0002000, 0x1000, "b", region_a, &tag2, err,
				       sizeof(err)), 0);
	assert_int_equal(mmio_register(&b, 0xc0000800, 0x1000, "c", region_a, &tag2, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "overlaps a"));
	assert_int_equal(mmio_register(&b, 0xfffffffffffff000ull, 0x2000, "d", region_a, &tag2,
				       err, sizeof(err)), -1);
	assert_true(mmio_claimed(&b, 0xc0000ffc, 8));
	assert_false(mmio_claimed(&b, 0xc0001000, 0x1000));

	assert_int_equal(mmio(&b, 0xc0000010, 4, false, 0), 0x55667788);
	assert_int_equal(last_off, 0x10);
	assert_int_equal(mmio(&b, 0xc0002ff8, 8, false, 0), 0x1122334455667788ull);
	assert_int_equal(last_off, 0xff8);
	/* Holes and accesses straddling a region's end: all-ones, counted. */
	assert_int_equal(mmio(&b, 0xc0001000, 4, false, 0), 0xffffffff);
	assert_int_equal(mmio(&b, 0xc0000ffe, 4, false, 0), 0xffffffff);
	mmio(&b, 0xc0001000, 2, true, 7);
	assert_int_equal(atomic_load(&b.unclaimed_reads), 2);
	assert_int_equal(atomic_load(&b.unclaimed_writes), 1);

	/* Moving: onto another region is refused and leaves it where it was. */
	assert_int_equal(mmio_move(&b, 0xc0000000, &tag1, 0xc0002800, err, sizeof(err)), -1);
	assert_true(mmio_claimed(&b, 0xc0000000, 1));
	assert_int_equal(mmio_move(&b, 0xc0000000, &tag1, 0xd0000000, err, sizeof(err)), 0);
	assert_false(mmio_claimed(&b, 0xc0000000, 0x1000));
	assert_int_equal(mmio(&b, 0xd0000004, 4, false, 0), 0x55667788);
	/* Only the owner removes its region. */
	assert_int_equal(mmio_unregister(&b, 0xd0000000, &tag2), -1);
	assert_int_equal(mmio_unregister(&b, 0xd0000000, &tag1), 0);
	assert_false(mmio_claimed(&b, 0xd0000000, 0x1000));
	mmio_bus_free(&b);
}

/* ---- MSI-X ---- */

struct sink {
	int delivered;
	uint64_t addr;
	uint32_t data;
	int line, line_changes;
	char log[2048];   /* the backend calls, in order */
};

static void t_deliver(void *arg, uint64_t addr, uint32_t data)
{
	struct sink *s = arg;
	s->delivered++;
	s->addr = addr;
	s->data = data;
}

static void t_line(void *arg, int level)
{
	struct sink *s = arg;
	s->line = level;
	s->line_changes++;
}

static void logcall(struct sink *s, const char *fmt, ...)
{
	size_t n = strlen(s->log);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->log + n, sizeof(s->log) - n, fmt, ap);
	va_end(ap);
}

static bool backend_pending[8];
static void b_update(void *arg, unsigned v, uint64_t addr, uint32_t data, bool masked)
{
	logcall(arg, "v%u:%llx/%x%s ", v, (unsigned long long)addr, data, masked ? "/m" : "");
}
static bool b_pending(void *arg, unsigned v) { return backend_pending[v]; }
static void b_signal(void *arg, unsigned v) { logcall(arg, "sig%u ", v); }
static void b_mode(void *arg, enum pci_irq_mode m)
{
	logcall(arg, "%s ", m == PCI_IRQ_MSIX ? "MSIX" : "INTX");
}
static const struct pci_msix_backend fake_backend = { b_update, b_pending, b_signal, b_mode };

#define CFG(reg) (0x80000000u | 3u << 11 | (reg))
#define CAP 0x40

struct rig {
	struct vm vm;
	struct pci_bus bus;
	struct pci_device *dev;
	struct pci_msix *m;
	struct sink sink;
};

static void rig_cfg_write(struct pci_device *dev, unsigned off, unsigned size, uint32_t val)
{
	pci_msix_cfg_write(dev->opaque, off, size);
}

static void rig_init(struct rig *r)
{
	char err[256];
	memset(r, 0, sizeof(*r));
	r->vm.kvm_fd = r->vm.vm_fd = r->vm.stop_eventfd = -1;
	ioport_bus_init(&r->vm.io);
	assert_int_equal(pci_bus_init(&r->bus, &r->vm, err, sizeof(err)), 0);
	r->dev = pci_device_new("msix-test", 3, 0, 0x1275, 0x7e57, 0xff0000);
	r->m = pci_msix_create(&r->vm, r->dev, CAP, 4, 2, 0, 0x800, 19);
	assert_non_null(r->m);
	r->m->test_deliver = t_deliver;
	r->m->test_line = t_line;
	r->m->test_arg = &r->sink;
	r->dev->opaque = r->m;
	r->dev->cfg_write = rig_cfg_write;
	assert_int_equal(pci_bus_add(&r->bus, r->dev, err, sizeof(err)), 0);
}

static void rig_free(struct rig *r)
{
	pci_msix_destroy(r->m);
	pci_bus_free(&r->bus);
	ioport_bus_free(&r->vm.io);
}

static uint64_t bar(struct rig *r, uint64_t off, unsigned size, bool w, uint64_t val)
{
	assert_true(pci_msix_bar_access(r->m, off, size, w, &val));
	return val;
}

static void ctrl(struct rig *r, uint16_t v)
{
	pci_bus_cfg_write(&r->bus, CFG(CAP), 2, 2, v);
}

static void program(struct rig *r, unsigned v, uint32_t addr, uint32_t data, bool masked)
{
	bar(r, 16 * v, 4, true, addr);
	bar(r, 16 * v + 4, 4, true, 0);
	bar(r, 16 * v + 8, 4, true, data);
	bar(r, 16 * v + 12, 4, true, masked);
}

static void test_msix_registers(void **state)
{
	struct rig r;
	rig_init(&r);
	/* The capability: linked, sized, located; only Enable and Function Mask writable. */
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(0x34), 0, 1), CAP);
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(0x04), 2, 2) & PCI_STATUS_CAP_LIST,
			 PCI_STATUS_CAP_LIST);
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(CAP), 0, 4), 0x0003 << 16 | PCI_CAP_ID_MSIX);
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(CAP + 4), 0, 4), 0x000 | 2);
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(CAP + 8), 0, 4), 0x800 | 2);
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(0x3c), 1, 1), 1);   /* INTA */
	pci_bus_cfg_write(&r.bus, CFG(CAP), 0, 4, 0xffffffff);
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(CAP), 0, 4), 0xc003u << 16 | PCI_CAP_ID_MSIX);
	pci_bus_cfg_write(&r.bus, CFG(CAP + 4), 0, 4, 0xffffffff);
	assert_int_equal(pci_bus_cfg_read(&r.bus, CFG(CAP + 4), 0, 4), 2);
	ctrl(&r, 0);

	/* Table: every vector masked at reset; address bits 1:0 and reserved control bits read 0. */
	for (unsigned v = 0; v < 4; v++)
		assert_int_equal(bar(&r, 16 * v + 12, 4, false, 0), 1);
	bar(&r, 0, 4, true, 0xfee0100f);
	assert_int_equal(bar(&r, 0, 4, false, 0), 0xfee0100c);
	bar(&r, 12, 4, true, 0xfffffffe);
	assert_int_equal(bar(&r, 12, 4, false, 0), 0);
	/* QWORD access, as the spec allows. */
	bar(&r, 16, 8, true, 0x0000000bfee02000ull);
	assert_int_equal(bar(&r, 16, 8, false, 0), 0x0000000bfee02000ull);
	assert_int_equal(bar(&r, 20, 4, false, 0), 0xb);
	/* Other sizes and misaligned accesses: all-ones, ignored. */
	assert_int_equal(bar(&r, 8, 2, false, 0), ~0ull);
	bar(&r, 8, 2, true, 0x1234);
	assert_int_equal(bar(&r, 8, 4, false, 0), 0);
	assert_int_equal(bar(&r, 6, 4, false, 0), ~0ull);
	/* PBA: read-only. Beyond table and PBA: not ours. */
	bar(&r, 0x800, 8, true, ~0ull);
	assert_int_equal(bar(&r, 0x800, 8, false, 0), 0);
	uint64_t v = 0;
	assert_false(pci_msix_bar_access(r.m, 0x40, 4, false, &v));
	assert_false(pci_msix_bar_access(r.m, 0x808, 4, false, &v));
	rig_free(&r);
}

static void test_msix_masking(void **state)
{
	struct rig r;
	rig_init(&r);
	struct sink *s = &r.sink;
	program(&r, 0, 0xfee00000, 0x41, false);
	program(&r, 1, 0xfee00000, 0x42, true);
	ctrl(&r, PCI_MSIX_CTRL_ENABLE);

	/* Unmasked: delivered at once with its message. */
	pci_msix_notify(r.m, 0);
	assert_int_equal(s->delivered, 1);
	assert_int_equal(s->data, 0x41);
	assert_false(pci_msix_pending(r.m, 0));

	/* Masked: pending, not delivered, however many times... */
	pci_msix_notify(r.m, 1);
	pci_msix_notify(r.m, 1);
	pci_msix_notify(r.m, 1);
	assert_int_equal(s->delivered, 1);
	assert_true(pci_msix_pending(r.m, 1));
	assert_int_equal(bar(&r, 0x800, 8, false, 0), 2);
	/* ...reprogrammed while masked: recorded... */
	bar(&r, 16 + 8, 4, true, 0x43);
	assert_int_equal(s->delivered, 1);
	/* ...and on unmask delivered once, with the new message, and the bit clears. */
	bar(&r, 16 + 12, 4, true, 0);
	assert_int_equal(s->delivered, 2);
	assert_int_equal(s->data, 0x43);
	assert_false(pci_msix_pending(r.m, 1));
	bar(&r, 16 + 12, 4, true, 0);
	assert_int_equal(s->delivered, 2);

	/* The function mask masks every vector; clearing it delivers what is pending. */
	ctrl(&r, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	pci_msix_notify(r.m, 0);
	pci_msix_notify(r.m, 1);
	assert_int_equal(s->delivered, 2);
	assert_int_equal(bar(&r, 0x800, 8, false, 0), 3);
	/* Unmasking a vector under the function mask delivers nothing. */
	bar(&r, 12, 4, true, 1);
	bar(&r, 12, 4, true, 0);
	assert_int_equal(s->delivered, 2);
	ctrl(&r, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(s->delivered, 4);
	assert_int_equal(bar(&r, 0x800, 8, false, 0), 0);

	/* A vector masked while the function mask is cleared stays pending. */
	bar(&r, 12, 4, true, 1);
	ctrl(&r, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	pci_msix_notify(r.m, 0);
	ctrl(&r, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(s->delivered, 4);
	assert_true(pci_msix_pending(r.m, 0));
	bar(&r, 12, 4, true, 0);
	assert_int_equal(s->delivered, 5);
	assert_int_equal(s->line_changes, 0);   /* INTx never moved in MSI-X mode */
	rig_free(&r);
}

static void test_msix_intx(void **state)
{
	struct rig r;
	rig_init(&r);
	struct sink *s = &r.sink;
	program(&r, 0, 0xfee00000, 0x41, false);

	/* MSI-X off: the function uses INTx, level-triggered until acknowledged. */
	pci_msix_notify(r.m, 0);
	assert_int_equal(s->delivered, 0);
	assert_int_equal(s->line, 1);
	assert_true(pci_msix_intx_asserted(r.m));
	pci_msix_notify(r.m, 0);
	assert_int_equal(s->line_changes, 1);
	pci_msix_intx_ack(r.m);
	assert_int_equal(s->line, 0);

	/* Interrupt Disable in the command register holds the line down, not the event. */
	pci_bus_cfg_write(&r.bus, CFG(PCI_COMMAND), 0, 2, PCI_COMMAND_INTX_DISABLE);
	pci_msix_notify(r.m, 0);
	assert_int_equal(s->line, 0);
	pci_bus_cfg_write(&r.bus, CFG(PCI_COMMAND), 0, 2, 0);
	assert_int_equal(s->line, 1);

	/* Enabling MSI-X drops INTx; events are messages from then on. */
	ctrl(&r, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(s->line, 0);
	pci_msix_notify(r.m, 0);
	assert_int_equal(s->delivered, 1);
	assert_int_equal(s->line, 0);
	/* ...and disabling it again goes back to INTx. */
	ctrl(&r, 0);
	pci_msix_notify(r.m, 0);
	assert_int_equal(s->delivered, 1);
	assert_int_equal(s->line, 1);
	rig_free(&r);
}

static void test_msix_backend(void **state)
{
	struct rig r;
	rig_init(&r);
	struct sink *s = &r.sink;
	program(&r, 0, 0xfee00000, 0x41, false);
	program(&r, 1, 0xfee00000, 0x42, true);

	/* Binding replays everything: vectors (all masked: MSI-X is off), then the mode. */
	pci_msix_set_backend(r.m, &fake_backend, s);
	assert_string_equal(s->log, "v0:fee00000/41/m v1:fee00000/42/m v2:0/0/m v3:0/0/m INTX ");
	s->log[0] = 0;

	/* Enabling: the mode first, then the vector that may now deliver. */
	ctrl(&r, PCI_MSIX_CTRL_ENABLE);
	assert_string_equal(s->log, "MSIX v0:fee00000/41 ");
	s->log[0] = 0;
	/* Rewriting an unmasked vector's message with the same value: nothing. */
	bar(&r, 8, 4, true, 0x41);
	assert_string_equal(s->log, "");
	/* A masked vector's reprogramming is reported, flagged masked; then its unmask. */
	bar(&r, 16 + 8, 4, true, 0x52);
	assert_string_equal(s->log, "v1:fee00000/52/m ");
	bar(&r, 16 + 12, 4, true, 0);
	assert_string_equal(s->log, "v1:fee00000/52/m v1:fee00000/52 ");
	s->log[0] = 0;

	/* With a backend, events go through it, masked or not (it keeps the pending state). */
	pci_msix_notify(r.m, 0);
	bar(&r, 12, 4, true, 1);
	pci_msix_notify(r.m, 0);
	assert_string_equal(s->log, "sig0 v0:fee00000/41/m sig0 ");
	assert_int_equal(s->delivered, 0);
	s->log[0] = 0;
	/* The PBA shows the backend's pending state of masked vectors only. */
	backend_pending[0] = true;
	backend_pending[1] = true;
	assert_int_equal(bar(&r, 0x800, 8, false, 0), 1);
	backend_pending[0] = backend_pending[1] = false;

	/* Disabling: the vectors masked first, then the mode. */
	ctrl(&r, 0);
	assert_string_equal(s->log, "v1:fee00000/52/m INTX ");
	s->log[0] = 0;
	/* The function mask is a mask like any other. */
	ctrl(&r, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	assert_string_equal(s->log, "MSIX ");
	s->log[0] = 0;
	ctrl(&r, PCI_MSIX_CTRL_ENABLE);
	assert_string_equal(s->log, "v1:fee00000/52 ");

	/* Pending bits the model held before binding go through the backend on unmask. */
	pci_msix_set_backend(r.m, NULL, NULL);
	pci_msix_notify(r.m, 0);   /* vector 0 is masked: the model keeps it */
	assert_true(pci_msix_pending(r.m, 0));
	s->log[0] = 0;
	pci_msix_set_backend(r.m, &fake_backend, s);
	s->log[0] = 0;
	bar(&r, 12, 4, true, 0);
	assert_string_equal(s->log, "v0:fee00000/41 sig0 ");
	assert_false(pci_msix_pending(r.m, 0));
	assert_int_equal(s->delivered, 0);
	rig_free(&r);
}

/* ---- On a KVM VM: eventfd hooks and lease segments ---- */

/*
 * The guest (64-bit, at GUEST_CODE_GPA): forever, read a command block at
 * CMD_GPA -- {u32 port, u32 port writes, u64 gpa, u32 MMIO writes} --
 * write a byte to the port and a dword to gpa that many times, then write
 * EXIT_PORT, which nothing hooks: KVM_RUN returns to the test there, and
 * the next KVM_RUN goes round again with the next command.
 */
#define GUEST_CODE_GPA 0x100000ULL
#define CMD_GPA 0x2000ULL
#define EXIT_PORT 0x511
#define PORT_A 0x510
#define PORT_B 0x520
#define PORT_C 0x530
#define GPA_A 0xd0000000ULL   /* in the PCI hole: no RAM, no device */
#define GPA_B 0xd0001000ULL
#define STR_(x) #x
#define STR(x) STR_(x)
__asm__(".pushsection .rodata\n"
	".code64\n"
	"drv_guest:\n"
	"1:	mov $" STR(CMD_GPA) ", %esi\n"
	"	mov (%rsi), %edx\n"
	"	mov 4(%rsi), %ecx\n"
	"	mov $1, %eax\n"
	"2:	test %ecx, %ecx\n"
	"	jz 3f\n"
	"	out %al, (%dx)\n"
	"	dec %ecx\n"
	"	jmp 2b\n"
	"3:	mov 8(%rsi), %rbx\n"
	"	mov 16(%rsi), %ecx\n"
	"4:	test %ecx, %ecx\n"
	"	jz 5f\n"
	"	movl %eax, (%rbx)\n"
	"	dec %ecx\n"
	"	jmp 4b\n"
	"5:	mov $" STR(EXIT_PORT) ", %edx\n"
	"	out %al, (%dx)\n"
	"	jmp 1b\n"
	"drv_guest_end:\n"
	".popsection\n");
extern const uint8_t drv_guest[], drv_guest_end[];

struct guest_cmd {
	uint32_t port, port_writes;
	uint64_t gpa;
	uint32_t mmio_writes;
};

static struct vm kvm_vm;
static bool have_vm;
static char no_vm_reason[512];

static int kvm_setup(void **state)
{
	char err[512];
	struct vm_options o = { .name = "test-drv", .mem_size = 8 << 20,
				.allow_emulated_kvm = getenv("KHYVE_TEST_ALLOW_EMULATED") != NULL };
	if (topology_parse("1", &o.topo, err, sizeof(err)))
		fail_msg("%s", err);
	if (vm_create(&kvm_vm, &o, err, sizeof(err))) {
		snprintf(no_vm_reason, sizeof(no_vm_reason), "%s", err);
		vm_destroy(&kvm_vm);
		return 0;
	}
	memcpy(kvm_vm.ram + GUEST_CODE_GPA, drv_guest, (size_t)(drv_guest_end - drv_guest));
	if (x86_enter_long_mode(&kvm_vm, &kvm_vm.vcpus[0], GUEST_CODE_GPA, 0, BOOT_STACK_GPA, err,
				sizeof(err))) {
		snprintf(no_vm_reason, sizeof(no_vm_reason), "%s", err);
		vm_destroy(&kvm_vm);
		return 0;
	}
	have_vm = true;
	return 0;
}

static int kvm_teardown(void **state)
{
	if (have_vm)
		vm_destroy(&kvm_vm);
	have_vm = false;
	return 0;
}

static struct vmm_hold *hold_or_skip(void)
{
	char err[256];
	if (!have_vm) {
		printf("skipping: no KVM VM: %s\n", no_vm_reason);
		skip();
	}
	struct vmm_hold *h = vmm_drv_hold(&kvm_vm, NULL, NULL, err, sizeof(err));
	if (!h)
		fail_msg("vmm_drv_hold: %s", err);
	return h;
}

/* Guest writes that reached userspace (not hooked) during one command. */
struct exits {
	unsigned pio, mmio;
};

/* Run one command to the guest's EXIT_PORT write. */
static struct exits guest(uint16_t port, uint32_t port_writes, uint64_t gpa,
			  uint32_t mmio_writes)
{
	struct guest_cmd c = { port, port_writes, gpa, mmio_writes };
	memcpy(kvm_vm.ram + CMD_GPA, &c, sizeof(c));
	struct vcpu *v = &kvm_vm.vcpus[0];
	struct exits x = { 0, 0 };
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0)
			fail_msg("KVM_RUN: %s", strerror(errno));
		struct kvm_run *r = v->run;
		if (r->exit_reason == KVM_EXIT_IO && r->io.port == EXIT_PORT)
			return x;
		if (r->exit_reason == KVM_EXIT_IO && r->io.port == port)
			x.pio++;
		else if (r->exit_reason == KVM_EXIT_MMIO && r->mmio.phys_addr == gpa)
			x.mmio++;
		else
			fail_msg("unexpected exit %u (port 0x%x, gpa 0x%llx)", r->exit_reason,
				 r->io.port, (unsigned long long)r->mmio.phys_addr);
	}
}

/* The eventfd's count, consumed; 0 if nothing was counted. */
static uint64_t take(int efd)
{
	uint64_t n = 0;
	if (read(efd, &n, sizeof(n)) != sizeof(n)) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return n;
}

static void test_hook_eventfd(void **state)
{
	struct vmm_hold *h = hold_or_skip();
	char err[256];
	struct vmm_drv_stats st0, st;
	vmm_drv_get_stats(&kvm_vm, &st0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(efd >= 0);
	struct vmm_hook *pa = NULL, *ma = NULL, *other = NULL;

	/* One eventfd at a port and an MMIO address at once: every write counts in it. */
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_A, 1, efd, &pa, err, sizeof(err)), 0);
	assert_int_equal(vmm_drv_mmio_hook_eventfd(h, GPA_A, 4, efd, &ma, err, sizeof(err)), 0);
	assert_non_null(pa);
	assert_non_null(ma);
	struct exits x = guest(PORT_A, 3, GPA_A, 2);
	assert_int_equal(x.pio + x.mmio, 0);   /* none left the kernel */
	assert_int_equal(take(efd), 5);
	/* The driver thread does not consume it: no callback, the count was ours to read. */
	vmm_drv_get_stats(&kvm_vm, &st);
	assert_int_equal(st.hook_callbacks, st0.hook_callbacks);

	/* The existing hooks' rules: collisions, claimed ranges, bad sizes and fds. */
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_A, 1, efd, &other, err, sizeof(err)),
			 -EBUSY);
	assert_non_null(strstr(err, "already hooked"));
	assert_null(other);
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_A - 1, 2, efd, &other, err,
						     sizeof(err)), -EBUSY);
	assert_int_equal(vmm_drv_mmio_hook_eventfd(h, GPA_A, 0, efd, &other, err, sizeof(err)),
			 -EBUSY);
	assert_int_equal(vmm_drv_mmio_hook(h, GPA_A + 2, 2, (vmm_drv_hook_fn)abort, NULL, &other,
					   err, sizeof(err)), -EBUSY);
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, 0x40, 1, efd, &other, err, sizeof(err)),
			 -EBUSY);
	assert_non_null(strstr(err, "PIT"));
	assert_int_equal(vmm_drv_mmio_hook_eventfd(h, 0xfee00000, 4, efd, &other, err,
						   sizeof(err)), -EBUSY);
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_B, 3, efd, &other, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_B, 1, -1, &other, err, sizeof(err)),
			 -EBADF);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_B, 1, p[0], &other, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "eventfd"));
	close(p[0]);
	close(p[1]);
	assert_null(other);

	/* Unhook: writes exit to userspace again; the fd stays open, usable, uncounted. */
	vmm_drv_ioport_unhook(h, &pa);
	assert_null(pa);
	assert_true(fcntl(efd, F_GETFD) >= 0);
	x = guest(PORT_A, 2, GPA_A, 1);
	assert_int_equal(x.pio, 2);
	assert_int_equal(x.mmio, 0);
	assert_int_equal(take(efd), 1);   /* the MMIO hook still counts */
	uint64_t one = 1;
	assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(take(efd), 1);

	/* A BAR move: the same eventfd hooked at the new place, the old one exits. */
	vmm_drv_mmio_unhook(h, &ma);
	assert_int_equal(vmm_drv_mmio_hook_eventfd(h, GPA_B, 4, efd, &ma, err, sizeof(err)), 0);
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_B, 1, efd, &pa, err, sizeof(err)), 0);
	x = guest(PORT_B, 4, GPA_B, 3);
	assert_int_equal(x.pio + x.mmio, 0);
	assert_int_equal(take(efd), 7);
	x = guest(PORT_A, 1, GPA_A, 1);
	assert_int_equal(x.pio, 1);
	assert_int_equal(x.mmio, 1);
	assert_int_equal(take(efd), 0);
	/* Unhooked, the old address takes a hook again: the move left nothing behind. */
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_A, 1, efd, &other, err, sizeof(err)),
			 0);
	vmm_drv_ioport_unhook(h, &other);

	/* The caller may close its fd while hooked: the hook has its own; unhook still works. */
	int efd2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_C, 1, efd2, &other, err, sizeof(err)),
			 0);
	close(efd2);
	x = guest(PORT_C, 2, 0, 0);
	assert_int_equal(x.pio, 0);
	vmm_drv_ioport_unhook(h, &other);
	x = guest(PORT_C, 2, 0, 0);
	assert_int_equal(x.pio, 2);

	/* Releasing the hold unhooks what is left, and leaves the caller's fd alone. */
	vmm_drv_rele(h);
	x = guest(PORT_B, 2, GPA_B, 2);
	assert_int_equal(x.pio, 2);
	assert_int_equal(x.mmio, 2);
	assert_int_equal(take(efd), 0);
	assert_true(fcntl(efd, F_GETFD) >= 0);

	/* Nothing of the hooks remains in KVM: a new hold hooks the same places. */
	h = hold_or_skip();
	assert_int_equal(vmm_drv_ioport_hook_eventfd(h, PORT_B, 1, efd, &pa, err, sizeof(err)), 0);
	assert_int_equal(vmm_drv_mmio_hook_eventfd(h, GPA_B, 4, efd, &ma, err, sizeof(err)), 0);
	vmm_drv_rele(h);
	close(efd);
}

static void test_lease_segments(void **state)
{
	struct vmm_hold *h = hold_or_skip();
	char err[256];
	struct vmm_lease *l = vmm_drv_lease_sign(h, NULL, NULL);
	assert_non_null(l);
	/* 8 MiB of RAM: one segment at 0, the boot mapping. */
	struct vmm_drv_segment seg[4];
	assert_int_equal(vmm_drv_lease_segments(l, NULL, 0), 1);
	assert_int_equal(vmm_drv_lease_segments(l, seg, 4), 1);
	assert_int_equal(seg[0].gpa, 0);
	assert_int_equal(seg[0].len, 8 << 20);
	assert_ptr_equal(seg[0].hva, kvm_vm.ram);
	assert_ptr_equal(vmm_drv_gpa2kva(l, 0x1234, 4), (uint8_t *)seg[0].hva + 0x1234);
	/* A map change waits for leases: break first (no expire callback here). */
	vmm_drv_lease_break(h, l);

	const uint64_t gpa = 0x200000000ULL, len = 64 << 10;
	void *extra = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(extra != MAP_FAILED);
	assert_int_equal(vm_mem_map(&kvm_vm, gpa, len, extra, err, sizeof(err)), 0);
	l = vmm_drv_lease_sign(h, NULL, NULL);
	assert_non_null(l);
	assert_int_equal(vmm_drv_lease_segments(l, seg, 4), 2);
	bool found = false;
	for (int i = 0; i < 2; i++)
		if (seg[i].gpa == gpa) {
			assert_int_equal(seg[i].len, len);
			assert_ptr_equal(seg[i].hva, extra);
			found = true;
		}
	assert_true(found);
	/* Fewer slots than segments: only those filled, the count is still all of them. */
	memset(seg, 0xa5, sizeof(seg));
	assert_int_equal(vmm_drv_lease_segments(l, seg, 1), 2);
	assert_true(seg[0].gpa == 0 || seg[0].gpa == gpa);
	assert_int_equal(seg[1].gpa, 0xa5a5a5a5a5a5a5a5ULL);
	vmm_drv_lease_break(h, l);
	assert_int_equal(vm_mem_unmap(&kvm_vm, gpa, err, sizeof(err)), 0);
	munmap(extra, len);
	l = vmm_drv_lease_sign(h, NULL, NULL);
	assert_int_equal(vmm_drv_lease_segments(l, seg, 4), 1);
	/* Released with the hold, as every lease is. */
	vmm_drv_rele(h);
}

int main(void)
{
	/* KVM_RUN in this thread: a guest that never reaches EXIT_PORT must not hang the run. */
	alarm(60);
	const struct CMUnitTest kvm_tests[] = {
		cmocka_unit_test(test_hook_eventfd),
		cmocka_unit_test(test_lease_segments),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routing_build),
		cmocka_unit_test(test_routing_table),
		cmocka_unit_test(test_mmio_bus),
		cmocka_unit_test(test_msix_registers),
		cmocka_unit_test(test_msix_masking),
		cmocka_unit_test(test_msix_intx),
		cmocka_unit_test(test_msix_backend),
	};
	int failed = cmocka_run_group_tests_name("driver interface", tests, NULL, NULL);
	return failed | cmocka_run_group_tests_name("driver interface on KVM", kvm_tests,
						    kvm_setup, kvm_teardown);
}
