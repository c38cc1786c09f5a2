/*
 * Fuzz target: the 16550 UART's register file, as a guest reaches it:
 * arbitrary sequences of 1/2/4-byte reads and writes to COM1's eight ports
 * (and its neighbours), through the I/O-port bus of a VM with no KVM behind
 * it. Output goes to /dev/null; input comes only through loopback mode
 * (MCR bit 4), which fills the receive FIFO from THR without a thread.
 *
 * Input: records of 2 bytes, [op][value]:
 *   op bit 0      write (else read)
 *   op bits 1-2   size: 1, 2, 4, 4
 *   op bits 3-6   port: 0x3f0 + n (COM1 is 0x3f8-0x3ff; 0x3f0-0x3f7 is
 *                 nobody's and must stay so)
 *   value         the byte written (repeated for wider writes)
 *
 * Invariants checked after every read: exactly `size` bytes are defined,
 * and a wide read repeats the register byte; LSR always says the
 * transmitter is empty (output is synchronous); IIR names one of the
 * 16550's interrupt sources with the FIFO bits consistent.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <unistd.h>

#include "uart_8250.h"

#define BASE 0x3f8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	if (devnull < 0 && (devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		abort();
	struct vm vm;
	char err[256];
	fuzz_fake_vm(&vm);
	struct uart_8250 *u = uart_8250_create(&vm, BASE, 4, -1, devnull, err, sizeof(err));
	if (!u) {
		fprintf(stderr, "fuzz_uart: set-up failed: %s\n", err);
		abort();
	}
	uint8_t lcr = 0;
	for (size_t i = 0; i + 2 <= size; i += 2) {
		uint8_t op = data[i], v = data[i + 1];
		bool wr = op & 1;
		unsigned sz = fuzz_size(op >> 1);
		uint16_t port = (uint16_t)(0x3f0 + ((op >> 3) & 15));
		uint32_t val = fuzz_io(&vm, port, sz, wr, v * 0x01010101u);
		if (port < BASE) {
			if (!wr)
				FUZZ_CHECK(val == (sz == 1 ? 0xffu : sz == 2 ? 0xffffu : 0xffffffffu));
			continue;
		}
		unsigned off = port - BASE;
		if (wr) {
			if (off == 3)
				lcr = v;
			continue;
		}
		uint8_t b = (uint8_t)val;
		if (sz >= 2)
			FUZZ_CHECK(((val >> 8) & 0xff) == b);
		if (sz == 4)
			FUZZ_CHECK(val == b * 0x01010101u);
		if (off == 5)
			FUZZ_CHECK((b & 0x60) == 0x60);
		if (off == 2) {
			uint8_t src = b & 0x0f;
			FUZZ_CHECK(src == 0x01 || src == 0x00 || src == 0x02 || src == 0x04);
			FUZZ_CHECK((b & 0x30) == 0);
		}
		if (off == 3)
			FUZZ_CHECK(b == lcr);
	}
	uart_8250_destroy(u);
	ioport_bus_free(&vm.io);
	return 0;
}
