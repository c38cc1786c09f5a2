/*
 * Unit tests for the device models that need no KVM: the I/O-port bus, PCI
 * configuration space (mechanism #1, BAR sizing, the 0xcf9 reset register
 * sharing its range), the power ports and the 8250 UART. A VM object with no
 * KVM behind it (fds of -1) stands in; interrupt-line ioctls then fail
 * harmlessly and are not what these tests check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ioport.h"
#include "pci.h"
#include "pci_hostbridge.h"
#include "power.h"
#include "uart_8250.h"
#include "vm.h"

static void fake_vm(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_eventfd = -1;
	ioport_bus_init(&vm->io);
}

static uint32_t io(struct vm *vm, uint16_t port, unsigned size, bool wr, uint32_t val)
{
	ioport_dispatch(&vm->io, port, size, wr, &val);
	return val;
}

static void dummy(void *o, uint16_t p, unsigned s, bool w, uint32_t *v) { *v = 0x42; }

static void test_ioport_bus(void **state)
{
	struct vm vm;
	char err[256];
	fake_vm(&vm);
	assert_int_equal(ioport_register(&vm.io, 0x100, 8, "a", dummy, NULL, err, sizeof(err)), 0);
	assert_int_equal(ioport_register(&vm.io, 0x10, 1, "b", dummy, NULL, err, sizeof(err)), 0);
	assert_int_equal(ioport_register(&vm.io, 0x104, 8, "c", dummy, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "overlaps a"));
	assert_int_equal(ioport_register(&vm.io, 0xfa, 8, "d", dummy, NULL, err, sizeof(err)), -1);
	assert_int_equal(ioport_register(&vm.io, 0xfffe, 4, "e", dummy, NULL, err, sizeof(err)), -1);
	assert_int_equal(io(&vm, 0x107, 1, false, 0), 0x42);
	assert_int_equal(io(&vm, 0x10, 1, false, 0), 0x42);
	/* Nobody home: all-ones of the access size, and counted. */
	assert_int_equal(io(&vm, 0x108, 1, false, 0), 0xff);
	assert_int_equal(io(&vm, 0x0, 2, false, 0), 0xffff);
	assert_int_equal(io(&vm, 0xffff, 4, false, 0), 0xffffffff);
	io(&vm, 0x200, 1, true, 1);
	assert_int_equal(atomic_load(&vm.io.unclaimed_reads), 3);
	assert_int_equal(atomic_load(&vm.io.unclaimed_writes), 1);
	ioport_bus_free(&vm.io);
}

#define CFG(slot, fn, reg) (0x80000000u | (slot) << 11 | (fn) << 8 | (reg))

static void test_pci_config_space(void **state)
{
	struct vm vm;
	struct pci_bus bus;
	char err[256];
	fake_vm(&vm);
	assert_int_equal(pci_bus_init(&bus, &vm, err, sizeof(err)), 0);
	assert_int_equal(pci_hostbridge_add(&bus, err, sizeof(err)), 0);
	assert_int_equal(pci_hostbridge_add(&bus, err, sizeof(err)), -1);  /* slot taken */
	assert_non_null(strstr(err, "taken"));

	/* Through the ports, as a guest does it. */
	io(&vm, 0xcf8, 4, true, CFG(0, 0, 0));
	assert_int_equal(io(&vm, 0xcf8, 4, false, 0), CFG(0, 0, 0));
	assert_int_equal(io(&vm, 0xcfc, 4, false, 0), 0x12751275);
	assert_int_equal(io(&vm, 0xcfe, 2, false, 0), 0x1275);
	io(&vm, 0xcf8, 4, true, CFG(0, 0, 8));
	assert_int_equal(io(&vm, 0xcfc, 4, false, 0) >> 8, 0x060000);
	/* Empty slot, other bus, disabled address: master abort. */
	io(&vm, 0xcf8, 4, true, CFG(5, 0, 0));
	assert_int_equal(io(&vm, 0xcfc, 4, false, 0), 0xffffffff);
	io(&vm, 0xcf8, 4, true, CFG(0, 0, 0) | 1u << 16);
	assert_int_equal(io(&vm, 0xcfc, 2, false, 0), 0xffff);
	io(&vm, 0xcf8, 4, true, 0);
	assert_int_equal(io(&vm, 0xcfc, 4, false, 0), 0xffffffff);

	/* Read-only identity, writable command bits only. */
	io(&vm, 0xcf8, 4, true, CFG(0, 0, 0));
	io(&vm, 0xcfc, 4, true, 0xdeadbeef);
	assert_int_equal(io(&vm, 0xcfc, 4, false, 0), 0x12751275);
	io(&vm, 0xcf8, 4, true, CFG(0, 0, 4));
	io(&vm, 0xcfc, 2, true, 0xffff);
	assert_int_equal(io(&vm, 0xcfc, 2, false, 0), 0x0407);

	/* BAR sizing falls out of the write mask: a 4 KiB memory BAR. */
	struct pci_device *d = pci_device_new("bar-test", 3, 0, 0x1af4, 0x1000, 0x020000);
	pci_set32(d, PCI_BAR0, 0);
	d->wmask[PCI_BAR0 + 1] = 0xf0;
	d->wmask[PCI_BAR0 + 2] = 0xff;
	d->wmask[PCI_BAR0 + 3] = 0xff;
	assert_int_equal(pci_bus_add(&bus, d, err, sizeof(err)), 0);
	pci_bus_cfg_write(&bus, CFG(3, 0, PCI_BAR0), 0, 4, 0xffffffff);
	assert_int_equal(pci_bus_cfg_read(&bus, CFG(3, 0, PCI_BAR0), 0, 4), 0xfffff000);
	pci_bus_cfg_write(&bus, CFG(3, 0, PCI_BAR0), 0, 4, 0xc0001234);
	assert_int_equal(pci_bus_cfg_read(&bus, CFG(3, 0, PCI_BAR0), 0, 4), 0xc0001000);

	/* 0xcf9 (byte) is the reset register inside the address register's range. */
	assert_int_equal(atomic_load(&vm.suspended), 0);
	io(&vm, 0xcf9, 1, true, 0x02);  /* SYS_RST alone does not reset */
	assert_int_equal(atomic_load(&vm.suspended), 0);
	io(&vm, 0xcf9, 1, true, 0x06);
	assert_int_equal(atomic_load(&vm.suspended), 1 + VM_EXIT_REBOOT);
	pci_bus_free(&bus);
	ioport_bus_free(&vm.io);
}

/* The first MiB of RAM, where the BIOS reset-vector stub goes. */
static uint8_t low_ram[1 << 20];
static struct mem_segment low_seg = { .gpa = 0, .len = sizeof(low_ram), .hva = low_ram };

static void fake_vm_with_ram(struct vm *vm)
{
	fake_vm(vm);
	vm->mem = (struct memmap){ .segs = &low_seg, .nsegs = 1 };
}

static void test_power_ports(void **state)
{
	struct vm vm;
	char err[256];
	fake_vm(&vm);
	/* No RAM under the reset vector: refused with a reason. */
	assert_int_equal(power_register(&vm, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "reset vector"));
	ioport_bus_free(&vm.io);

	fake_vm_with_ram(&vm);
	assert_int_equal(power_register(&vm, err, sizeof(err)), 0);
	/* F000:FFF0 resets through 0xcf9: cli; mov al,6; mov dx,0xcf9; out dx,al; hlt */
	static const uint8_t stub[] = { 0xfa, 0xb0, 0x06, 0xba, 0xf9, 0x0c, 0xee, 0xf4 };
	assert_memory_equal(low_ram + POWER_BIOS_RESET_VECTOR_GPA, stub, sizeof(stub));
	io(&vm, POWER_SLEEP_CTL_PORT, 1, true, 0x80);            /* clear WAK_STS */
	io(&vm, POWER_SLEEP_CTL_PORT, 1, true, (3 << 2) | 0x20);  /* S3: not offered */
	assert_int_equal(io(&vm, POWER_SLEEP_CTL_PORT, 1, false, 0xff), 0);
	assert_int_equal(atomic_load(&vm.suspended), 0);
	io(&vm, POWER_SLEEP_CTL_PORT, 1, true, (POWER_S5_SLEEP_TYPE << 2) | 0x20);
	assert_int_equal(atomic_load(&vm.suspended), 1 + VM_EXIT_POWEROFF);
	/* The first reason sticks. */
	io(&vm, POWER_I8042_CMD_PORT, 1, true, 0xfe);
	assert_int_equal(atomic_load(&vm.suspended), 1 + VM_EXIT_POWEROFF);
	ioport_bus_free(&vm.io);

	fake_vm_with_ram(&vm);
	assert_int_equal(power_register(&vm, err, sizeof(err)), 0);
	assert_int_equal(io(&vm, POWER_I8042_CMD_PORT, 1, false, 0xff), 0);
	io(&vm, POWER_I8042_CMD_PORT, 1, true, 0xfe);
	assert_int_equal(atomic_load(&vm.suspended), 1 + VM_EXIT_REBOOT);
	ioport_bus_free(&vm.io);
}

static void test_uart(void **state)
{
	struct vm vm;
	char err[256];
	int out[2], in[2];
	fake_vm(&vm);
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(in), 0);
	struct uart_8250 *u = uart_8250_create(&vm, 0x3f8, 4, in[0], out[1], err, sizeof(err));
	assert_non_null(u);

	/* Transmit: LSR says ready, bytes come out in order. */
	assert_int_equal(io(&vm, 0x3fd, 1, false, 0) & 0x60, 0x60);
	io(&vm, 0x3f8, 1, true, 'o');
	io(&vm, 0x3f8, 1, true, 'k');
	char buf[8] = { 0 };
	assert_int_equal(read(out[0], buf, 2), 2);
	assert_string_equal(buf, "ok");

	/* THRE interrupt: pending once enabled, acknowledged by reading IIR. */
	assert_int_equal(io(&vm, 0x3fa, 1, false, 0) & 0x0f, 0x01);
	io(&vm, 0x3f9, 1, true, 0x02);
	assert_int_equal(io(&vm, 0x3fa, 1, false, 0) & 0x0f, 0x02);
	assert_int_equal(io(&vm, 0x3fa, 1, false, 0) & 0x0f, 0x01);
	io(&vm, 0x3f8, 1, true, '!');
	assert_int_equal(io(&vm, 0x3fa, 1, false, 0) & 0x0f, 0x02);

	/* Divisor latch and scratch register. */
	io(&vm, 0x3fb, 1, true, 0x83);
	io(&vm, 0x3f8, 1, true, 0x01);
	io(&vm, 0x3f9, 1, true, 0x00);
	assert_int_equal(io(&vm, 0x3f8, 1, false, 0), 0x01);
	io(&vm, 0x3fb, 1, true, 0x03);
	assert_int_equal(io(&vm, 0x3f9, 1, false, 0), 0x02);  /* IER back */
	io(&vm, 0x3ff, 1, true, 0x5a);
	assert_int_equal(io(&vm, 0x3ff, 1, false, 0), 0x5a);

	/* Receive: host bytes arrive in RBR with data-ready and RDA priority. */
	io(&vm, 0x3f9, 1, true, 0x03);
	assert_int_equal(write(in[1], "hi", 2), 2);
	for (int i = 0; i < 2000 && !(io(&vm, 0x3fd, 1, false, 0) & 1); i++)
		usleep(1000);
	assert_int_equal(io(&vm, 0x3fa, 1, false, 0) & 0x0f, 0x04);
	assert_int_equal(io(&vm, 0x3f8, 1, false, 0), 'h');
	for (int i = 0; i < 2000 && !(io(&vm, 0x3fd, 1, false, 0) & 1); i++)
		usleep(1000);
	assert_int_equal(io(&vm, 0x3f8, 1, false, 0), 'i');
	assert_int_equal(io(&vm, 0x3fd, 1, false, 0) & 1, 0);

	/* Loopback: what is sent is received, nothing reaches the host. */
	io(&vm, 0x3fc, 1, true, 0x10);
	io(&vm, 0x3f8, 1, true, 'L');
	assert_int_equal(io(&vm, 0x3fd, 1, false, 0) & 1, 1);
	assert_int_equal(io(&vm, 0x3f8, 1, false, 0), 'L');

	uart_8250_destroy(u);
	close(out[0]);
	close(out[1]);
	close(in[0]);
	close(in[1]);
	ioport_bus_free(&vm.io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ioport_bus),
		cmocka_unit_test(test_pci_config_space),
		cmocka_unit_test(test_power_ports),
		cmocka_unit_test(test_uart),
	};
	return cmocka_run_group_tests_name("devices", tests, NULL, NULL);
}
