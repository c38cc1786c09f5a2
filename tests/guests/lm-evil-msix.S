/*
 * Malicious guest: MSI-X abuse, on the test device (run khyve with
 * -o pci.testdev=true; src/pci_testdev.h). Interrupts stay disabled: every
 * interrupt the device raises just stays pending in the LAPIC.
 *
 *   - MSI-X on; the table and PBA page written and read with every size
 *     (1, 2, 4, 8) at every offset of the table and the PBA, random dwords
 *     everywhere else in the page; then every vector gets a random address
 *     and data, mask bit random, and the driver fires each vector, plus an
 *     out-of-range one, plus raw MSIs with random addresses. Only the
 *     delivery-mode bits of the data are forced to "fixed": an NMI, INIT or
 *     SMI message is the guest shooting itself, not khyve's business;
 *   - MSI-X enable and the function mask toggled between fires;
 *   - the table's BAR moved onto the LAPIC page, onto BAR1, onto RAM at 0
 *     and sized with all-ones, with memory decode on, then put back;
 *   - memory decode off with MSI-X on, and a fire.
 *
 * The device must then still answer ("evil-msix: device still answers"),
 * and the guest prints "survived" and powers off (exit 1).
 */
#include "common.h"
#include "drv.h"
#define MSIX_CTRL (TESTDEV_MSIX_CAP + 2)
#define MSIX_ENABLE 0x8000
#define FN_MASK 0x4000
	.code64
	.text
	.globl _start
_start:
	cli
	mov $0x9e3779b97f4a7c15, %r14   /* xorshift64 state */
	call find_testdev
	mov $PCI_BAR(1), %edi
	call cfg_rd
	and $0xfffffff0, %eax
	mov %rax, %r15
	mov $PCI_BAR(2), %edi
	call cfg_rd
	and $0xfffffff0, %eax
	mov %rax, %r13
	mov $4, %edi                    /* command: memory decode + bus master */
	mov $6, %esi
	call cfg_wr16
	mov $MSIX_CTRL, %edi
	mov $MSIX_ENABLE, %esi
	call cfg_wr16

	/* Every offset of the table (8 x 16 bytes) and the PBA, every size. */
	xor %ebx, %ebx
1:	call every_size
	inc %ebx
	cmp $(16 * TESTDEV_MSIX_VECTORS), %ebx
	jb 1b
	mov $TESTDEV_MSIX_PBA, %ebx
2:	call every_size
	inc %ebx
	cmp $(TESTDEV_MSIX_PBA + 16), %ebx
	jb 2b
	/* Random dwords over the rest of the page. */
	mov $(16 * TESTDEV_MSIX_VECTORS), %ebx
3:	call random
	mov %eax, (%r13,%rbx)
	mov (%r13,%rbx), %eax
	add $4, %ebx
	cmp $0x1000, %ebx
	jb 3b

	/* Random messages, fired; toggling enable and the function mask. */
	mov $8, %r8d
4:	call random_table
	mov %r8d, %eax
	and $3, %eax
	shl $14, %eax                   /* 0, FN_MASK, MSIX_ENABLE, both */
	mov %eax, %esi
	mov $MSIX_CTRL, %edi
	call cfg_wr16
	call fire_all
	dec %r8d
	jnz 4b
	mov $MSIX_CTRL, %edi
	mov $MSIX_ENABLE, %esi
	call cfg_wr16

	/* Raw MSIs to random addresses (below 4 GiB, as the register holds). */
	mov $8, %r8d
5:	call random
	mov %eax, TD_MSI_ADDR(%r15)
	call random
	and $~0x700, %eax               /* delivery mode: fixed */
	mov %eax, TD_MSI_DATA(%r15)
	movl $2, TD_MSI_FIRE(%r15)
	mov $TD_MSI_FIRE, %edi
	call settle
	dec %r8d
	jnz 5b

	/* The table's BAR moved about while decoding, then put back. */
	mov $PCI_BAR(2), %edi
	mov $0xfee00000, %esi           /* onto the LAPIC */
	call cfg_wr
	call fire_all
	mov %r15, %rsi                  /* onto BAR1 */
	call cfg_wr
	call fire_all
	xor %esi, %esi                  /* onto RAM at 0 */
	call cfg_wr
	call fire_all
	mov $-1, %esi                   /* sizing */
	call cfg_wr
	call cfg_rd
	mov %r13, %rsi                  /* home */
	call cfg_wr
	call random_table

	/* Memory decode off under enabled MSI-X, a fire, decode back on. */
	mov $4, %edi
	mov $4, %esi
	call cfg_wr16
	call fire_all
	mov $6, %esi
	call cfg_wr16
	call fire_all

	mov TD_ID(%r15), %eax
	cmp $TD_ID_VALUE, %eax
	jne 6f
	lea msg_alive(%rip), %rsi
	call puts
6:	lea msg_ok(%rip), %rsi
	call puts
	POWEROFF
7:	cli
	hlt
	jmp 7b

/*
 * Give the driver a moment to send its 2 signals: poll register edi of BAR1
 * up to 200 times. Whether it did is not the point (a fire to a vector past
 * the table, or with decoding off, may well do nothing).
 */
settle:
	push %rcx
	mov $200, %ecx
1:	cmpl $2, (%r15,%rdi)
	je 2f
	dec %ecx
	jnz 1b
2:	pop %rcx
	ret

/* Every size, both directions, at offset ebx of the table page. */
every_size:
	call random
	movb %al, (%r13,%rbx)
	movb (%r13,%rbx), %al
	movw %ax, (%r13,%rbx)
	movw (%r13,%rbx), %ax
	movl %eax, (%r13,%rbx)
	movl (%r13,%rbx), %eax
	call random
	mov %rax, (%r13,%rbx)
	mov (%r13,%rbx), %rax
	ret

/* Every vector: random address, data (fixed delivery), mask bit. */
random_table:
	push %rbx
	xor %ebx, %ebx
1:	call random
	mov %eax, (%r13,%rbx)           /* address low */
	call random
	mov %eax, 4(%r13,%rbx)          /* address high */
	call random
	and $~0x700, %eax
	mov %eax, 8(%r13,%rbx)          /* data */
	call random
	mov %eax, 12(%r13,%rbx)         /* vector control: bit 0 masks */
	add $16, %ebx
	cmp $(16 * TESTDEV_MSIX_VECTORS), %ebx
	jb 1b
	pop %rbx
	ret

/* The driver signals every vector and one past the end, twice each. */
fire_all:
	push %rdi
	push %rsi
	push %rbx
	xor %ebx, %ebx
1:	mov %ebx, TD_VECTOR(%r15)
	movl $2, TD_FIRE(%r15)
	mov $TD_FIRE, %edi
	call settle
	inc %ebx
	cmp $(TESTDEV_MSIX_VECTORS + 1), %ebx
	jbe 1b
	pop %rbx
	pop %rsi
	pop %rdi
	ret

#include "lm-lib.h"
#include "lm-drv-lib.h"
msg_alive:	.asciz "evil-msix: device still answers\n"
msg_ok:		.asciz "evil-msix: MSI-X table abuse: survived\n"
