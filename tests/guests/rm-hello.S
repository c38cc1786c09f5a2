/* Real mode: print a line on COM1, then power off. Expect exit status 1. */
#include "common.h"
	.code16
	.text
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov $msg, %si
next:
	lodsb
	test %al, %al
	jz done
	mov %al, %bl
	mov $COM1_LSR, %dx
wait_thre:
	in %dx, %al
	test $LSR_THRE, %al
	jz wait_thre
	mov $COM1, %dx
	mov %bl, %al
	out %al, %dx
	jmp next
done:
	POWEROFF
	hlt
msg:	.asciz "khyve micro-guest: hello from real mode\n"
