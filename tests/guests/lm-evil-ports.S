/*
 * Malicious guest: every I/O port, 0 to 0xffff, written and read: ports
 * nobody claims, and the claimed ones (UARTs, PCI configuration, power,
 * the hot-plug block, the in-kernel PIC/PIT) with garbage. Below 0x1000,
 * where every device khyve has lives, each port gets every access size
 * (1, 2 and 4 bytes) in both directions; above, each port one write and one
 * read, the size rotating 1, 2, 4 from port to port (every exit costs
 * ~0.2 ms in the testbox, and six per port would take 80 s there).
 *
 * The value written varies with the port. Only the bits that would
 * legitimately end the VM are kept out of the garbage: SLP_EN of the ACPI
 * sleep register (0x600), RST_CPU of 0xcf9 and the i8042 pulse-reset
 * command (0x64): a guest that sets those has asked for a power-off or a
 * reset, which is not what this guest tests. Interrupts stay disabled
 * throughout, so a reprogrammed PIC or PIT changes nothing.
 *
 * Then COM1 is put back in a sane state (the sweep wrote LCR, MCR, ...),
 * the guest prints "survived" and powers off (exit 1).
 */
#include "common.h"
#define I8042_CMD 0x64
	.code64
	.text
	.globl _start
_start:
	cli
	xor %r12d, %r12d                /* port */
	mov $1, %r13d
next_port:
	mov %r12d, %edx
	imul $0x9e3779b1, %r12d, %eax   /* garbage that differs per port */
	xor $0x5a5aa5a5, %eax
	cmp $I8042_CMD, %r12d
	je tame
	cmp $SLEEP_CTL, %r12d
	je tame
	cmp $RESET_CF9, %r12d
	jne 1f
tame:	and $~0x24242424, %eax          /* no SLP_EN (0x20), RST_CPU (4), 0xfe */
1:	cmp $0x1000, %r12d
	jae one_size
	outb %al, %dx
	outw %ax, %dx
	outl %eax, %dx
	inb %dx, %al
	inw %dx, %ax
	inl %dx, %eax
	jmp done_port
one_size:
	dec %r13d                       /* r13d: 3, 2, 1, 3, 2, 1, ... */
	jnz 2f
	mov $3, %r13d
2:	cmp $2, %r13d
	ja 3f
	je 4f
	outb %al, %dx
	inb %dx, %al
	jmp done_port
3:	outw %ax, %dx
	inw %dx, %ax
	jmp done_port
4:	outl %eax, %dx
	inl %dx, %eax
done_port:
	inc %r12d
	cmp $0x10000, %r12d
	jb next_port

	/* COM1 back to 8N1, no loopback, no interrupts, FIFO off. */
	mov $(COM1 + 3), %dx
	mov $0x03, %al
	out %al, %dx
	mov $(COM1 + 4), %dx
	xor %al, %al
	out %al, %dx
	mov $(COM1 + 1), %dx
	out %al, %dx
	mov $(COM1 + 2), %dx
	out %al, %dx
	mov $'\n', %al                  /* end whatever garbage line was printed */
	mov $COM1, %dx
	out %al, %dx

	lea msg(%rip), %rsi
	call puts
	POWEROFF
5:	cli
	hlt
	jmp 5b
#include "lm-lib.h"
msg:	.asciz "evil-ports: every port written and read: survived\n"
