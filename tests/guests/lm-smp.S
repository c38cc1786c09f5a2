/*
 * 64-bit SMP start: count the enabled processors in the ACPI MADT (found via
 * the RSDP in the BIOS area, as an OS does), wake every other vCPU with
 * INIT-SIPI-SIPI (x2APIC ICR, all-excluding-self shorthand), let each AP
 * increment a counter from a real-mode trampoline, and report
 *   "smp: <running> of <madt-enabled> vCPUs running"
 * then power off (exit 1). On timeout it reports what it has and halts.
 */
#include "common.h"
#define COUNTER      0x6000
	.code64
	.text
	.globl _start
_start:
	/* RSDP -> XSDT */
	mov $0xe0000, %rbx
	mov $0x2052545020445352, %rax   /* "RSD PTR " */
	cmp %rax, (%rbx)
	jne no_acpi
	mov 24(%rbx), %rbx              /* XsdtAddress */
	mov 4(%rbx), %ecx
	lea 36(%rbx), %rsi
	lea (%rbx,%rcx), %rdi
find_madt:
	cmp %rdi, %rsi
	jae no_acpi
	mov (%rsi), %rax
	cmpl $0x43495041, (%rax)        /* "APIC" */
	je found_madt
	add $8, %rsi
	jmp find_madt
found_madt:
	mov 4(%rax), %ecx
	lea 44(%rax), %rsi
	lea (%rax,%rcx), %rdi
	xor %r12, %r12                  /* enabled processors */
next_entry:
	cmp %rdi, %rsi
	jae counted
	movzbl (%rsi), %eax
	movzbl 1(%rsi), %edx
	test %edx, %edx
	jz counted                      /* malformed: stop rather than loop */
	cmp $0, %eax
	jne 1f
	testl $1, 4(%rsi)
	jz 2f
	inc %r12
	jmp 2f
1:	cmp $9, %eax
	jne 2f
	testl $1, 8(%rsi)
	jz 2f
	inc %r12
2:	add %rdx, %rsi
	jmp next_entry
counted:
	movl $0, COUNTER
	WAKE_APS ap_start, ap_end

	mov %r12, %r13
	dec %r13                        /* APs expected */
	mov $4000000000, %r14           /* ~20 s at 5 ns an iteration */
wait:
	mov COUNTER, %eax
	cmp %r13, %rax
	jae report
	pause
	dec %r14
	jnz wait
report:
	lea msg_smp(%rip), %rsi
	call puts
	mov COUNTER, %eax
	inc %rax                        /* + the BSP */
	call putu
	lea msg_of(%rip), %rsi
	call puts
	mov %r12, %rax
	call putu
	lea msg_tail(%rip), %rsi
	call puts
	mov COUNTER, %eax
	cmp %r13, %rax
	jb stuck
	POWEROFF
stuck:
	cli
	hlt
	jmp stuck
no_acpi:
	lea msg_noacpi(%rip), %rsi
	call puts
	jmp stuck

#include "lm-lib.h"

	.code16
ap_start:
	xor %ax, %ax
	mov %ax, %ds
	lock incl COUNTER
1:	cli
	hlt
	jmp 1b
ap_end:
	.code64
msg_smp:	.asciz "smp: "
msg_of:		.asciz " of "
msg_tail:	.asciz " vCPUs running\n"
msg_noacpi:	.asciz "smp: no ACPI tables found\n"
