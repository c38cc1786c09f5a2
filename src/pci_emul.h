/*
 * PCI device emulations that -s SLOT,EMULATION can name (bhyve's pci_*.c
 * devices). machine.c looks EMULATION up in its table and calls create
 * with the slot's configuration prefix ("pci.0.SLOT.0"); each emulation
 * reads and validates its own keys there (errors name the key).
 */
#ifndef KHYVE_PCI_EMUL_H
#define KHYVE_PCI_EMUL_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct pci_bus;
struct config;

struct pci_emul {
	const char *name;
	/* The device, or NULL with a one-line reason in err. */
	void *(*create)(struct vm *vm, struct pci_bus *bus, uint8_t slot,
			const struct config *cfg, const char *prefix, char *err, size_t errlen);
	/* After the VM is destroyed (vCPUs joined, driver holds released). */
	void (*destroy)(void *dev);
};

extern const struct pci_emul pci_emul_virtio_blk;
extern const struct pci_emul pci_emul_virtio_net;

#endif
