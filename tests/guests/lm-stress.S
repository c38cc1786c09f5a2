/*
 * 64-bit: wake every other vCPU (INIT-SIPI-SIPI, all-excluding-self) and
 * have all of them loop forever, each iteration incrementing a shared
 * counter at 0x6000 and writing an unclaimed I/O port, so that every vCPU
 * keeps exiting to userspace. Never stops by itself: the lock stress test
 * (tests/system/lock_stress.c) watches the counter and stops the VM.
 */
#include "common.h"
#define COUNTER      0x6000
#define BUSY_PORT    0x510
	.code64
	.text
	.globl _start
_start:
	movl $0, COUNTER
	WAKE_APS ap_start, ap_end
	mov $BUSY_PORT, %dx
1:	lock incl COUNTER
	out %al, %dx
	jmp 1b

	.code16
ap_start:
	xor %ax, %ax
	mov %ax, %ds
	mov $BUSY_PORT, %dx
1:	lock incl COUNTER
	out %al, %dx
	jmp 1b
ap_end:
