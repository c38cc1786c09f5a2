/*
 * Code helpers of the lm-drv-*.S micro-guests (drv.h says what they do).
 * Include after the guest's code and after lm-lib.h (puts, putu).
 */
	.code64
/* r12 = config address of the device whose ID is TESTDEV_VENDOR:TESTDEV_DEVICE. */
find_testdev:
	push %rbx
	mov $1, %ebx
1:	mov %ebx, %eax
	shl $11, %eax
	or $0x80000000, %eax
	mov %eax, %r12d
	mov $0xcf8, %dx
	out %eax, %dx
	mov $0xcfc, %dx
	in %dx, %eax
	cmp $((TESTDEV_DEVICE << 16) | TESTDEV_VENDOR), %eax
	je 2f
	inc %ebx
	cmp $32, %ebx
	jb 1b
	lea msg_no_testdev(%rip), %rsi
	jmp fail
2:	pop %rbx
	ret

/* eax = config dword at register edi of the test device. */
cfg_rd:
	push %rdx
	mov %r12d, %eax
	or %edi, %eax
	mov $0xcf8, %dx
	out %eax, %dx
	mov $0xcfc, %dx
	in %dx, %eax
	pop %rdx
	ret

/* Config dword at register edi = esi. */
cfg_wr:
	push %rax
	push %rdx
	mov %r12d, %eax
	or %edi, %eax
	mov $0xcf8, %dx
	out %eax, %dx
	mov $0xcfc, %dx
	mov %esi, %eax
	out %eax, %dx
	pop %rdx
	pop %rax
	ret

/* Config word at register edi (2-aligned) = si. */
cfg_wr16:
	push %rax
	push %rdx
	mov %edi, %eax
	and $0xfc, %eax
	or %r12d, %eax
	mov $0xcf8, %dx
	out %eax, %dx
	mov %edi, %edx
	and $2, %edx
	add $0xcfc, %edx
	mov %esi, %eax
	out %ax, %dx
	pop %rdx
	pop %rax
	ret

/*
 * Wait until the register at offset edi of BAR1 reads esi (DRV_POLLS reads
 * at most). eax = the last value read; ZF set when it matched.
 */
wait_td:
	push %rcx
	mov $DRV_POLLS, %ecx
1:	mov (%r15,%rdi), %eax
	cmp %esi, %eax
	je 2f
	pause
	dec %ecx
	jnz 1b
	cmp %esi, %eax
2:	pop %rcx
	ret

/*
 * Wait until the u32 at rdi reaches esi (interrupts enabled; each round
 * also reads a register, an exit, so the wait is bounded in real work).
 * eax = the last value; ZF set when it matched.
 */
wait_mem:
	push %rcx
	mov $DRV_POLLS, %ecx
	sti
1:	mov (%rdi), %eax
	cmp %esi, %eax
	je 2f
	mov TD_ID(%r15), %eax
	dec %ecx
	jnz 1b
	mov (%rdi), %eax
	cmp %esi, %eax
2:	pop %rcx
	ret

/* Let the host run for a while: n register reads (edi = n), interrupts on. */
idle:
	push %rcx
	push %rax
	mov %edi, %ecx
	sti
1:	mov TD_ID(%r15), %eax
	dec %ecx
	jnz 1b
	pop %rax
	pop %rcx
	ret

/* If eax != esi: print "FAIL: <rdi> got <eax> expected <esi>" and stop. */
check:
	cmp %esi, %eax
	jne 1f
	ret
1:	push %rax
	push %rsi
	mov %rdi, %rsi
	push %rsi
	lea msg_fail(%rip), %rsi
	call puts
	pop %rsi
	call puts
	lea msg_got(%rip), %rsi
	call puts
	pop %rbx
	pop %rax
	call putu
	lea msg_expected(%rip), %rsi
	call puts
	mov %rbx, %rax
	call putu
	lea msg_nl(%rip), %rsi
	call puts
	jmp stop

/* Print "<rdi>: <eax>\n". */
report:
	push %rax
	push %rsi
	mov %rdi, %rsi
	call puts
	lea msg_colon(%rip), %rsi
	call puts
	mov 8(%rsp), %rax
	mov %eax, %eax
	call putu
	lea msg_nl(%rip), %rsi
	call puts
	pop %rsi
	pop %rax
	ret

/* Print "FAIL: <rsi>\n" and stop (exit status 2: halted). */
fail:
	push %rsi
	lea msg_fail(%rip), %rsi
	call puts
	pop %rsi
	call puts
	lea msg_nl(%rip), %rsi
	call puts
stop:
	cli
	hlt
	jmp stop

/* x2APIC on, software-enabled (SVR), TPR 0. */
x2apic_on:
	push %rax
	push %rcx
	push %rdx
	mov $MSR_APIC_BASE, %ecx
	rdmsr
	or $0xc00, %eax
	wrmsr
	mov $MSR_X2APIC_SVR, %ecx
	mov $0x1ff, %eax
	xor %edx, %edx
	wrmsr
	mov $MSR_X2APIC_TPR, %ecx
	xor %eax, %eax
	wrmsr
	lidt idt_desc(%rip)
	pop %rdx
	pop %rcx
	pop %rax
	ret

/* IDT gate edi -> handler rsi (64-bit interrupt gate, handlers below 4 GiB). */
set_gate:
	push %rax
	push %rdi
	shl $4, %edi
	add $DRV_IDT, %edi
	mov %esi, %eax
	mov %ax, (%rdi)
	movw $CODE_SELECTOR, 2(%rdi)
	movw $0x8e00, 4(%rdi)
	shr $16, %eax
	mov %ax, 6(%rdi)
	movq $0, 8(%rdi)
	pop %rdi
	pop %rax
	ret

/* End of interrupt, x2APIC style. */
eoi:
	push %rax
	push %rcx
	push %rdx
	mov $MSR_X2APIC_EOI, %ecx
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	pop %rdx
	pop %rcx
	pop %rax
	ret

	.balign 8
idt_desc:
	.word 256 * 16 - 1
	.quad DRV_IDT

msg_no_testdev:	.asciz "no test device on bus 0 (-o pci.testdev=true?)"
msg_fail:	.asciz "FAIL: "
msg_got:	.asciz " got "
msg_expected:	.asciz " expected "
msg_colon:	.asciz ": "
msg_nl:		.asciz "\n"
