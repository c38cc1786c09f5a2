/*
 * 64-bit: wake every other vCPU (INIT-SIPI-SIPI, all-excluding-self); each
 * vCPU increments a shared counter at 0x6000 once, then sleeps in HLT with
 * interrupts enabled forever (halted inside KVM, no exits). The idle
 * counterpart of lm-stress.S for the locking benchmark.
 */
#include "common.h"
#define COUNTER      0x6000
#define TRAMPOLINE   0x8000
	.code64
	.text
	.globl _start
_start:
	lea ap_start(%rip), %rsi
	mov $TRAMPOLINE, %rdi
	mov $(ap_end - ap_start), %ecx
	rep movsb
	movl $0, COUNTER
	mov $0x1b, %ecx                 /* IA32_APIC_BASE: enable + x2APIC */
	rdmsr
	or $0xc00, %eax
	wrmsr
	mov $0x830, %ecx                /* x2APIC ICR */
	xor %edx, %edx
	mov $0x000c4500, %eax           /* INIT, all excluding self */
	wrmsr
	mov $(0x000c4600 | (TRAMPOLINE >> 12)), %eax
	wrmsr
	wrmsr
	lock incl COUNTER
1:	sti
	hlt
	jmp 1b

	.code16
ap_start:
	xor %ax, %ax
	mov %ax, %ds
	lock incl COUNTER
1:	sti
	hlt
	jmp 1b
ap_end:
