/*
 * pci-testdev: a PCI device for exercising the driver interface (vmm_drv.h)
 * from a guest, in the spirit of QEMU's pci-testdev and edu. Present only
 * when configured (-o pci.testdev=true, slot from pci.testdev.slot, default
 * 4). Its driver is testdrv.c; this is the device model in front of it, as
 * bhyve's pci_viona.c is in front of viona.
 *
 * This header is also included by micro-guests (assembler): register
 * numbers only, outside the C part.
 *
 * Identity 1275:7e57, class ff0000 (unassigned), INTA on the slot's _PRT
 * GSI (16 + slot % 4). BARs, assigned by khyve as firmware would, with
 * decoding off until the guest sets the command register's I/O and memory
 * bits (khyve follows every BAR rewrite and decode change):
 *   BAR0  I/O, 16 ports at TESTDEV_IO_BASE + 0x100 * slot. The port at
 *         offset TESTDEV_IO_DOORBELL (2-byte writes) is the driver's doorbell:
 *         while hooked, writes are counted in the kernel (ioeventfd) and
 *         never exit; no device model claims BAR0's ports, so once unhooked
 *         they exit to userspace and land on the I/O-port bus as unclaimed
 *         (TD_IO_EXITS counts them).
 *   BAR1  memory, 4 KiB: the registers below (32-bit accesses).
 *   BAR2  memory, 4 KiB: MSI-X table (8 vectors) at 0, PBA at 0x800.
 *   BAR3  memory, 4 KiB: the MMIO doorbell at offset 0 (writes of any size),
 *         hooked like BAR0's; unhooked writes count in TD_MMIO_EXITS.
 *   Memory BARs at TESTDEV_MEM_BASE + 0x100000 * slot + 0x1000 * (n - 1).
 * The doorbells are hooked when the guest asks (TD_CMD) and decoding is on,
 * and follow their BAR when the guest moves it; a hook the interface
 * refuses (the port is claimed, e.g. a BAR moved onto COM1) leaves the
 * doorbell unhooked and its errno in TD_HOOK_ERR.
 */
#ifndef KHYVE_PCI_TESTDEV_H
#define KHYVE_PCI_TESTDEV_H

#define TESTDEV_VENDOR 0x1275
#define TESTDEV_DEVICE 0x7e57
#define TESTDEV_DEFAULT_SLOT 4
#define TESTDEV_IO_BASE 0xc000
#define TESTDEV_IO_SIZE 16
#define TESTDEV_IO_DOORBELL 8
#define TESTDEV_MEM_BASE 0xc0000000
#define TESTDEV_BAR_SIZE 0x1000
#define TESTDEV_MSIX_VECTORS 8
#define TESTDEV_MSIX_CAP 0x40
#define TESTDEV_MSIX_PBA 0x800

/* BAR1 registers. */
#define TD_ID          0x00   /* RO 'KHTD' */
#define TD_IO_COUNT    0x04   /* RO doorbell writes the driver counted (I/O hook) */
#define TD_MMIO_COUNT  0x08   /* RO ... (MMIO hook) */
#define TD_CMD         0x0c   /* WO a TD_CMD_*; reads: 0 or the errno of the last command */
#define TD_VECTOR      0x10   /* RW vector for TD_FIRE */
#define TD_FIRE        0x14   /* W: the driver signals TD_VECTOR this many times;
                                 R: signals it has sent so far */
#define TD_IO_EXITS    0x18   /* RO I/O-port writes nobody claimed (exits to userspace) */
#define TD_MMIO_EXITS  0x1c   /* RO MMIO writes nobody claimed */
#define TD_ISR         0x20   /* R: bit 0 INTx asserted; reading lowers it */
#define TD_CFG_EVENTS  0x24   /* RO interrupt-config callbacks the driver got */
#define TD_CFG_LAST    0x28   /* RO the last one (testdrv.h TESTDRV_CFG_*) */
#define TD_RING_GPA    0x2c   /* RW where the driver reads a u32 after each doorbell */
#define TD_RING_VALUE  0x30   /* RO what it read there (through its lease) */
#define TD_MSI_ADDR    0x34   /* RW raw MSI address (below 4 GiB) */
#define TD_MSI_DATA    0x38   /* RW raw MSI data */
#define TD_MSI_FIRE    0x3c   /* W: the driver sends this many raw MSIs; R: sent so far */
#define TD_LEASES      0x40   /* RO leases the driver has signed */
#define TD_STATUS      0x44   /* RO bit 0 I/O doorbell hooked, bit 1 MMIO doorbell hooked */
#define TD_HOOK_ERR    0x48   /* RO errno of the last refused (re)hook, else 0 */
#define TD_ARG         0x4c   /* RW argument of TD_CMD_HOOK_IO_AT */

/* TD_CFG_LAST: vector in bits 15:0, then these flags. */
#define TD_CFG_MASKED  (1 << 16)
#define TD_CFG_MODE    (1 << 17)   /* a mode event (MSI-X on/off), vector bits 0 */
#define TD_CFG_MSIX    (1 << 18)   /* MSI-X mode (else INTx) */

#define TD_CMD_HOOK_IO      1   /* want the I/O doorbell hooked (at BAR0) */
#define TD_CMD_UNHOOK_IO    2
#define TD_CMD_HOOK_MMIO    3   /* want the MMIO doorbell hooked (at BAR3) */
#define TD_CMD_UNHOOK_MMIO  4
#define TD_CMD_HOOK_IO_AT   5   /* try to hook port TD_ARG directly (then unhook): errno */

#define TD_ID_VALUE 0x4454484b

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

struct vm;
struct pci_bus;
struct pci_testdev;

struct pci_testdev *pci_testdev_create(struct vm *vm, struct pci_bus *bus, uint8_t slot,
				       char *err, size_t errlen);
/* After the VM is destroyed (its driver has let go by then). */
void pci_testdev_destroy(struct pci_testdev *t);
#endif

#endif
