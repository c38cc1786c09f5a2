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

/*
 * SMP start as firmware-less code does it: copy the real-mode trampoline
 * [start, end) to 0x8000, switch this vCPU's APIC to x2APIC mode, and wake
 * every other vCPU there with INIT then SIPI twice (all-excluding-self
 * shorthand). Clobbers rax, rcx, rdx, rsi, rdi. 64-bit code only.
 */
#define AP_TRAMPOLINE 0x8000
.macro WAKE_APS start, end
	lea \start(%rip), %rsi
	mov $AP_TRAMPOLINE, %rdi
	mov $(\end - \start), %ecx
	rep movsb
	mov $0x1b, %ecx                 /* IA32_APIC_BASE: enable + x2APIC */
	rdmsr
	or $0xc00, %eax
	wrmsr
	mov $0x830, %ecx                /* x2APIC ICR */
	xor %edx, %edx
	mov $0x000c4500, %eax           /* INIT, all excluding self */
	wrmsr
	mov $(0x000c4600 | (AP_TRAMPOLINE >> 12)), %eax  /* SIPI */
	wrmsr
	wrmsr
.endm
