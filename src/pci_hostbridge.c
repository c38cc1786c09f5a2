/*
 * The PCI host bridge at 00:00.0: the device that tells the guest bus 0
 * exists. It has no BARs and no behaviour; its identity is bhyve's
 * (vendor/device 0x1275, class "host bridge") so that no OS applies chipset
 * quirks meant for a real Intel or AMD part.
 */
#include "pci_hostbridge.h"

#include <stdio.h>

#define HOSTBRIDGE_VENDOR 0x1275
#define HOSTBRIDGE_DEVICE 0x1275
#define PCI_CLASS_BRIDGE_HOST 0x060000

int pci_hostbridge_add(struct pci_bus *bus, char *err, size_t errlen)
{
	struct pci_device *d = pci_device_new("hostbridge", 0, 0, HOSTBRIDGE_VENDOR,
					      HOSTBRIDGE_DEVICE, PCI_CLASS_BRIDGE_HOST);
	if (!d) {
		snprintf(err, errlen, "pci: out of memory");
		return -1;
	}
	return pci_bus_add(bus, d, err, errlen);
}
