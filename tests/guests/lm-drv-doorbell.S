/*
 * Doorbells through the driver interface (ioeventfd hooks), with the test
 * device (-o pci.testdev=true):
 *   - the test driver hooks BAR0's doorbell port; the guest writes it N
 *     times (storing i at DRV_RING first); the driver counts exactly N, no
 *     write exits to userspace, and its worker read N at DRV_RING through
 *     its lease;
 *   - after unhook, M more writes: the driver's count stays N and all M
 *     exit to userspace (unclaimed I/O-port writes grow by M);
 *   - the same for the MMIO doorbell in BAR3;
 *   - hooking ports a device or KVM claims is refused (COM1, the PIT, the
 *     PCI configuration port), a free one is not;
 *   - the hook follows BAR0: moved onto COM1 it is refused (EBUSY), moved
 *     to a free range it is hooked there and counts.
 * Prints "drv-doorbell: ok" and powers off; "FAIL: ..." and halts otherwise.
 */
#include "common.h"
#include "drv.h"
#define N 1000
#define M 100
#define EBUSY 16
	.code64
	.text
	.globl _start
_start:
	call find_testdev
	mov $PCI_BAR(0), %edi
	call cfg_rd
	and $0xfffc, %eax
	mov %rax, %r14
	mov $PCI_BAR(1), %edi
	call cfg_rd
	and $0xfffffff0, %eax
	mov %rax, %r15
	mov $PCI_BAR(3), %edi
	call cfg_rd
	and $0xfffffff0, %eax
	mov %rax, %r13
	mov $4, %edi                    /* command: I/O + memory decoding */
	mov $3, %esi
	call cfg_wr16

	mov TD_ID(%r15), %eax
	mov $TD_ID_VALUE, %esi
	lea m_id(%rip), %rdi
	call check
	movl $DRV_RING, TD_RING_GPA(%r15)
	movl $0, DRV_RING

	/* ---- I/O doorbell, hooked ---- */
	movl $TD_CMD_HOOK_IO, TD_CMD(%r15)
	mov TD_CMD(%r15), %eax
	xor %esi, %esi
	lea m_hook_io(%rip), %rdi
	call check
	mov TD_STATUS(%r15), %eax
	and $1, %eax
	mov $1, %esi
	lea m_hooked_io(%rip), %rdi
	call check
	mov TD_IO_EXITS(%r15), %ebp     /* unclaimed port writes so far */
	lea TESTDEV_IO_DOORBELL(%r14), %edx
	mov $1, %ecx
1:	mov %ecx, DRV_RING
	mov %cx, %ax
	out %ax, %dx
	inc %ecx
	cmp $N, %ecx
	jbe 1b
	mov $TD_IO_COUNT, %edi
	mov $N, %esi
	call wait_td
	lea m_io_count(%rip), %rdi
	call report
	call check
	mov TD_IO_EXITS(%r15), %eax
	mov %ebp, %esi
	lea m_io_no_exits(%rip), %rdi
	call check
	mov $TD_RING_VALUE, %edi
	mov $N, %esi
	call wait_td
	lea m_ring(%rip), %rdi
	call report
	call check

	/* ---- unhooked: the count stays, the writes exit ---- */
	movl $TD_CMD_UNHOOK_IO, TD_CMD(%r15)
	mov TD_STATUS(%r15), %eax
	and $1, %eax
	xor %esi, %esi
	lea m_unhooked_io(%rip), %rdi
	call check
	lea TESTDEV_IO_DOORBELL(%r14), %edx
	mov $M, %ecx
1:	out %ax, %dx
	dec %ecx
	jnz 1b
	mov $20000, %edi
	call idle
	mov TD_IO_COUNT(%r15), %eax
	mov $N, %esi
	lea m_io_count_after(%rip), %rdi
	call report
	call check
	mov TD_IO_EXITS(%r15), %eax
	sub %ebp, %eax
	mov $M, %esi
	lea m_io_exits(%rip), %rdi
	call report
	call check

	/* ---- MMIO doorbell, hooked ---- */
	movl $TD_CMD_HOOK_MMIO, TD_CMD(%r15)
	mov TD_CMD(%r15), %eax
	xor %esi, %esi
	lea m_hook_mmio(%rip), %rdi
	call check
	mov TD_MMIO_EXITS(%r15), %ebp
	mov $N, %ecx
1:	movl %ecx, (%r13)
	dec %ecx
	jnz 1b
	mov $TD_MMIO_COUNT, %edi
	mov $N, %esi
	call wait_td
	lea m_mmio_count(%rip), %rdi
	call report
	call check
	mov TD_MMIO_EXITS(%r15), %eax
	mov %ebp, %esi
	lea m_mmio_no_exits(%rip), %rdi
	call check
	movl $TD_CMD_UNHOOK_MMIO, TD_CMD(%r15)
	mov $M, %ecx
1:	movl %ecx, (%r13)
	dec %ecx
	jnz 1b
	mov $20000, %edi
	call idle
	mov TD_MMIO_COUNT(%r15), %eax
	mov $N, %esi
	lea m_mmio_count_after(%rip), %rdi
	call report
	call check
	mov TD_MMIO_EXITS(%r15), %eax
	sub %ebp, %eax
	mov $M, %esi
	lea m_mmio_exits(%rip), %rdi
	call report
	call check

	/* ---- claimed ports are refused ---- */
	movl $0x3f8, TD_ARG(%r15)       /* COM1: the UART claims it */
	movl $TD_CMD_HOOK_IO_AT, TD_CMD(%r15)
	mov TD_CMD(%r15), %eax
	mov $EBUSY, %esi
	lea m_claim_com1(%rip), %rdi
	call check
	movl $0x40, TD_ARG(%r15)        /* the PIT: KVM answers it */
	movl $TD_CMD_HOOK_IO_AT, TD_CMD(%r15)
	mov TD_CMD(%r15), %eax
	mov $EBUSY, %esi
	lea m_claim_pit(%rip), %rdi
	call check
	movl $0xcfc, TD_ARG(%r15)       /* PCI configuration data */
	movl $TD_CMD_HOOK_IO_AT, TD_CMD(%r15)
	mov TD_CMD(%r15), %eax
	mov $EBUSY, %esi
	lea m_claim_pci(%rip), %rdi
	call check
	movl $0x3f0, TD_ARG(%r15)       /* nobody's */
	movl $TD_CMD_HOOK_IO_AT, TD_CMD(%r15)
	mov TD_CMD(%r15), %eax
	xor %esi, %esi
	lea m_claim_free(%rip), %rdi
	call check

	/* ---- the hook follows BAR0 ---- */
	movl $TD_CMD_HOOK_IO, TD_CMD(%r15)
	mov $PCI_BAR(0), %edi
	mov $0x3f1, %esi                /* doorbell at 0x3f8: COM1 */
	call cfg_wr
	mov TD_HOOK_ERR(%r15), %eax
	mov $EBUSY, %esi
	lea m_move_com1(%rip), %rdi
	call check
	mov TD_STATUS(%r15), %eax
	and $1, %eax
	xor %esi, %esi
	lea m_move_com1_unhooked(%rip), %rdi
	call check
	mov $PCI_BAR(0), %edi
	mov $0xd001, %esi
	call cfg_wr
	mov TD_STATUS(%r15), %eax
	and $1, %eax
	mov $1, %esi
	lea m_move_hooked(%rip), %rdi
	call check
	mov TD_IO_EXITS(%r15), %ebp
	mov $(0xd000 + TESTDEV_IO_DOORBELL), %edx
	mov $10, %ecx
1:	out %ax, %dx
	dec %ecx
	jnz 1b
	mov $TD_IO_COUNT, %edi
	mov $(N + 10), %esi
	call wait_td
	lea m_move_count(%rip), %rdi
	call report
	call check
	mov TD_IO_EXITS(%r15), %eax
	mov %ebp, %esi
	lea m_io_no_exits(%rip), %rdi
	call check
	mov TD_LEASES(%r15), %eax
	lea m_leases(%rip), %rdi
	call report

	lea m_ok(%rip), %rsi
	call puts
	POWEROFF
	jmp stop

#include "lm-lib.h"
#include "lm-drv-lib.h"

m_id:		.asciz "test device ID"
m_hook_io:	.asciz "hooking the I/O doorbell"
m_hooked_io:	.asciz "I/O doorbell hooked"
m_io_count:	.asciz "I/O doorbell writes counted by the driver"
m_io_no_exits:	.asciz "hooked I/O doorbell writes that exited to userspace (unchanged)"
m_ring:		.asciz "ring value the driver read through its lease"
m_unhooked_io:	.asciz "I/O doorbell unhooked"
m_io_count_after: .asciz "driver's count after unhook"
m_io_exits:	.asciz "unhooked I/O doorbell writes that exited to userspace"
m_hook_mmio:	.asciz "hooking the MMIO doorbell"
m_mmio_count:	.asciz "MMIO doorbell writes counted by the driver"
m_mmio_no_exits: .asciz "hooked MMIO doorbell writes that exited to userspace (unchanged)"
m_mmio_count_after: .asciz "driver's MMIO count after unhook"
m_mmio_exits:	.asciz "unhooked MMIO doorbell writes that exited to userspace"
m_claim_com1:	.asciz "hooking COM1 (0x3f8), errno"
m_claim_pit:	.asciz "hooking the PIT (0x40), errno"
m_claim_pci:	.asciz "hooking PCI config data (0xcfc), errno"
m_claim_free:	.asciz "hooking a free port (0x3f0), errno"
m_move_com1:	.asciz "BAR0 moved onto COM1: hook errno"
m_move_com1_unhooked: .asciz "BAR0 on COM1: doorbell hooked"
m_move_hooked:	.asciz "BAR0 moved to 0xd000: doorbell hooked"
m_move_count:	.asciz "I/O doorbell writes counted after the move"
m_leases:	.asciz "leases the driver signed"
m_ok:		.asciz "drv-doorbell: ok\n"
