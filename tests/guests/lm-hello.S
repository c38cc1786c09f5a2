/* 64-bit: print a line on COM1 with rep outsb too, then power off. Exit 1. */
#include "common.h"
	.code64
	.text
	.globl _start
_start:
	lea msg(%rip), %rsi
	call puts
	/* A string I/O instruction: KVM hands it over as one exit with count > 1. */
	lea msg2(%rip), %rsi
	mov $msg2_len, %ecx
	mov $COM1, %dx
	rep outsb
	POWEROFF
	hlt
#include "lm-lib.h"
msg:	.asciz "khyve micro-guest: hello from long mode\n"
msg2:	.ascii "khyve micro-guest: rep outsb works\n"
	.set msg2_len, . - msg2
