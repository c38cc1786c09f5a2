/*
 * How the guest turns the VM off or resets it.
 *
 * khyve's ACPI is hardware-reduced (no PM1 blocks, no SCI): the FADT points
 * at a sleep control register and a reset register, both I/O ports emulated
 * here. Linux powers off by writing SLP_TYP << 2 | SLP_EN to the sleep
 * control register with the S5 type from the DSDT's \_S5_ package, and
 * reboots through the FADT reset register. The two legacy reset paths Linux
 * falls back to (reboot=k: the i8042's pulse-reset command; reboot=pci: the
 * reset control register at 0xcf9) work too, so every reboot= choice ends in
 * the same status.
 */
#ifndef KHYVE_POWER_H
#define KHYVE_POWER_H

#include <stddef.h>
#include <stdint.h>

#define POWER_SLEEP_CTL_PORT     0x600
#define POWER_RESET_PORT         0xcf9   /* PCI reset control register */
#define POWER_RESET_VALUE        0x06    /* SYS_RST | RST_CPU */
#define POWER_S5_SLEEP_TYPE      5
#define POWER_I8042_CMD_PORT     0x64

/*
 * Where a CPU leaving protected mode for a BIOS reboot jumps: F000:FFF0.
 * There is no BIOS, so khyve puts a 16-byte stub there that resets the VM
 * through 0xcf9. Linux takes that path by default on hardware-reduced ACPI
 * without EFI: reboot_init() picks BOOT_EFI, which falls through to
 * BOOT_BIOS (machine_real_restart) and would otherwise run off into zeros.
 */
#define POWER_BIOS_RESET_VECTOR_GPA 0xffff0ULL

struct vm;

/* The ports above, and the reset-vector stub in guest memory. */
int power_register(struct vm *vm, char *err, size_t errlen);

/*
 * A byte written to 0xcf9. That port sits inside the PCI configuration
 * address register's range (0xcf8-0xcfb, only ever accessed 32 bits wide),
 * so the PCI bus owns the range and forwards byte writes to 0xcf9 here.
 */
void power_reset_control_write(struct vm *vm, uint8_t val);

#endif
