/*
 * 64-bit: wake every other vCPU (INIT-SIPI-SIPI, all-excluding-self); each
 * vCPU increments a shared counter at 0x6000 once, then sleeps in HLT with
 * interrupts enabled forever (halted inside KVM, no exits). The idle
 * counterpart of lm-stress.S for the locking benchmark.
 */
#include "common.h"
#define COUNTER      0x6000
	.code64
	.text
	.globl _start
_start:
	movl $0, COUNTER
	WAKE_APS ap_start, ap_end
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
