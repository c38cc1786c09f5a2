/*
 * Malicious guest: reads and writes where there is no RAM (run it with
 * -m 256M, so RAM ends at 0x10000000). Every such read must come back
 * all-ones, as from an empty bus; every write must vanish.
 *
 *   - every 4 KiB page of the first MiB above RAM, then one page a MiB up to
 *     0xfe000000, then every page of the last 32 MiB below 4 GiB (HPET's
 *     0xfed00000, the BIOS ROM window, ...) except the in-kernel IOAPIC
 *     (0xfec00000) and LAPIC (0xfee00000) pages and the four pages KVM keeps
 *     for itself at 0xfffbc000 (its real-mode TSS and identity map): one
 *     8-byte read and one 8-byte write each;
 *   - at a few addresses: every size (1, 2, 4, 8, 16 with movdqu),
 *     accesses that cross a page, rep movsb/stosb through the hole, and an
 *     8-byte access half in RAM and half in the hole;
 *   - above 4 GiB (mapped with page tables of our own): every 2 MiB of
 *     4-5 GiB, a MiB at 16 GiB, and an access across the 4 GiB line.
 *
 * Prints "evil-mmio: N unexpected values" (reads that were not all-ones)
 * and "survived", then powers off (exit 1).
 */
#include "common.h"
#define RAM_TOP      0x10000000
#define HIGH_ZONE    0xfe000000
#define IOAPIC_PAGE  0xfec00000
#define LAPIC_PAGE   0xfee00000
#define KVM_PAGES    0xfffbc000         /* 4 pages: identity map + TSS */
#define PDPT         0xa000             /* khyve's boot page tables (boot_layout.h) */
#define PD_4G        0x200000           /* ours, in free RAM */
#define PD_16G       0x201000
#define SCRATCH      0x300000
	.code64
	.text
	.globl _start
_start:
	cli
	xor %r15d, %r15d                /* unexpected values */
	/* SSE on (khyve hands over with CR4.OSFXSR clear): movdqu below. */
	mov %cr0, %rax
	and $~4, %rax                   /* EM off */
	or $2, %rax                     /* MP on */
	mov %rax, %cr0
	mov %cr4, %rax
	or $0x600, %rax                 /* OSFXSR, OSXMMEXCPT */
	mov %rax, %cr4

	/* Every page of the first MiB above RAM. */
	mov $RAM_TOP, %rbx
1:	call probe
	add $0x1000, %rbx
	cmp $(RAM_TOP + 0x100000), %rbx
	jb 1b
	/* A page a MiB up to the high zone. */
2:	call probe
	add $0x100000, %rbx
	mov $HIGH_ZONE, %eax            /* (64-bit compares take 32-bit signed immediates) */
	cmp %rax, %rbx
	jb 2b
	/* Every page of the high zone but the IOAPIC, LAPIC and KVM's own. */
	mov $HIGH_ZONE, %ebx
3:	mov $IOAPIC_PAGE, %eax
	cmp %rax, %rbx
	je 4f
	mov $LAPIC_PAGE, %eax
	cmp %rax, %rbx
	je 4f
	mov $KVM_PAGES, %eax
	mov %rbx, %rdx
	sub %rax, %rdx
	cmp $0x4000, %rdx
	jb 4f
	call probe
4:	add $0x1000, %rbx
	mov $0x100000000, %rax
	cmp %rax, %rbx
	jb 3b

	/* Every size, page-crossing, string and SSE accesses. */
	mov $0xd0000000, %ebx
	call every_size
	mov $0xfed00000, %ebx
	call every_size
	mov $(RAM_TOP + 0x3000), %rbx
	call every_size

	/* Half RAM, half hole: the hole's half must read all-ones. */
	movl $0x12345678, RAM_TOP - 4
	mov RAM_TOP - 4, %rax
	shr $32, %rax
	cmp $0xffffffff, %eax
	je 5f
	inc %r15
5:	mov $0x1122334455667788, %rax
	mov %rax, RAM_TOP - 4
	cmpl $0x55667788, RAM_TOP - 4   /* the RAM half was written */
	je 6f
	inc %r15
6:
	/* Above 4 GiB: map 4-5 GiB and 16-17 GiB with 2 MiB pages. */
	mov $PD_4G, %rdi
	mov $0x100000000, %rax
	call fill_pd
	mov $PD_16G, %rdi
	mov $0x400000000, %rax
	call fill_pd
	movq $(PD_4G | 3), PDPT + 4 * 8
	movq $(PD_16G | 3), PDPT + 16 * 8
	mov %cr3, %rax
	mov %rax, %cr3
	mov $0x100000000, %rbx
7:	call probe
	add $0x200000, %rbx
	mov $0x140000000, %rax
	cmp %rax, %rbx
	jb 7b
	mov $0x400000000, %rbx
8:	call probe
	add $0x1000, %rbx
	mov $0x400100000, %rax
	cmp %rax, %rbx
	jb 8b
	mov $0x13fffe000, %rbx            /* + 0xffd + 8 stays below 5 GiB */
	call every_size
	/* Across the 4 GiB line: both halves are hole. */
	mov $0xfffffffc, %ebx
	mov (%rbx), %rax
	cmp $-1, %rax
	je 9f
	inc %r15
9:	mov %rax, (%rbx)

	lea msg_n(%rip), %rsi
	call puts
	mov %r15, %rax
	call putu
	lea msg_tail(%rip), %rsi
	call puts
	POWEROFF
10:	cli
	hlt
	jmp 10b

/* One 8-byte read (must be all-ones) and one 8-byte write at rbx. */
probe:
	mov (%rbx), %rax
	cmp $-1, %rax
	je 1f
	inc %r15
1:	mov %rbx, %rax
	not %rax
	mov %rax, (%rbx)
	ret

/* Check that rax holds all-ones in its low %cl bytes. */
expect_ones:
	push %rdx
	mov $-1, %rdx
	cmp $8, %cl
	je 1f
	shl $3, %cl
	shl %cl, %rdx
	not %rdx                        /* rdx = mask of the low bytes */
	shr $3, %cl
1:	and %rdx, %rax
	cmp %rdx, %rax
	je 2f
	inc %r15
2:	pop %rdx
	ret

/* Every access size at rbx, at rbx+0xffd (crossing into the next page), and strings. */
every_size:
	xor %eax, %eax
	movb (%rbx), %al
	mov $1, %cl
	call expect_ones
	movzwl 1(%rbx), %eax
	mov $2, %cl
	call expect_ones
	mov 3(%rbx), %eax
	mov $4, %cl
	call expect_ones
	mov 7(%rbx), %rax
	mov $8, %cl
	call expect_ones
	movb $0xa5, (%rbx)
	movw $0xa5a5, 1(%rbx)
	movl $0xa5a5a5a5, 3(%rbx)
	mov $-1, %rax
	mov %rax, 7(%rbx)
	mov 0xffd(%rbx), %rax           /* crosses a page */
	mov $8, %cl
	call expect_ones
	mov %rax, 0xffd(%rbx)
	movl 0xffe(%rbx), %eax
	mov $4, %cl
	call expect_ones
	movdqu 0x10(%rbx), %xmm0        /* 16 bytes */
	movdqu %xmm0, 0x20(%rbx)
	movq %xmm0, %rax
	mov $8, %cl
	call expect_ones
	/* rep movsb hole -> RAM, rep stosb RAM -> hole. */
	mov %rbx, %rsi
	mov $SCRATCH, %rdi
	mov $64, %ecx
	cld
	rep movsb
	mov SCRATCH + 56, %rax
	mov $8, %cl
	call expect_ones
	mov %rbx, %rdi
	mov $0x5a, %al
	mov $64, %ecx
	rep stosb
	ret

/* A page directory at rdi mapping 1 GiB from physical rax with 2 MiB pages. */
fill_pd:
	or $0x83, %rax                  /* present, writable, 2 MiB */
	mov $512, %ecx
1:	mov %rax, (%rdi)
	add $0x200000, %rax
	add $8, %rdi
	dec %ecx
	jnz 1b
	ret

#include "lm-lib.h"
msg_n:		.asciz "evil-mmio: "
msg_tail:	.asciz " unexpected values; survived\n"
