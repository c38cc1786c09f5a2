/*
 * PCI bus 0 and its configuration space, reached through configuration
 * mechanism #1 (address at 0xcf8, data at 0xcfc-0xcff), the one every x86
 * OS knows without ACPI help.
 *
 * Each function is a 256-byte configuration space plus a write mask: bits the
 * guest may change are 1 in wmask, everything else is read-only. BAR sizing
 * needs no special case: a BAR's address bits below its size are read-only
 * zeros, so writing all-ones reads back the size mask, as the spec wants.
 * Devices that need to react to a write (a BAR moving, the command register,
 * MSI-X enable) install a cfg_write hook called after the mask is applied.
 *
 * Locking: one mutex for the bus serializes the address latch and config
 * access from all vCPUs (config cycles are rare; this is not a hot path).
 */
#ifndef KHYVE_PCI_H
#define KHYVE_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCI_SLOTS 32
#define PCI_FUNCS 8
#define PCI_CFG_SIZE 256

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_SUB 0x0a
#define PCI_CLASS_BASE 0x0b
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

struct vm;
struct pci_device;

typedef void (*pci_cfg_write_fn)(struct pci_device *dev, unsigned off, unsigned size,
				 uint32_t val);

struct pci_device {
	const char *name;
	uint8_t slot, func;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];
	pci_cfg_write_fn cfg_write;
	void *opaque;
};

struct pci_bus {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t cfg_addr;
	struct pci_device *devs[PCI_SLOTS][PCI_FUNCS];
};

int pci_bus_init(struct pci_bus *bus, struct vm *vm, char *err, size_t errlen);
void pci_bus_free(struct pci_bus *bus);

/* Allocate a device at slot.func with its identity; it is not yet on the bus. */
struct pci_device *pci_device_new(const char *name, uint8_t slot, uint8_t func,
				  uint16_t vendor, uint16_t device, uint32_t class_code);
int pci_bus_add(struct pci_bus *bus, struct pci_device *dev, char *err, size_t errlen);

/* Config-space accessors for device models (no bus lock: caller's context). */
uint32_t pci_cfg_read(const struct pci_device *dev, unsigned off, unsigned size);
void pci_cfg_write_masked(struct pci_device *dev, unsigned off, unsigned size, uint32_t val);
void pci_set16(struct pci_device *dev, unsigned off, uint16_t v);
void pci_set32(struct pci_device *dev, unsigned off, uint32_t v);

/* Configuration access as a CPU cycle would do it (also used by tests). */
uint32_t pci_bus_cfg_read(struct pci_bus *bus, uint32_t addr, unsigned off, unsigned size);
void pci_bus_cfg_write(struct pci_bus *bus, uint32_t addr, unsigned off, unsigned size,
		       uint32_t val);

#endif
