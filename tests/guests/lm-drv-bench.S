/*
 * The guest half of bench/drv_bench.c (the driver interface benchmark).
 * The host writes BENCH_K (writes per phase; it may change it between
 * phases) and BENCH_REPS before the guest starts. Per repetition:
 *   CTL <- 1, BENCH_K 2-byte writes to HOOKED (an ioeventfd hook), CTL <- 2,
 *   CTL <- 3, BENCH_K 2-byte writes to USER (a userspace handler), CTL <- 4;
 * then CTL <- 5 and it waits for interrupts with HLT: IDT 0x41, 0x42 and
 * 0x43 (IOAPIC pin 22, edge) all count at BENCH_COUNT, EOI, and ring the
 * ping-pong doorbell PP (another hook), from whose callback the host sends
 * the next interrupt. CTL and USER are the host's userspace ports.
 */
#include "common.h"
#include "drv.h"
#define CTL 0x520
#define HOOKED 0x524
#define USER 0x528
#define PP 0x52c
#define BENCH_K 0x6200
#define BENCH_REPS 0x6204
#define BENCH_COUNT 0x6208
#define IOAPIC 0xfec00000
#define BENCH_GSI 22
	.code64
	.text
	.globl _start
_start:
	movl $0, BENCH_COUNT
	mov $0x41, %edi
	lea handler(%rip), %rsi
	call set_gate
	mov $0x42, %edi
	call set_gate
	mov $0x43, %edi
	call set_gate
	call x2apic_on
	mov $IOAPIC, %rdi
	movl $(0x10 + 2 * BENCH_GSI), (%rdi)
	movl $0x43, 0x10(%rdi)          /* edge, active high, unmasked, fixed */
	movl $(0x11 + 2 * BENCH_GSI), (%rdi)
	movl $0, 0x10(%rdi)             /* destination APIC ID 0 */

	mov BENCH_REPS, %ebx
rep:
	mov $CTL, %dx
	mov $1, %eax
	out %eax, %dx
	mov BENCH_K, %ecx
	mov $HOOKED, %dx
1:	out %ax, %dx
	dec %ecx
	jnz 1b
	mov $CTL, %dx
	mov $2, %eax
	out %eax, %dx
	mov $3, %eax
	out %eax, %dx
	mov BENCH_K, %ecx
	mov $USER, %dx
1:	out %ax, %dx
	dec %ecx
	jnz 1b
	mov $CTL, %dx
	mov $4, %eax
	out %eax, %dx
	dec %ebx
	jnz rep

	mov $5, %eax
	out %eax, %dx
	sti
1:	hlt
	jmp 1b

handler:
	push %rax
	push %rdx
	lock incl BENCH_COUNT
	call eoi
	mov $PP, %dx
	out %al, %dx
	pop %rdx
	pop %rax
	iretq

#include "lm-lib.h"
#include "lm-drv-lib.h"
