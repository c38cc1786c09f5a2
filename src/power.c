#include "power.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ioport.h"
#include "vm.h"

#define SLEEP_CTL_SLP_EN   0x20
#define SLEEP_CTL_TYP(v)   (((v) >> 2) & 7)
#define RESET_CF9_RST_CPU  0x04
#define I8042_PULSE_RESET  0xfe

static void sleep_ctl(void *opaque, uint16_t port, unsigned size, bool is_write, uint32_t *val)
{
	struct vm *vm = opaque;
	/*
	 * One port is both SLEEP_CONTROL_REG and SLEEP_STATUS_REG. Reads are the
	 * status: nothing ever wakes, so 0. Linux first writes WAK_STS (0x80) to
	 * clear it; without SLP_EN that write falls through harmlessly.
	 */
	if (!is_write) {
		*val = 0;
		return;
	}
	if ((*val & SLEEP_CTL_SLP_EN) && SLEEP_CTL_TYP(*val) == POWER_S5_SLEEP_TYPE)
		vm_suspend(vm, VM_EXIT_POWEROFF);
	/* Other sleep states (S1-S4) are not offered in \_Sx and are ignored. */
}

void power_reset_control_write(struct vm *vm, uint8_t val)
{
	if (val & RESET_CF9_RST_CPU)
		vm_suspend(vm, VM_EXIT_REBOOT);
}

static void i8042_cmd(void *opaque, uint16_t port, unsigned size, bool is_write, uint32_t *val)
{
	struct vm *vm = opaque;
	if (!is_write) {
		/* Status: output buffer empty, input buffer empty: ready for a command. */
		*val = 0;
		return;
	}
	if ((*val & 0xff) == I8042_PULSE_RESET)
		vm_suspend(vm, VM_EXIT_REBOOT);
}

static int install_reset_vector(struct vm *vm, char *err, size_t errlen)
{
	static const uint8_t stub[16] = {
		0xfa,                   /* cli */
		0xb0, POWER_RESET_VALUE, /* mov al, 0x06 */
		0xba, 0xf9, 0x0c,       /* mov dx, 0xcf9 */
		0xee,                   /* out dx, al */
		0xf4,                   /* hlt */
		0xeb, 0xfd,             /* jmp $-3 (back to hlt) */
	};
	void *p = memmap_translate(&vm->mem, POWER_BIOS_RESET_VECTOR_GPA, sizeof(stub));
	if (!p) {
		snprintf(err, errlen, "power: no RAM at the BIOS reset vector 0x%llx",
			 POWER_BIOS_RESET_VECTOR_GPA);
		return -1;
	}
	memcpy(p, stub, sizeof(stub));
	return 0;
}

int power_register(struct vm *vm, char *err, size_t errlen)
{
	if (install_reset_vector(vm, err, errlen))
		return -1;
	return ioport_register(&vm->io, POWER_SLEEP_CTL_PORT, 1, "acpi-sleep-ctl", sleep_ctl, vm,
			       err, errlen) ||
	       ioport_register(&vm->io, POWER_I8042_CMD_PORT, 1, "i8042-reset", i8042_cmd, vm,
			       err, errlen)
		       ? -1 : 0;
}
