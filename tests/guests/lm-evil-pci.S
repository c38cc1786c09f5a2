/*
 * Malicious guest: PCI configuration mechanism #1 programmed badly.
 *
 *   - bus 0: every dword register of every slot and function, a random
 *     value written through 0xcfc and read back;
 *   - the host bridge (00:00.0) and an empty slot (00:05.0): every byte
 *     offset with every access size in both directions, i.e. unaligned
 *     accesses and accesses that run past 0xcff;
 *   - buses 1-255: register 0 of every slot, written and read;
 *   - addresses without the enable bit (31), with the reserved bits 24-30
 *     and the low two bits set;
 *   - the address latch itself accessed as bytes and words (0xcf8-0xcfb;
 *     0xcf9 byte-wide is the reset register: written without RST_CPU).
 *
 * Then the host bridge must still say what it is (vendor/device
 * 1275:1275, class 06/00/00): "evil-pci: host bridge intact", or
 * "evil-pci: host bridge CHANGED"; then "survived" and power-off (exit 1).
 */
#include "common.h"
#define CFG_ADDR 0xcf8
#define CFG_DATA 0xcfc
#define ENABLE   0x80000000
	.code64
	.text
	.globl _start
_start:
	cli
	mov $0x2545f4914f6cdd1d, %r14   /* xorshift64 state */

	/* Bus 0: every register of every function. r12 = address. */
	mov $ENABLE, %r12d
1:	call latch
	call random
	mov $CFG_DATA, %dx
	outl %eax, %dx
	inl %dx, %eax
	add $4, %r12d
	cmp $(ENABLE | 0x10000), %r12d
	jb 1b

	/* Every offset, size and direction on 00:00.0 and 00:05.0. */
	mov $ENABLE, %r12d
	call every_offset
	mov $(ENABLE | 5 << 11), %r12d
	call every_offset

	/* Buses 1-255: register 0 of every slot (function 0). */
	mov $(ENABLE | 1 << 16), %r12d
2:	call latch
	call random
	mov $CFG_DATA, %dx
	outl %eax, %dx
	inl %dx, %eax
	add $(1 << 11), %r12d
	cmp $(ENABLE | 0x1000000), %r12d
	jb 2b

	/* The enable bit clear; reserved bits set. */
	xor %r12d, %r12d
3:	call latch
	call random
	mov $CFG_DATA, %dx
	outl %eax, %dx
	inl %dx, %eax
	mov %r12d, %eax
	or $0x7f000003, %eax            /* reserved bits, then through the latch */
	mov $CFG_ADDR, %dx
	outl %eax, %dx
	inl %dx, %eax
	mov $CFG_DATA, %dx
	inl %dx, %eax
	add $4, %r12d
	cmp $0x100, %r12d
	jb 3b

	/* The latch as bytes and words; 0xcf9 without RST_CPU (bit 2). */
	mov $64, %ecx
4:	call random
	and $~0x04040404, %eax
	mov %eax, %r8d                  /* every write below writes r8d */
	mov $CFG_ADDR, %dx
	outb %al, %dx
	inb %dx, %al
	mov %r8d, %eax
	outw %ax, %dx
	inw %dx, %ax
	inc %dx
	mov %r8d, %eax
	outb %al, %dx                   /* 0xcf9 */
	inb %dx, %al
	mov %r8d, %eax
	outw %ax, %dx
	inw %dx, %ax
	inc %dx
	mov %r8d, %eax
	outw %ax, %dx                   /* 0xcfa */
	inl %dx, %eax
	inc %dx
	mov %r8d, %eax
	outb %al, %dx                   /* 0xcfb */
	inl %dx, %eax
	dec %ecx
	jnz 4b

	/* Is the host bridge still itself? */
	mov $ENABLE, %r12d
	call latch
	mov $CFG_DATA, %dx
	inl %dx, %eax
	cmp $0x12751275, %eax
	jne changed
	mov $(ENABLE | 8), %r12d
	call latch
	mov $CFG_DATA, %dx
	inl %dx, %eax
	shr $8, %eax
	cmp $0x060000, %eax
	jne changed
	lea msg_intact(%rip), %rsi
	jmp report
changed:
	lea msg_changed(%rip), %rsi
report:
	call puts
	lea msg_ok(%rip), %rsi
	call puts
	POWEROFF
5:	cli
	hlt
	jmp 5b

/* 0xcf8 <- r12d */
latch:
	mov %r12d, %eax
	mov $CFG_ADDR, %dx
	outl %eax, %dx
	ret

/* Every byte offset of the function at r12d, every size, both directions. */
every_offset:
	push %rbx
	xor %ebx, %ebx                  /* offset 0..255 */
1:	mov %ebx, %eax
	and $0xfc, %eax
	or %r12d, %eax
	mov $CFG_ADDR, %dx
	outl %eax, %dx
	mov %ebx, %edx
	and $3, %edx
	add $CFG_DATA, %edx
	call random
	outb %al, %dx
	inb %dx, %al
	outw %ax, %dx
	inw %dx, %ax
	outl %eax, %dx
	inl %dx, %eax
	inc %ebx
	cmp $256, %ebx
	jb 1b
	pop %rbx
	ret

#include "lm-lib.h"
msg_intact:	.asciz "evil-pci: host bridge intact\n"
msg_changed:	.asciz "evil-pci: host bridge CHANGED\n"
msg_ok:		.asciz "evil-pci: bad configuration programming: survived\n"
