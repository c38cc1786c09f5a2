/*
 * Definitions shared by the lm-drv-*.S micro-guests, which exercise the
 * driver interface (src/vmm_drv.h) through the test device
 * (src/pci_testdev.h, whose register numbers come in with it). Include it
 * at the top; the code helpers are in lm-drv-lib.h, included at the bottom. Register conventions of these guests:
 *   r12  config-mechanism-#1 address of the test device (function 0, reg 0)
 *   r15  BAR1 (registers)     r14  BAR0 (I/O ports)
 *   r13  BAR2 (MSI-X table/PBA) or BAR3 (MMIO doorbell), as a guest needs
 * Helpers: find_testdev, cfg_rd/cfg_wr/cfg_wr16, wait_td, check, report,
 * fail; x2apic_on, set_gate, eoi, the IDT at DRV_IDT.
 */
#ifndef DRV_H
#define DRV_H
#include "../../src/pci_testdev.h"

#define DRV_IDT       0x2000          /* 256 gates x 16 bytes */
#define DRV_COUNTERS  0x6000          /* interrupt counters, 4 bytes each */
#define DRV_RING      0x6100          /* the u32 the driver reads through its lease */
#define DRV_POLLS     2000000         /* bound of every wait, in register reads */
#define MSR_APIC_BASE 0x1b
#define MSR_X2APIC_TPR 0x808
#define MSR_X2APIC_EOI 0x80b
#define MSR_X2APIC_SVR 0x80f
#define CODE_SELECTOR 0x10            /* x86_entry.c's 64-bit code segment */

#define PCI_BAR(n) (0x10 + 4 * (n))

#endif
