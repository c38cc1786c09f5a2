/*
 * Malicious guest: string port I/O with large counts (run with -m 256M).
 * KVM emulates rep ins a page of data at a time (up to 4096 elements in
 * one exit to khyve), rep outs one element an exit; so:
 *
 *   - rep insl, 16 MiB, from a port nobody claims (must read all-ones):
 *     4096 exits of 1024 accesses each;
 *   - rep insb, 1 MiB, from COM1's LSR;
 *   - rep outsb, 8192 bytes, to the port nobody claims, and rep outsw,
 *     8192 words, to COM2's THR (no backend);
 *   - rep outsb backwards (DF=1);
 *   - rep insb whose destination runs off the top of RAM into the hole,
 *     and rep outsb whose source lies in the hole.
 *
 * Prints "survived" and powers off (exit 1).
 */
#include "common.h"
#define RAM_TOP   0x10000000
#define BUF_OUT   0x1000000
#define BUF_IN    0x2000000
#define NOBODY    0x80                  /* the POST port: nobody's */
#define COM2      0x2f8
	.code64
	.text
	.globl _start
_start:
	cli
	cld
	mov $NOBODY, %dx
	mov $BUF_IN, %rdi
	mov $0x400000, %rcx
	rep insl
	cmpl $0xffffffff, BUF_IN + 0xfffffc
	jne wrong

	mov $COM1_LSR, %dx
	mov $BUF_IN, %rdi
	mov $0x100000, %rcx
	rep insb

	mov $NOBODY, %dx
	mov $BUF_OUT, %rsi
	mov $0x2000, %rcx
	rep outsb
	mov $COM2, %dx
	mov $BUF_OUT, %rsi
	mov $0x2000, %rcx
	rep outsw

	std
	mov $NOBODY, %dx
	mov $(BUF_OUT + 0xfff), %rsi
	mov $0x1000, %rcx
	rep outsb
	cld

	/* Off the end of RAM, and out of the hole. */
	mov $NOBODY, %dx
	mov $(RAM_TOP - 0x800), %rdi
	mov $0x1000, %rcx
	rep insb
	mov $0xd0000000, %esi
	mov $0x1000, %rcx
	rep outsb

	lea msg(%rip), %rsi
	call puts
	POWEROFF
1:	cli
	hlt
	jmp 1b
wrong:
	lea msg_wrong(%rip), %rsi
	call puts
	jmp 1b
#include "lm-lib.h"
msg:		.asciz "evil-rep: rep ins/outs with huge counts: survived\n"
msg_wrong:	.asciz "evil-rep: rep insl from an empty port did not read all-ones\n"
