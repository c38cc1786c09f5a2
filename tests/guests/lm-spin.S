/*
 * 64-bit spinner for the control-plane tests: stays alive until it is
 * destroyed or killed. It wakes every other vCPU that exists at boot with
 * INIT-SIPI-SIPI (x2APIC ICR, all-excluding-self), prints
 *   "spin: running"
 * and then every vCPU loops forever incrementing its own counter in memory
 * (the BSP's at SPIN_COUNTERS, each AP's at SPIN_COUNTERS + 4 * (its turn
 * to start)) and writing it to SPIN_PORT, a port no device claims, so each
 * iteration is one I/O exit: khyvectl --get-stats sees the counts grow, and
 * rip always lies inside this image.
 */
#include "common.h"
#define SPIN_PORT     0x4f0
#define SPIN_COUNTERS 0x6000          /* BSP; 0x6004: next AP slot; 0x6008...: APs */
	.code64
	.text
	.globl _start
_start:
	movl $0, SPIN_COUNTERS
	movl $0, SPIN_COUNTERS + 4
	WAKE_APS ap_start, ap_end

	lea msg_running(%rip), %rsi
	call puts
	mov $SPIN_PORT, %dx
bsp_loop:
	incl SPIN_COUNTERS
	mov SPIN_COUNTERS, %eax
	out %eax, %dx
	jmp bsp_loop

#include "lm-lib.h"

	/* Real mode, copied to TRAMPOLINE: take a counter slot and spin on it. */
	.code16
ap_start:
	xor %ax, %ax
	mov %ax, %ds
	mov $1, %ebx
	lock xaddl %ebx, SPIN_COUNTERS + 4
	lea SPIN_COUNTERS + 8(,%ebx,4), %ebx
	mov $SPIN_PORT, %dx
1:	addr32 incl (%ebx)
	addr32 mov (%ebx), %eax
	out %eax, %dx
	jmp 1b
ap_end:
	.code64
msg_running:	.asciz "spin: running\n"
