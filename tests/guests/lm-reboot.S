/* 64-bit: reset through 0xcf9 (SYS_RST|RST_CPU) as Linux's reboot=pci does. Exit 0. */
#include "common.h"
	.code64
	.text
	.globl _start
_start:
	lea msg(%rip), %rsi
	call puts
	mov $RESET_CF9, %dx
	mov $0x06, %al
	out %al, %dx
	hlt
#include "lm-lib.h"
msg:	.asciz "khyve micro-guest: rebooting\n"
