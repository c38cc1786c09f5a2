/*
 * 64-bit: write the sandbox test hook's port (run khyve with
 * -o debug.forbidden-syscall-port=0x510), whose handler makes a system call
 * that is on no allow-list. With the sandbox (the default) khyve dies of
 * SIGSYS in the middle of the write; with --no-sandbox the call just fails
 * and the guest prints "survived" and powers off (exit 1).
 */
#include "common.h"
#define FORBIDDEN_SYSCALL_PORT 0x510
	.code64
	.text
	.globl _start
_start:
	lea msg(%rip), %rsi
	call puts
	mov $FORBIDDEN_SYSCALL_PORT, %dx
	mov $1, %al
	out %al, %dx
	lea msg_ok(%rip), %rsi
	call puts
	POWEROFF
1:	cli
	hlt
	jmp 1b
#include "lm-lib.h"
msg:	.asciz "sandbox-probe: writing the forbidden-syscall port\n"
msg_ok:	.asciz "sandbox-probe: survived\n"
