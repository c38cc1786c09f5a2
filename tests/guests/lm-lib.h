/*
 * 64-bit helpers for lm-*.S micro-guests: puts (rsi = string), putu (rax)
 * and random (xorshift64 with its state in r14, which the caller seeds).
 */
	.code64
puts:
	push %rax
	push %rdx
1:	lodsb
	test %al, %al
	jz 3f
	mov %al, %ah
	mov $COM1_LSR, %dx
2:	in %dx, %al
	test $LSR_THRE, %al
	jz 2b
	mov $COM1, %dx
	mov %ah, %al
	out %al, %dx
	jmp 1b
3:	pop %rdx
	pop %rax
	ret

/* Print rax in decimal. */
putu:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	sub $32, %rsp
	lea 31(%rsp), %rsi
	movb $0, (%rsi)
	mov $10, %rbx
1:	xor %edx, %edx
	div %rbx
	add $'0', %dl
	dec %rsi
	mov %dl, (%rsi)
	test %rax, %rax
	jnz 1b
	call puts
	add $32, %rsp
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	ret

/* rax <- next xorshift64 value of the state in r14 (callers use the low half). */
random:
	mov %r14, %rax
	shl $13, %rax
	xor %rax, %r14
	mov %r14, %rax
	shr $7, %rax
	xor %rax, %r14
	mov %r14, %rax
	shl $17, %rax
	xor %rax, %r14
	mov %r14, %rax
	ret
