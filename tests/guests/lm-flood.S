/*
 * 64-bit: print lines on COM1 forever, a 4 KiB block ("flood: line\n" x
 * 341) per rep outsb, which KVM hands over as one exit. For the shutdown
 * test: with khyve's stdout a pipe nobody reads, the vCPU soon blocks
 * writing the console, and khyve must still stop when told to.
 */
#include "common.h"
	.code64
	.text
	.globl _start
_start:
	lea block(%rip), %rsi
	mov $block_len, %ecx
	mov $COM1, %dx
	rep outsb
	jmp _start
block:
	.rept 341
	.ascii "flood: line\n"
	.endr
	.set block_len, . - block
