/*
 * Fuzz target: PCI configuration space through mechanism #1, as a guest
 * reaches it: arbitrary sequences of 1/2/4-byte reads and writes to the
 * address latch (0xcf8-0xcfb, which also holds the 0xcf9 reset register)
 * and the data window (0xcfc-0xcff), dispatched by the I/O-port bus of a VM
 * with no KVM behind it. The bus holds the host bridge, a device with a
 * sizable memory BAR and a write hook, and a function at the last slot.
 *
 * Input: records of 6 bytes, [op][port][value LE x4]:
 *   op bit 0      write (else read)
 *   op bits 1-2   size: 1, 2, 4, 4
 *   op bit 3      latch a full address first: 0xcf8 <- value (then the
 *                 access goes to 0xcfc + (port & 3))
 *   port          0-7: 0xcf8 + port; else any port, (value >> 16) ^ port
 *
 * Invariants checked after every access: reads define exactly `size`
 * bytes; read-only identity registers never change; the address latch
 * never holds reserved bits; a device's write hook only ever sees a
 * register range inside its 256-byte configuration space.
 */
#include "fuzz.h"

#include "pci.h"
#include "pci_hostbridge.h"
#include "power.h"

#define CFG_ADDRESS 0xcf8
#define CFG_DATA 0xcfc

static void bounded_hook(struct pci_device *dev, unsigned off, unsigned size, uint32_t val)
{
	FUZZ_CHECK(size == 1 || size == 2 || size == 4);
	FUZZ_CHECK(off + size <= PCI_CFG_SIZE);
	/* What the hook reads back must be what the mask let through. */
	(void)pci_cfg_read(dev, off, size);
}

static struct pci_device *bar_device(uint8_t slot, uint8_t func)
{
	struct pci_device *d = pci_device_new("fuzz-bar", slot, func, 0x1af4, 0x1000, 0x020000);
	if (!d)
		abort();
	pci_set32(d, PCI_BAR0, 0);
	d->wmask[PCI_BAR0 + 1] = 0xf0;  /* 4 KiB memory BAR */
	d->wmask[PCI_BAR0 + 2] = 0xff;
	d->wmask[PCI_BAR0 + 3] = 0xff;
	/* A writable register block up to the very end of the space. */
	memset(&d->wmask[0xf0], 0xff, 0x10);
	d->cfg_write = bounded_hook;
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm vm;
	struct pci_bus bus;
	char err[256];
	fuzz_fake_vm(&vm);
	if (power_register(&vm, err, sizeof(err)) || pci_bus_init(&bus, &vm, err, sizeof(err)) ||
	    pci_hostbridge_add(&bus, err, sizeof(err)) ||
	    pci_bus_add(&bus, bar_device(3, 0), err, sizeof(err)) ||
	    pci_bus_add(&bus, bar_device(31, 7), err, sizeof(err))) {
		fprintf(stderr, "fuzz_pci: set-up failed: %s\n", err);
		abort();
	}
	const struct pci_device *host = bus.devs[0][0];
	uint8_t identity[PCI_CFG_SIZE];
	memcpy(identity, host->cfg, sizeof(identity));

	for (size_t i = 0; i + 6 <= size; i += 6) {
		uint8_t op = data[i], p = data[i + 1];
		uint32_t val = (uint32_t)data[i + 2] | (uint32_t)data[i + 3] << 8 |
			       (uint32_t)data[i + 4] << 16 | (uint32_t)data[i + 5] << 24;
		bool wr = op & 1;
		unsigned sz = fuzz_size(op >> 1);
		uint16_t port;
		if (op & 8) {
			fuzz_io(&vm, CFG_ADDRESS, 4, true, val);
			port = (uint16_t)(CFG_DATA + (p & 3));
		} else if (p < 8) {
			port = (uint16_t)(CFG_ADDRESS + p);
		} else {
			port = (uint16_t)((val >> 16) ^ p);
		}
		fuzz_io(&vm, port, sz, wr, val);

		FUZZ_CHECK((bus.cfg_addr & 0x7f000003u) == 0);
		/* Vendor, device, revision, class, header type: read-only. */
		FUZZ_CHECK(memcmp(host->cfg, identity, 4) == 0);
		FUZZ_CHECK(memcmp(host->cfg + 8, identity + 8, 8) == 0);
		/* Only the writable command bits may be set. */
		FUZZ_CHECK((host->cfg[PCI_COMMAND] & ~0x07) == 0 &&
			   (host->cfg[PCI_COMMAND + 1] & ~0x04) == 0);
		/* The BAR keeps its size: the low 12 address bits stay zero. */
		const struct pci_device *d = bus.devs[3][0];
		FUZZ_CHECK((pci_cfg_read(d, PCI_BAR0, 4) & 0xfff) == 0);
	}
	pci_bus_free(&bus);
	ioport_bus_free(&vm.io);
	return 0;
}
