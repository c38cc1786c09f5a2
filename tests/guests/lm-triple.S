/* 64-bit: an empty IDT and a breakpoint: #BP -> #GP -> #DF -> triple fault. Exit 3. */
#include "common.h"
	.code64
	.text
	.globl _start
_start:
	lea msg(%rip), %rsi
	call puts
	lidt idtr(%rip)
	int3
	hlt
#include "lm-lib.h"
idtr:	.word 0
	.quad 0
msg:	.asciz "khyve micro-guest: about to triple fault\n"
