/*
 * ioport-dispatch: drive khyve's port-I/O exit path (ioport_dispatch and the
 * device behind it) N times on a VM with no KVM behind it (as
 * tests/unit/test_devices.c does), for valgrind --tool=callgrind to count
 * the instructions. Only the function named by the scenario is counted
 * (callgrind --toggle-collect=bench_SCENARIO), so start-up is left out.
 *
 *   ioport-dispatch SCENARIO N
 *     lsr          UART line-status read (what a polling guest spins on)
 *     thr          UART transmit write, COM1 unconnected
 *     thr_devnull  UART transmit write into /dev/null (write(2) wrapper
 *                  counted, the syscall itself is not: callgrind counts user
 *                  instructions)
 *     pci_cfg      PCI config read through 0xcf8/0xcfc (2 dispatches)
 *     unclaimed    a read of a port nobody claims (the bus's miss path)
 * Same devices as machine.c: power ports, PCI host bridge, COM1, COM2.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ioport.h"
#include "pci.h"
#include "pci_hostbridge.h"
#include "power.h"
#include "uart_8250.h"
#include "vm.h"

/* Not static: callgrind finds them by name. */
void bench_lsr(struct vm *vm, long n);
void bench_thr(struct vm *vm, long n);
void bench_thr_devnull(struct vm *vm, long n);
void bench_pci_cfg(struct vm *vm, long n);
void bench_unclaimed(struct vm *vm, long n);

#define NOINLINE __attribute__((noinline, noclone, used))

NOINLINE void bench_lsr(struct vm *vm, long n)
{
	for (long i = 0; i < n; i++) {
		uint32_t v = 0;
		ioport_dispatch(&vm->io, 0x3fd, 1, false, &v);
	}
}

NOINLINE void bench_thr(struct vm *vm, long n)
{
	for (long i = 0; i < n; i++) {
		uint32_t v = 'x';
		ioport_dispatch(&vm->io, 0x3f8, 1, true, &v);
	}
}

NOINLINE void bench_thr_devnull(struct vm *vm, long n) { bench_thr(vm, n); }

NOINLINE void bench_pci_cfg(struct vm *vm, long n)
{
	for (long i = 0; i < n; i++) {
		uint32_t a = 0x80000000u, v = 0;
		ioport_dispatch(&vm->io, 0xcf8, 4, true, &a);
		ioport_dispatch(&vm->io, 0xcfc, 4, false, &v);
	}
}

NOINLINE void bench_unclaimed(struct vm *vm, long n)
{
	for (long i = 0; i < n; i++) {
		uint32_t v = 0;
		ioport_dispatch(&vm->io, 0x80, 1, false, &v);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: ioport-dispatch lsr|thr|thr_devnull|pci_cfg|unclaimed N\n");
		return 2;
	}
	const char *s = argv[1];
	long n = atol(argv[2]);
	static struct vm vm;
	struct pci_bus bus;
	char err[256];
	memset(&vm, 0, sizeof(vm));
	vm.kvm_fd = vm.vm_fd = vm.stop_eventfd = -1;
	ioport_bus_init(&vm.io);
	/* The first MiB of RAM: the power device puts its reset-vector stub there. */
	static uint8_t low_ram[1 << 20];
	static struct mem_segment low_seg = { .gpa = 0, .len = sizeof(low_ram), .hva = low_ram };
	vm.mem = (struct memmap){ .segs = &low_seg, .nsegs = 1 };
	int out = strcmp(s, "thr_devnull") == 0 ? open("/dev/null", O_WRONLY) : -1;
	struct uart_8250 *com1, *com2;
	if (power_register(&vm, err, sizeof(err)) || pci_bus_init(&bus, &vm, err, sizeof(err)) ||
	    pci_hostbridge_add(&bus, err, sizeof(err)) ||
	    !(com1 = uart_8250_create(&vm, 0x3f8, 4, -1, out, err, sizeof(err))) ||
	    !(com2 = uart_8250_create(&vm, 0x2f8, 3, -1, -1, err, sizeof(err)))) {
		fprintf(stderr, "ioport-dispatch: %s\n", err);
		return 1;
	}
	if (strcmp(s, "lsr") == 0)
		bench_lsr(&vm, n);
	else if (strcmp(s, "thr") == 0)
		bench_thr(&vm, n);
	else if (strcmp(s, "thr_devnull") == 0)
		bench_thr_devnull(&vm, n);
	else if (strcmp(s, "pci_cfg") == 0)
		bench_pci_cfg(&vm, n);
	else if (strcmp(s, "unclaimed") == 0)
		bench_unclaimed(&vm, n);
	else {
		fprintf(stderr, "ioport-dispatch: unknown scenario %s\n", s);
		return 2;
	}
	uart_8250_destroy(com1);
	uart_8250_destroy(com2);
	pci_bus_free(&bus);
	ioport_bus_free(&vm.io);
	return 0;
}
