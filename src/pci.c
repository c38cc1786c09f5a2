#include "pci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioport.h"
#include "power.h"
#include "vm.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define CFG_ADDR_ENABLE 0x80000000u

/* Decode a mechanism-#1 address into a device, or NULL for an empty slot. */
static struct pci_device *lookup(struct pci_bus *bus, uint32_t addr)
{
	if (!(addr & CFG_ADDR_ENABLE))
		return NULL;
	unsigned busno = (addr >> 16) & 0xff, slot = (addr >> 11) & 0x1f, func = (addr >> 8) & 7;
	if (busno != 0)
		return NULL;
	return bus->devs[slot][func];
}

uint32_t pci_cfg_read(const struct pci_device *dev, unsigned off, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size && off + i < PCI_CFG_SIZE; i++)
		v |= (uint32_t)dev->cfg[off + i] << (8 * i);
	return v;
}

void pci_cfg_write_masked(struct pci_device *dev, unsigned off, unsigned size, uint32_t val)
{
	for (unsigned i = 0; i < size && off + i < PCI_CFG_SIZE; i++) {
		uint8_t m = dev->wmask[off + i], b = (uint8_t)(val >> (8 * i));
		dev->cfg[off + i] = (uint8_t)((dev->cfg[off + i] & ~m) | (b & m));
	}
}

void pci_set16(struct pci_device *dev, unsigned off, uint16_t v)
{
	dev->cfg[off] = (uint8_t)v;
	dev->cfg[off + 1] = (uint8_t)(v >> 8);
}

void pci_set32(struct pci_device *dev, unsigned off, uint32_t v)
{
	pci_set16(dev, off, (uint16_t)v);
	pci_set16(dev, off + 2, (uint16_t)(v >> 16));
}

uint32_t pci_bus_cfg_read(struct pci_bus *bus, uint32_t addr, unsigned off, unsigned size)
{
	struct pci_device *dev = lookup(bus, addr);
	unsigned reg = (addr & 0xfc) + off;
	/* No device: the host bridge's master abort reads as all-ones. */
	if (!dev)
		return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffff;
	return pci_cfg_read(dev, reg, size);
}

void pci_bus_cfg_write(struct pci_bus *bus, uint32_t addr, unsigned off, unsigned size,
		       uint32_t val)
{
	struct pci_device *dev = lookup(bus, addr);
	if (!dev)
		return;
	unsigned reg = (addr & 0xfc) + off;
	pci_cfg_write_masked(dev, reg, size, val);
	if (dev->cfg_write)
		dev->cfg_write(dev, reg, size, val);
}

static void cfg_address_io(void *opaque, uint16_t port, unsigned size, bool is_write,
			   uint32_t *val)
{
	struct pci_bus *bus = opaque;
	if (port == PCI_CONFIG_ADDRESS && size == 4) {
		pthread_mutex_lock(&bus->lock);
		if (is_write)
			bus->cfg_addr = *val & 0x80fffffc;
		else
			*val = bus->cfg_addr;
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	/* Byte-wide 0xcf9 is the reset control register, not the address latch. */
	if (port == POWER_RESET_PORT && size == 1) {
		if (is_write)
			power_reset_control_write(bus->vm, (uint8_t)*val);
		else
			*val = 0;
		return;
	}
	if (!is_write)
		*val = size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffff;
}

static void cfg_data_io(void *opaque, uint16_t port, unsigned size, bool is_write,
			uint32_t *val)
{
	struct pci_bus *bus = opaque;
	unsigned off = port - PCI_CONFIG_DATA;
	pthread_mutex_lock(&bus->lock);
	if (off + size > 4) {
		/* An access straddling 0xcff is not a config cycle: all-ones, of its size. */
		if (!is_write)
			*val = size == 2 ? 0xffff : 0xffffffff;
	} else if (is_write) {
		pci_bus_cfg_write(bus, bus->cfg_addr, off, size, *val);
	} else {
		*val = pci_bus_cfg_read(bus, bus->cfg_addr, off, size);
	}
	pthread_mutex_unlock(&bus->lock);
}

int pci_bus_init(struct pci_bus *bus, struct vm *vm, char *err, size_t errlen)
{
	memset(bus, 0, sizeof(*bus));
	bus->vm = vm;
	pthread_mutex_init(&bus->lock, NULL);
	if (ioport_register(&vm->io, PCI_CONFIG_ADDRESS, 4, "pci-cfg-address", cfg_address_io,
			    bus, err, errlen) ||
	    ioport_register(&vm->io, PCI_CONFIG_DATA, 4, "pci-cfg-data", cfg_data_io, bus, err,
			    errlen))
		return -1;
	return 0;
}

void pci_bus_free(struct pci_bus *bus)
{
	for (int s = 0; s < PCI_SLOTS; s++)
		for (int f = 0; f < PCI_FUNCS; f++)
			free(bus->devs[s][f]);
	pthread_mutex_destroy(&bus->lock);
	memset(bus->devs, 0, sizeof(bus->devs));
}

struct pci_device *pci_device_new(const char *name, uint8_t slot, uint8_t func,
				  uint16_t vendor, uint16_t device, uint32_t class_code)
{
	struct pci_device *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->name = name;
	d->slot = slot;
	d->func = func;
	pci_set16(d, PCI_VENDOR_ID, vendor);
	pci_set16(d, PCI_DEVICE_ID, device);
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	d->cfg[PCI_CLASS_SUB] = (uint8_t)(class_code >> 8);
	d->cfg[PCI_CLASS_BASE] = (uint8_t)(class_code >> 16);
	/* The guest may set I/O, memory, bus-master and INTx-disable. */
	d->wmask[PCI_COMMAND] = 0x07;
	d->wmask[PCI_COMMAND + 1] = 0x04;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	return d;
}

int pci_bus_add(struct pci_bus *bus, struct pci_device *dev, char *err, size_t errlen)
{
	if (dev->slot >= PCI_SLOTS || dev->func >= PCI_FUNCS) {
		snprintf(err, errlen, "pci: %s: slot %u.%u does not exist", dev->name, dev->slot,
			 dev->func);
		return -1;
	}
	if (bus->devs[dev->slot][dev->func]) {
		snprintf(err, errlen, "pci: %s: slot %u.%u is taken by %s", dev->name, dev->slot,
			 dev->func, bus->devs[dev->slot][dev->func]->name);
		return -1;
	}
	bus->devs[dev->slot][dev->func] = dev;
	return 0;
}
