/* Shared by the micro-guests: ports and small macros (GNU as, AT&T syntax). */
#define COM1        0x3f8
#define COM1_LSR    (COM1 + 5)
#define LSR_THRE    0x20
#define SLEEP_CTL   0x600
#define S5_POWEROFF ((5 << 2) | 0x20)
#define RESET_CF9   0xcf9

/* Power the VM off through the ACPI sleep control register (exit status 1). */
.macro POWEROFF
	mov $SLEEP_CTL, %dx
	mov $S5_POWEROFF, %al
	out %al, %dx
.endm
