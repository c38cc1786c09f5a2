/*
 * 64-bit: print lines on COM1 forever ("flood: line\n", honouring LSR.THRE
 * like a real driver). For the shutdown test: with khyve's stdout a pipe
 * nobody reads, the vCPU soon blocks writing the console, and khyve must
 * still stop when told to.
 */
#include "common.h"
	.code64
	.text
	.globl _start
_start:
	lea msg(%rip), %rsi
	call puts
	jmp _start
#include "lm-lib.h"
msg:	.asciz "flood: line\n"
