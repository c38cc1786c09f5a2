/*
 * Malicious guest: a triple fault the hard way. An IDT full of not-present
 * gates, the stack pointer in the MMIO hole and interrupts on: the #UD
 * finds no gate (#NP), nor does the #NP (#DF), nor the #DF: shutdown.
 * khyve must exit with bhyve's status 3 for it.
 */
#include "common.h"
	.code64
	.text
	.globl _start
_start:
	lea msg(%rip), %rsi
	call puts
	lidt idtr(%rip)
	mov $0xd0000000, %esp           /* in the hole: nothing can be pushed there */
	sti
	ud2
1:	hlt
	jmp 1b
#include "lm-lib.h"
	.balign 16
idtr:	.word 0xfff
	.quad idt
msg:	.asciz "evil-triple: about to triple fault\n"
	.balign 16
idt:	.fill 256 * 16, 1, 0
