#ifndef KHYVE_PCI_HOSTBRIDGE_H
#define KHYVE_PCI_HOSTBRIDGE_H

#include <stddef.h>

#include "pci.h"

int pci_hostbridge_add(struct pci_bus *bus, char *err, size_t errlen);

#endif
