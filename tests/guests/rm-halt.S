/* Real mode: say so, then halt with interrupts disabled. Expect exit status 2. */
#include "common.h"
	.code16
	.text
	.globl _start
_start:
	cli
	mov $COM1, %dx
	mov $'H', %al
	out %al, %dx
	mov $'\n', %al
	out %al, %dx
1:	hlt
	jmp 1b
