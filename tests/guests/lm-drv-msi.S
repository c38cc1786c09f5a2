/*
 * Interrupts through the driver interface, with the test device
 * (-o pci.testdev=true). The guest programs the device's MSI-X table
 * (vector 0 -> IDT 0x41, vector 1 -> 0x42, x2APIC destination 0), enables
 * MSI-X, and asks the test driver to signal vectors; its handlers count
 * each IDT vector (x2APIC EOI through MSR 0x80b). Checks:
 *   - N signals, one at a time (ping-pong, so none coalesce): N interrupts;
 *   - vector 0 masked: signals are not delivered, its PBA bit is set; on
 *     unmask it is delivered exactly once and the PBA bit clears;
 *   - the function mask does the same for vector 1;
 *   - a vector reprogrammed while masked delivers its pending event with
 *     the NEW message (IDT 0x43) on unmask;
 *   - a raw MSI (vmm_drv_msi) to IDT 0x44 arrives;
 *   - the driver's interrupt-config callback saw the masking, the
 *     reprogramming of a masked vector and the INTx fallback;
 *   - MSI-X disabled: a signal raises INTx on the slot's _PRT GSI (IOAPIC,
 *     level, IDT 0x50, acknowledged through the device's ISR register);
 *     the command register's INTx-disable bit holds it back until cleared;
 *   - MSI-X enabled again: vectors deliver again.
 * Prints "drv-msi: ok" and powers off; "FAIL: ..." and halts otherwise.
 */
#include "common.h"
#include "drv.h"
#define N 50
#define C41 (DRV_COUNTERS + 0)
#define C42 (DRV_COUNTERS + 4)
#define C43 (DRV_COUNTERS + 8)
#define C44 (DRV_COUNTERS + 12)
#define CINTX (DRV_COUNTERS + 16)
#define ISRSUM (DRV_COUNTERS + 20)
#define MSIX_CTRL (TESTDEV_MSIX_CAP + 2)
#define IOAPIC 0xfec00000
#define ENTRY(v) (16 * (v))
	.code64
	.text
	.globl _start
_start:
	call find_testdev
	mov $PCI_BAR(1), %edi
	call cfg_rd
	and $0xfffffff0, %eax
	mov %rax, %r15
	mov $PCI_BAR(2), %edi
	call cfg_rd
	and $0xfffffff0, %eax
	mov %rax, %r13
	mov $4, %edi
	mov $3, %esi
	call cfg_wr16

	xor %eax, %eax
	mov $DRV_COUNTERS, %edi
	mov $8, %ecx
	rep stosl
	mov $0x41, %edi
	lea h41(%rip), %rsi
	call set_gate
	mov $0x42, %edi
	lea h42(%rip), %rsi
	call set_gate
	mov $0x43, %edi
	lea h43(%rip), %rsi
	call set_gate
	mov $0x44, %edi
	lea h44(%rip), %rsi
	call set_gate
	mov $0x50, %edi
	lea hintx(%rip), %rsi
	call set_gate
	call x2apic_on
	sti

	/* Every vector starts masked (PCI 3.0): check, then program 0 and 1. */
	mov ENTRY(0) + 12(%r13), %eax
	mov $1, %esi
	lea m_reset_mask(%rip), %rdi
	call check
	movl $0xfee00000, ENTRY(0)(%r13)
	movl $0, ENTRY(0) + 4(%r13)
	movl $0x41, ENTRY(0) + 8(%r13)
	movl $0, ENTRY(0) + 12(%r13)
	movl $0xfee00000, ENTRY(1)(%r13)
	movl $0, ENTRY(1) + 4(%r13)
	movl $0x42, ENTRY(1) + 8(%r13)
	movl $0, ENTRY(1) + 12(%r13)
	mov $MSIX_CTRL, %edi
	mov $0x8000, %esi
	call cfg_wr16
	mov TD_CFG_LAST(%r15), %eax
	lea m_cfg_enable(%rip), %rdi
	call report

	/* ---- ping-pong: N signals, N interrupts ---- */
	movl $0, TD_VECTOR(%r15)
	mov $1, %ebx
1:	movl $1, TD_FIRE(%r15)
	mov $C41, %edi
	mov %ebx, %esi
	call wait_mem
	lea m_pingpong(%rip), %rdi
	call check
	inc %ebx
	cmp $N, %ebx
	jbe 1b
	mov C41, %eax
	lea m_c41(%rip), %rdi
	call report

	/* ---- vector 0 masked: pending, then delivered once on unmask ---- */
	mov TD_CFG_EVENTS(%r15), %ebp
	movl $1, ENTRY(0) + 12(%r13)
	mov TD_CFG_LAST(%r15), %eax
	mov $(0 | TD_CFG_MASKED | TD_CFG_MSIX), %esi
	lea m_cfg_masked(%rip), %rdi
	call check
	movl $3, TD_FIRE(%r15)
	mov $TD_FIRE, %edi
	mov $(N + 3), %esi
	call wait_td
	lea m_fired(%rip), %rdi
	call check
	mov $20000, %edi
	call idle
	mov C41, %eax
	mov $N, %esi
	lea m_masked_none(%rip), %rdi
	call check
	mov TESTDEV_MSIX_PBA(%r13), %rax
	and $1, %eax
	mov $1, %esi
	lea m_pba_set(%rip), %rdi
	call check
	movl $0, ENTRY(0) + 12(%r13)
	mov $C41, %edi
	mov $(N + 1), %esi
	call wait_mem
	mov $20000, %edi
	call idle
	mov C41, %eax
	mov $(N + 1), %esi
	lea m_unmask_once(%rip), %rdi
	call report
	call check
	mov TESTDEV_MSIX_PBA(%r13), %rax
	and $1, %eax
	xor %esi, %esi
	lea m_pba_clear(%rip), %rdi
	call check
	mov TD_CFG_EVENTS(%r15), %eax
	sub %ebp, %eax
	mov $2, %esi
	lea m_cfg_events(%rip), %rdi
	call check

	/* ---- function mask: vector 1 pending, delivered once when cleared ---- */
	mov $MSIX_CTRL, %edi
	mov $0xc000, %esi
	call cfg_wr16
	movl $1, TD_VECTOR(%r15)
	movl $2, TD_FIRE(%r15)
	mov $TD_FIRE, %edi
	mov $(N + 5), %esi
	call wait_td
	lea m_fired(%rip), %rdi
	call check
	mov $20000, %edi
	call idle
	mov C42, %eax
	xor %esi, %esi
	lea m_fmask_none(%rip), %rdi
	call check
	mov TESTDEV_MSIX_PBA(%r13), %rax
	and $2, %eax
	mov $2, %esi
	lea m_pba_set(%rip), %rdi
	call check
	mov $MSIX_CTRL, %edi
	mov $0x8000, %esi
	call cfg_wr16
	mov $C42, %edi
	mov $1, %esi
	call wait_mem
	mov $20000, %edi
	call idle
	mov C42, %eax
	mov $1, %esi
	lea m_funmask_once(%rip), %rdi
	call check

	/* ---- reprogrammed while masked: the pending event uses the new message ---- */
	movl $0, TD_VECTOR(%r15)
	movl $1, ENTRY(0) + 12(%r13)
	mov TD_CFG_EVENTS(%r15), %ebp
	movl $0x43, ENTRY(0) + 8(%r13)
	mov TD_CFG_EVENTS(%r15), %eax
	sub %ebp, %eax
	mov $1, %esi
	lea m_cfg_reprogram(%rip), %rdi
	call check
	movl $1, TD_FIRE(%r15)
	mov $TD_FIRE, %edi
	mov $(N + 6), %esi
	call wait_td
	lea m_fired(%rip), %rdi
	call check
	movl $0, ENTRY(0) + 12(%r13)
	mov $C43, %edi
	mov $1, %esi
	call wait_mem
	lea m_new_message(%rip), %rdi
	call check
	mov C41, %eax
	mov $(N + 1), %esi
	lea m_old_message(%rip), %rdi
	call check

	/* ---- a raw MSI through vmm_drv_msi ---- */
	movl $0xfee00000, TD_MSI_ADDR(%r15)
	movl $0x44, TD_MSI_DATA(%r15)
	movl $1, TD_MSI_FIRE(%r15)
	mov $C44, %edi
	mov $1, %esi
	call wait_mem
	lea m_raw(%rip), %rdi
	call check

	/* ---- INTx fallback: IOAPIC pin of the slot's _PRT GSI -> IDT 0x50 ---- */
	mov %r12d, %ecx
	shr $11, %ecx
	and $3, %ecx
	add $16, %ecx                   /* GSI = 16 + (slot + INTA) % 4 */
	lea 0x10(,%rcx,2), %ecx         /* its redirection entry */
	mov $IOAPIC, %rdi
	mov %ecx, (%rdi)
	movl $(0x50 | 0x8000), 0x10(%rdi)   /* level-triggered, active high, unmasked */
	inc %ecx
	mov %ecx, (%rdi)
	movl $0, 0x10(%rdi)             /* destination APIC ID 0 */
	mov $MSIX_CTRL, %edi
	xor %esi, %esi
	call cfg_wr16                   /* MSI-X off */
	mov TD_CFG_LAST(%r15), %eax
	mov $TD_CFG_MODE, %esi
	lea m_cfg_intx(%rip), %rdi
	call check
	movl $1, TD_FIRE(%r15)
	mov $CINTX, %edi
	mov $1, %esi
	call wait_mem
	lea m_intx(%rip), %rdi
	call check
	mov ISRSUM, %eax
	mov $1, %esi
	lea m_isr(%rip), %rdi
	call check
	/* INTx disabled in the command register: held back until it is cleared. */
	mov $4, %edi
	mov $0x403, %esi
	call cfg_wr16
	movl $1, TD_FIRE(%r15)
	mov $TD_FIRE, %edi
	mov $(N + 8), %esi
	call wait_td
	lea m_fired(%rip), %rdi
	call check
	mov $20000, %edi
	call idle
	mov CINTX, %eax
	mov $1, %esi
	lea m_intx_disabled(%rip), %rdi
	call check
	mov $4, %edi
	mov $3, %esi
	call cfg_wr16
	mov $CINTX, %edi
	mov $2, %esi
	call wait_mem
	lea m_intx_enabled(%rip), %rdi
	call check

	/* ---- MSI-X again ---- */
	mov $MSIX_CTRL, %edi
	mov $0x8000, %esi
	call cfg_wr16
	movl $1, TD_VECTOR(%r15)
	movl $1, TD_FIRE(%r15)
	mov $C42, %edi
	mov $2, %esi
	call wait_mem
	lea m_msix_again(%rip), %rdi
	call check
	mov $20000, %edi
	call idle
	mov CINTX, %eax
	mov $2, %esi
	lea m_no_intx(%rip), %rdi
	call check
	mov TD_CFG_EVENTS(%r15), %eax
	lea m_cfg_total(%rip), %rdi
	call report

	lea m_ok(%rip), %rsi
	call puts
	POWEROFF
	jmp stop

h41:	lock incl C41
	call eoi
	iretq
h42:	lock incl C42
	call eoi
	iretq
h43:	lock incl C43
	call eoi
	iretq
h44:	lock incl C44
	call eoi
	iretq
hintx:	push %rax
	mov TD_ISR(%r15), %eax          /* acknowledge: the device lowers INTx */
	add %eax, ISRSUM
	lock incl CINTX
	pop %rax
	call eoi
	iretq

#include "lm-lib.h"
#include "lm-drv-lib.h"

m_reset_mask:	.asciz "vector 0's mask bit after reset"
m_cfg_enable:	.asciz "driver's last interrupt-config event after enabling MSI-X"
m_pingpong:	.asciz "interrupts on IDT 0x41 after this many signals"
m_c41:		.asciz "ping-pong interrupts delivered"
m_cfg_masked:	.asciz "driver's interrupt-config event for masking vector 0"
m_fired:	.asciz "signals the driver has sent"
m_masked_none:	.asciz "interrupts delivered while vector 0 was masked (total)"
m_pba_set:	.asciz "PBA pending bit while masked"
m_unmask_once:	.asciz "interrupts after unmasking vector 0 (3 pending signals)"
m_pba_clear:	.asciz "PBA pending bit after delivery"
m_cfg_events:	.asciz "interrupt-config callbacks for mask + unmask"
m_fmask_none:	.asciz "interrupts on vector 1 under the function mask"
m_funmask_once:	.asciz "interrupts on vector 1 after clearing the function mask"
m_cfg_reprogram: .asciz "interrupt-config callbacks for reprogramming a masked vector"
m_new_message:	.asciz "pending event delivered with the new message (IDT 0x43)"
m_old_message:	.asciz "interrupts on the old message (IDT 0x41)"
m_raw:		.asciz "raw MSI (vmm_drv_msi) on IDT 0x44"
m_cfg_intx:	.asciz "driver's interrupt-config event for MSI-X off (INTx mode)"
m_intx:		.asciz "INTx interrupts on IDT 0x50"
m_isr:		.asciz "ISR bits read by the INTx handler"
m_intx_disabled: .asciz "INTx interrupts with INTx disabled in the command register"
m_intx_enabled:	.asciz "INTx interrupts after re-enabling INTx"
m_msix_again:	.asciz "interrupts on vector 1 with MSI-X enabled again"
m_no_intx:	.asciz "INTx interrupts with MSI-X enabled again"
m_cfg_total:	.asciz "interrupt-config callbacks in all"
m_ok:		.asciz "drv-msi: ok\n"
