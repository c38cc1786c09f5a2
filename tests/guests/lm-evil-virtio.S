/*
 * Malicious guest: a virtio driver that lies. Run with a virtio-net at
 * slot 3 and/or a virtio-blk at slot 4 (-s 3,virtio-net,TAP -s 4,virtio-blk,
 * IMG) and -m 256M; each device present is attacked, an absent one skipped.
 *
 * The devices (src/virtio_pci.c, src/virtqueue.c, src/viona*.c,
 * src/pci_virtio_blk.c) promise: whatever a guest puts in its rings, the
 * device sets DEVICE_NEEDS_RESET (status bit 0x40) and stops using the
 * queue -- no crash, no access outside guest RAM -- and a reset (status 0)
 * gives a working device back. So, for each device:
 *
 *   1. garbage in every common-config register, every size (1, 2, 4, 8) at
 *      every offset and past the end (the status byte excepted: 0 would
 *      reset, and random bits could start the device on random rings),
 *      then the named bad values: queue_select out of range (and the queue
 *      fields behind it), queue sizes 0, 3, 0x8000, 0xffff, 512, MSI-X
 *      vector 0xfffe for the config and a queue, feature selects past 1,
 *      statuses the state machine must not act on (FAILED, DRIVER_OK
 *      without FEATURES_OK, all ones, NEEDS_RESET from the driver); the
 *      ISR and device config with garbage. After a reset the registers
 *      must read as after power-on: "garbage: registers sane".
 *      Then the same while the device runs (valid, empty rings): queue
 *      fields are frozen, and every doorbell of the notify area is rung
 *      with random values: the device must not need a reset.
 *   2. the hostile cases, each in a fresh driver session (reset, ACK,
 *      DRIVER, features VERSION_1 + INDIRECT_DESC, FEATURES_OK, queues of
 *      16, DRIVER_OK, the bad chain made available and kicked): a
 *      descriptor loop, a chain over all 16 descriptors in a cycle, a buffer
 *      at 0xfff00000000, a buffer of 0xffffffff bytes, the avail index
 *      0x8000 entries ahead, an indirect table at 0xfff00000000, and (no
 *      kick: refused at DRIVER_OK) the descriptor table at 0xfff00000000
 *      and a used ring straddling the end of RAM. The chain goes on the
 *      transmit queue of virtio-net (the receive queue is consumed only
 *      when a packet arrives) and on virtio-blk's request queue. Each
 *      prints "evil-virtio: DEV CASE: NEEDS_RESET" when the device set the
 *      bit (a bounded poll of the status), "...: no reset (status N)"
 *      otherwise.
 *   3. virtio-blk only, one session: requests that are merely wrong must
 *      complete with an I/O error and leave the device working -- a header
 *      of 8 bytes, a read at the first sector past the end, a read
 *      straddling the end, a read at sector 2^64-1 -- and then a valid read
 *      of sector 0 must succeed and return the image's first bytes
 *      ("khyve-evil-virtio", written there by the test): "...: IOERR" and
 *      "evil-virtio: blk valid-read: OK".
 *
 *   4. virtio-net only, last: with valid rings and DRIVER_OK, BAR4 moves
 *      0x40000 up; a transmit chain (a zero virtio_net_hdr_v1 and a 60-byte
 *      broadcast frame) is made available, the old doorbell rung (nothing
 *      may happen), then the new one: the used index must advance,
 *      "evil-virtio: net bar-move: OK" (else "...: FAILED (...)"). Then a
 *      reset, and BAR4 goes back.
 *
 * Then "evil-virtio: done" and power-off (khyve exits 1). A device that
 * is missing its init dance (no VERSION_1, FEATURES_OK refused, no
 * INDIRECT_DESC) prints "FAIL: ..." and halts.
 */
#include "common.h"
#define NET_SLOT 3
#define BLK_SLOT 4
#define NET_ID 0x10411af4               /* device:vendor, virtio 1.x ID 0x1040 + 1 */
#define BLK_ID 0x10421af4               /*   and + 2 */
#define CFG_ADDR 0xcf8
#define CFG_DATA 0xcfc
#define PCI_BAR4 0x20

/* Common config (virtio 1.x 4.1.4.3), at BAR4 + 0 (src/virtio_pci.h). */
#define CC_DFSELECT 0x00
#define CC_DF       0x04
#define CC_GFSELECT 0x08
#define CC_GF       0x0c
#define CC_MSIX     0x10
#define CC_NUMQ     0x12
#define CC_STATUS   0x14
#define CC_QSELECT  0x16
#define CC_QSIZE    0x18
#define CC_QMSIX    0x1a
#define CC_QENABLE  0x1c
#define CC_DESCLO   0x20
#define CC_DESCHI   0x24
#define CC_AVAILLO  0x28
#define CC_AVAILHI  0x2c
#define CC_USEDLO   0x30
#define CC_USEDHI   0x34
#define ISR         0x1000
#define DEVCFG      0x2000
#define NOTIFY      0x3000              /* + 4 * queue */

#define ST_ACK         0x01
#define ST_DRIVER      0x02
#define ST_DRIVER_OK   0x04
#define ST_FEATURES_OK 0x08
#define ST_NEEDS_RESET 0x40
#define F_INDIRECT     (1 << 28)
#define MAX_QSIZE      256              /* both devices' queue_max_size */
#define NO_VECTOR      0xffff

#define QSZ      16
#define D_NEXT   1
#define D_WRITE  2
#define D_INDIR  4
#define NEXT(i)  ((i) << 16)            /* the next field, in desc's flags dword */

/* Guest memory used (all in the 256 MiB of RAM, above this code). */
#define RING     0x200000               /* the attacked queue: desc, avail +4K, used +8K */
#define AVAIL    (RING + 0x1000)
#define USED     (RING + 0x2000)
#define RXRING   0x210000               /* virtio-net's receive queue: valid, empty */
#define BUF      0x220000               /* request header / packet */
#define DATA     0x221000               /* two sectors */
#define STATB    0x222000               /* the request's status byte */
#define AREA_END 0x223000
#define VARS     0x22f000               /* +0 device name, +8 capacity, +16 avail idx */
#define RAM_TOP  0x10000000             /* -m 256M */
#define FAR      0xfff00000000

#define POLLS    400000                 /* bound of every wait, in status reads */

	.code64
	.text
	.globl _start
_start:
	cli
	mov $0x9e3779b97f4a7c15, %r14   /* xorshift64 state */
	xor %ebp, %ebp                  /* devices attacked */

	mov $NET_SLOT, %edi
	mov $NET_ID, %esi
	call probe
	jne 1f
	mov $1, %r13d                   /* r13: 1 virtio-net, 2 virtio-blk */
	mov $1, %ebx                    /* rbx: the attacked queue (transmit) */
	lea name_net(%rip), %rax
	mov %rax, VARS
	call garbage
	call cases
	inc %ebp
1:	mov $BLK_SLOT, %edi
	mov $BLK_ID, %esi
	call probe
	jne 2f
	mov $2, %r13d
	xor %ebx, %ebx                  /* the request queue */
	lea name_blk(%rip), %rax
	mov %rax, VARS
	call garbage
	call cases
	call blk_requests
	inc %ebp
2:	test %ebp, %ebp
	jnz 3f
	lea msg_nodev(%rip), %rsi
	jmp fail
3:	mov $NET_SLOT, %edi             /* last: virtio-net's BAR4 moved while it runs */
	mov $NET_ID, %esi
	call probe
	jne 5f
	mov $1, %r13d
	mov $1, %ebx
	lea name_net(%rip), %rax
	mov %rax, VARS
	call bar_move
5:	lea msg_done(%rip), %rsi
	call puts
	POWEROFF
4:	cli
	hlt
	jmp 4b

/*
 * Is the function at slot edi the device esi? ZF set if so; then r12 is
 * its config address, memory decoding and bus mastering are on and r15 is
 * its BAR4 (the virtio structures).
 */
probe:
	shl $11, %edi
	or $0x80000000, %edi
	mov %edi, %r12d
	mov %r12d, %eax
	mov $CFG_ADDR, %dx
	out %eax, %dx
	mov $CFG_DATA, %dx
	in %dx, %eax
	cmp %esi, %eax
	jne 1f
	mov %r12d, %eax
	or $4, %eax                     /* command: memory decoding + bus master */
	mov $CFG_ADDR, %dx
	out %eax, %dx
	mov $CFG_DATA, %dx
	mov $6, %eax
	out %eax, %dx
	mov %r12d, %eax
	or $PCI_BAR4, %eax
	mov $CFG_ADDR, %dx
	out %eax, %dx
	mov $CFG_DATA, %dx
	in %dx, %eax
	and $0xfffffff0, %eax
	mov %rax, %r15
	cmp %eax, %eax                  /* ZF: found */
1:	ret

/* Reset: status 0, which must read back 0 at once (khyve resets synchronously). */
vreset:
	movb $0, CC_STATUS(%r15)
	movzbl CC_STATUS(%r15), %eax
	test %eax, %eax
	jz 1f
	lea msg_reset_stuck(%rip), %rsi
	jmp fail
1:	ret

/* Zero every ring, buffer and table this guest uses. */
clear_area:
	push %rcx
	push %rdi
	push %rax
	mov $RING, %edi
	mov $(AREA_END - RING), %ecx
	xor %eax, %eax
	rep stosb
	pop %rax
	pop %rdi
	pop %rcx
	ret

/* ACK, DRIVER, features VERSION_1 + INDIRECT_DESC, FEATURES_OK (checked). */
negotiate:
	movb $ST_ACK, CC_STATUS(%r15)
	movb $(ST_ACK | ST_DRIVER), CC_STATUS(%r15)
	movl $1, CC_DFSELECT(%r15)
	mov CC_DF(%r15), %eax
	test $1, %al                    /* bit 32: VERSION_1 */
	lea msg_no_v1(%rip), %rsi
	jz fail
	movl $0, CC_DFSELECT(%r15)
	mov CC_DF(%r15), %eax
	and $F_INDIRECT, %eax
	lea msg_no_indirect(%rip), %rsi
	jz fail
	movl $0, CC_GFSELECT(%r15)
	mov %eax, CC_GF(%r15)
	movl $1, CC_GFSELECT(%r15)
	movl $1, CC_GF(%r15)
	movb $(ST_ACK | ST_DRIVER | ST_FEATURES_OK), CC_STATUS(%r15)
	movzbl CC_STATUS(%r15), %eax
	test $ST_FEATURES_OK, %al
	lea msg_fok(%rip), %rsi
	jz fail
	ret

/* Queue edi: 16 entries, rings at rsi (desc), +4K (avail), +8K (used), no vector, enabled. */
setup_queue:
	movw %di, CC_QSELECT(%r15)
	movw $QSZ, CC_QSIZE(%r15)
	movzwl CC_QSIZE(%r15), %eax
	cmp $QSZ, %eax
	jne 1f
	movw $NO_VECTOR, CC_QMSIX(%r15)
	mov %esi, CC_DESCLO(%r15)
	movl $0, CC_DESCHI(%r15)
	lea 0x1000(%rsi), %eax
	mov %eax, CC_AVAILLO(%r15)
	movl $0, CC_AVAILHI(%r15)
	lea 0x2000(%rsi), %eax
	mov %eax, CC_USEDLO(%r15)
	movl $0, CC_USEDHI(%r15)
	movw $1, CC_QENABLE(%r15)
	ret
1:	lea msg_qsize(%rip), %rsi
	jmp fail

/* Every queue of the device; the attacked one last (queue_select stays on it). */
setup_queues:
	cmp $1, %r13d
	jne 1f
	xor %edi, %edi
	mov $RXRING, %esi
	call setup_queue
1:	mov %ebx, %edi
	mov $RING, %esi
	call setup_queue
	ret

/* The attacked queue's doorbell: the queue index, 16 bits. */
kick:
	movw %bx, NOTIFY(%r15,%rbx,4)
	ret

/* Poll the status (bounded) for NEEDS_RESET; eax = the last status read. */
wait_reset:
	push %rcx
	mov $POLLS, %ecx
1:	movzbl CC_STATUS(%r15), %eax
	test $ST_NEEDS_RESET, %al
	jnz 2f
	pause
	dec %ecx
	jnz 1b
2:	pop %rcx
	ret

/* Descriptor edi of the attacked queue = { rsi, edx bytes, ecx = flags | NEXT(n) }. */
desc:
	push %rdi
	shl $4, %edi
	add $RING, %edi
	mov %rsi, (%rdi)
	mov %edx, 8(%rdi)
	mov %ecx, 12(%rdi)
	pop %rdi
	ret

/* "evil-virtio: DEV NAME: " with NAME at rsi. */
case_head:
	push %rsi
	lea msg_prefix(%rip), %rsi
	call puts
	mov VARS, %rsi
	call puts
	lea msg_space(%rip), %rsi
	call puts
	pop %rsi
	call puts
	lea msg_colon(%rip), %rsi
	call puts
	ret

/* ---- 1. garbage in the registers ---- */

/* Random writes of size 1, 2, 4 and 8 at every offset in [rdi, rdi + rcx), read back. */
scribble:
	push %rdi
	push %rcx
1:	call random
	cmp $CC_STATUS, %edi            /* the status byte's only valid write: skip it */
	je 2f
	movb %al, (%r15,%rdi)
2:	movb (%r15,%rdi), %al
	call random
	movw %ax, (%r15,%rdi)
	movw (%r15,%rdi), %ax
	call random
	movl %eax, (%r15,%rdi)
	movl (%r15,%rdi), %eax
	call random
	movq %rax, (%r15,%rdi)
	movq (%r15,%rdi), %rax
	inc %edi
	dec %ecx
	jnz 1b
	pop %rcx
	pop %rdi
	ret

garbage:
	call vreset
	xor %edi, %edi                  /* the common config and past its end */
	mov $0x80, %ecx
	call scribble
	mov $ISR, %edi
	mov $8, %ecx
	call scribble
	mov $DEVCFG, %edi               /* the device config (read-only for both) and past it */
	mov $0x80, %ecx
	call scribble

	/* Queues that do not exist, and what is behind them. */
	movw $0xffff, CC_QSELECT(%r15)
	call queue_fields
	movzwl CC_QSIZE(%r15), %eax
	test %eax, %eax                 /* no such queue: size reads 0 */
	lea msg_g_noqueue(%rip), %rsi
	jnz garbage_bad
	movzwl CC_NUMQ(%r15), %eax
	movw %ax, CC_QSELECT(%r15)      /* one past the last */
	call queue_fields
	movzwl CC_QSIZE(%r15), %eax
	test %eax, %eax
	jnz garbage_bad
	/* Bad sizes on queue 0: each refused, the maximum stays. */
	movw $0, CC_QSELECT(%r15)
	movw $MAX_QSIZE, CC_QSIZE(%r15)
	movw $0, CC_QSIZE(%r15)
	movw $3, CC_QSIZE(%r15)
	movw $0x8000, CC_QSIZE(%r15)
	movw $0xffff, CC_QSIZE(%r15)
	movw $(2 * MAX_QSIZE), CC_QSIZE(%r15)
	movzwl CC_QSIZE(%r15), %eax
	cmp $MAX_QSIZE, %eax
	lea msg_g_qsize(%rip), %rsi
	jne garbage_bad
	/* MSI-X vector 0xfffe: refused, reads NO_VECTOR. */
	movw $0xfffe, CC_QMSIX(%r15)
	movzwl CC_QMSIX(%r15), %eax
	cmp $NO_VECTOR, %eax
	lea msg_g_vector(%rip), %rsi
	jne garbage_bad
	movw $0xfffe, CC_MSIX(%r15)
	movzwl CC_MSIX(%r15), %eax
	cmp $NO_VECTOR, %eax
	jne garbage_bad
	/* Feature selects past the two words. */
	movl $0xffffffff, CC_DFSELECT(%r15)
	mov CC_DF(%r15), %eax
	test %eax, %eax
	lea msg_g_features(%rip), %rsi
	jnz garbage_bad
	movl $7, CC_GFSELECT(%r15)
	movl $0xffffffff, CC_GF(%r15)
	mov CC_GF(%r15), %eax
	test %eax, %eax
	jnz garbage_bad
	/* Statuses the device must not start on (the features are garbage). */
	movb $0x80, CC_STATUS(%r15)
	movb $ST_DRIVER_OK, CC_STATUS(%r15)
	movb $0xff, CC_STATUS(%r15)
	movb $ST_NEEDS_RESET, CC_STATUS(%r15)
	movb $(ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK), CC_STATUS(%r15)

	/* After a reset: as at power-on. */
	call vreset
	movw $0, CC_QSELECT(%r15)
	movzwl CC_QSIZE(%r15), %eax
	cmp $MAX_QSIZE, %eax
	lea msg_g_qsize(%rip), %rsi
	jne garbage_bad
	movzwl CC_QMSIX(%r15), %eax
	cmp $NO_VECTOR, %eax
	lea msg_g_vector(%rip), %rsi
	jne garbage_bad
	movzwl CC_QENABLE(%r15), %eax
	test %eax, %eax
	lea msg_g_enable(%rip), %rsi
	jnz garbage_bad
	mov CC_DESCLO(%r15), %eax
	or CC_DESCHI(%r15), %eax
	lea msg_g_addr(%rip), %rsi
	jnz garbage_bad

	/* Running (valid, empty rings): queue fields frozen, every doorbell rung. */
	call clear_area
	call negotiate
	call setup_queues
	movb $(ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK), CC_STATUS(%r15)
	mov $CC_QSELECT, %edi
	mov $(0x38 - CC_QSELECT), %ecx
	call scribble
	movw %bx, CC_QSELECT(%r15)
	movzwl CC_QSIZE(%r15), %eax
	cmp $QSZ, %eax
	lea msg_g_frozen(%rip), %rsi
	jne garbage_bad
	mov CC_DESCLO(%r15), %eax
	cmp $RING, %eax
	jne garbage_bad
	mov $NOTIFY, %edi
1:	call random
	movw %ax, (%r15,%rdi)
	add $4, %edi
	cmp $(NOTIFY + 0x1000), %edi
	jb 1b
	/* The empty rings may be looked at: give the device time to (wrongly) object. */
	mov $20000, %ecx
2:	movzbl CC_STATUS(%r15), %eax
	dec %ecx
	jnz 2b
	test $ST_NEEDS_RESET, %al
	lea msg_g_live(%rip), %rsi
	jnz garbage_bad
	call vreset
	lea msg_garbage(%rip), %rsi
	call case_head
	lea msg_sane(%rip), %rsi
	call puts
	ret
garbage_bad:
	push %rsi
	call vreset
	lea msg_garbage(%rip), %rsi
	call case_head
	lea msg_insane(%rip), %rsi
	call puts
	pop %rsi
	call puts
	lea msg_nl(%rip), %rsi
	call puts
	ret

/* Random values in every field of the selected queue (and enable). */
queue_fields:
	call random
	movw %ax, CC_QSIZE(%r15)
	call random
	movw %ax, CC_QMSIX(%r15)
	movw $1, CC_QENABLE(%r15)
	call random
	movl %eax, CC_DESCLO(%r15)
	call random
	movl %eax, CC_DESCHI(%r15)
	call random
	movl %eax, CC_AVAILLO(%r15)
	call random
	movl %eax, CC_USEDLO(%r15)
	ret

/* ---- 2. the hostile rings ---- */

cases:
	push %r8
	lea case_table(%rip), %r8
1:	mov (%r8), %rsi
	test %rsi, %rsi
	jz 2f
	call run_case
	add $16, %r8
	jmp 1b
2:	pop %r8
	ret

/*
 * One case, a driver session of its own: (%r8) its name, 8(%r8) the routine
 * that fills the attacked queue before DRIVER_OK and returns in eax the
 * avail index to publish and kick (0: none, the device must refuse the
 * rings at DRIVER_OK).
 */
run_case:
	call vreset
	call clear_area
	call negotiate
	call setup_queues
	call *8(%r8)
	mov %eax, VARS + 16
	movb $(ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK), CC_STATUS(%r15)
	mov VARS + 16, %eax
	test %eax, %eax
	jz 1f
	movw %ax, AVAIL + 2
	call kick
1:	call wait_reset
	push %rax
	mov (%r8), %rsi
	call case_head
	pop %rax
	test $ST_NEEDS_RESET, %al
	jz 2f
	lea msg_needs_reset(%rip), %rsi
	call puts
	jmp 3f
2:	lea msg_no_reset(%rip), %rsi
	call puts
	call putu
	lea msg_paren_nl(%rip), %rsi
	call puts
3:	call vreset
	ret

/* desc 0 -> next 0. */
c_loop:
	xor %edi, %edi
	mov $BUF, %esi
	mov $64, %edx
	mov $(D_NEXT | NEXT(0)), %ecx
	call desc
	mov $1, %eax
	ret

/* desc i -> i + 1 mod 16: a chain through the whole table, forever. */
c_chain:
	xor %edi, %edi
1:	mov $BUF, %esi
	mov $64, %edx
	lea 1(%rdi), %ecx
	and $(QSZ - 1), %ecx
	shl $16, %ecx
	or $D_NEXT, %ecx
	call desc
	inc %edi
	cmp $QSZ, %edi
	jb 1b
	mov $1, %eax
	ret

c_far:
	xor %edi, %edi
	mov $FAR, %rsi
	mov $64, %edx
	xor %ecx, %ecx
	call desc
	mov $1, %eax
	ret

c_length:
	xor %edi, %edi
	mov $BUF, %esi
	mov $0xffffffff, %edx
	xor %ecx, %ecx
	call desc
	mov $1, %eax
	ret

/* A valid chain (a zero header and frame), but avail->idx 0x8000 ahead. */
c_ahead:
	xor %edi, %edi
	mov $BUF, %esi
	mov $64, %edx
	xor %ecx, %ecx
	call desc
	mov $0x8000, %eax
	ret

c_indirect:
	xor %edi, %edi
	mov $FAR, %rsi
	mov $64, %edx                   /* four descriptors' worth */
	mov $D_INDIR, %ecx
	call desc
	mov $1, %eax
	ret

/* The attacked queue's descriptor table far outside RAM (queue_select is on it). */
c_rings_far:
	mov $FAR, %rax
	mov %eax, CC_DESCLO(%r15)
	shr $32, %rax
	mov %eax, CC_DESCHI(%r15)
	xor %eax, %eax
	ret

/* Its used ring (134 bytes for 16 entries) over the last 64 bytes of RAM. */
c_used_edge:
	movl $(RAM_TOP - 64), CC_USEDLO(%r15)
	xor %eax, %eax
	ret

/* ---- 3. virtio-blk: wrong requests are I/O errors, not broken rings ---- */

/*
 * Make the 3-descriptor read (header at BUF, edx data bytes at DATA, status
 * at STATB) of sector rax available as the next request, kick, wait for
 * its completion and print "evil-virtio: blk NAME(rsi): RESULT". With edx
 * 0: a bare 8-byte header and the status byte. eax = the status byte
 * (0xff: no completion).
 */
blk_request:
	push %rsi
	movl $0, BUF                    /* VIRTIO_BLK_T_IN */
	movl $0, BUF + 4
	mov %rax, BUF + 8
	movb $0xff, STATB
	test %edx, %edx
	jnz 1f
	push %rdx
	xor %edi, %edi
	mov $BUF, %esi
	mov $8, %edx
	mov $(D_NEXT | NEXT(1)), %ecx
	call desc
	mov $1, %edi
	mov $STATB, %esi
	mov $1, %edx
	mov $D_WRITE, %ecx
	call desc
	pop %rdx
	jmp 2f
1:	push %rdx
	xor %edi, %edi
	mov $BUF, %esi
	mov $16, %edx
	mov $(D_NEXT | NEXT(1)), %ecx
	call desc
	pop %rdx
	push %rdx
	mov $1, %edi
	mov $DATA, %esi
	mov $(D_WRITE | D_NEXT | NEXT(2)), %ecx
	call desc
	mov $2, %edi
	mov $STATB, %esi
	mov $1, %edx
	mov $D_WRITE, %ecx
	call desc
	pop %rdx
2:	/* avail->ring[idx % 16] = 0, then idx + 1, kick. */
	movzwl AVAIL + 2, %eax
	mov %eax, %ecx
	and $(QSZ - 1), %ecx
	movw $0, AVAIL + 4(,%rcx,2)
	inc %eax
	movw %ax, AVAIL + 2
	mov %eax, %r9d                  /* the used index to wait for */
	call kick
	mov $POLLS, %ecx
3:	movzwl USED + 2, %eax
	cmp %r9w, %ax
	je 4f
	movzbl CC_STATUS(%r15), %eax    /* an exit a round: a bounded wait in real time */
	dec %ecx
	jnz 3b
	mov (%rsp), %rsi
	call case_head
	lea msg_no_completion(%rip), %rsi
	call puts
	mov $0xff, %eax
	jmp 9f
4:	mov (%rsp), %rsi
	call case_head
	movzbl STATB, %eax
	cmp $1, %eax
	jne 5f
	lea msg_ioerr(%rip), %rsi
	jmp 7f
5:	test %eax, %eax
	jnz 6f
	lea msg_ok(%rip), %rsi
	jmp 7f
6:	lea msg_status(%rip), %rsi
	call puts
	call putu
	lea msg_empty(%rip), %rsi
7:	call puts
	movzbl CC_STATUS(%r15), %eax
	test $ST_NEEDS_RESET, %al
	jz 8f
	lea msg_and_reset(%rip), %rsi
	call puts
8:	lea msg_nl(%rip), %rsi
	call puts
	movzbl STATB, %eax
9:	pop %rsi
	ret

blk_requests:
	call vreset
	call clear_area
	call negotiate
	call setup_queues
	movb $(ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK), CC_STATUS(%r15)
	mov DEVCFG + 4(%r15), %eax      /* capacity, in sectors: two dword reads */
	shl $32, %rax
	mov DEVCFG(%r15), %ecx
	or %rcx, %rax
	mov %rax, VARS + 8

	lea r_short(%rip), %rsi
	xor %eax, %eax
	xor %edx, %edx
	call blk_request
	lea r_beyond(%rip), %rsi
	mov VARS + 8, %rax
	mov $512, %edx
	call blk_request
	lea r_straddle(%rip), %rsi
	mov VARS + 8, %rax
	dec %rax
	mov $1024, %edx
	call blk_request
	lea r_huge(%rip), %rsi
	mov $-1, %rax
	mov $512, %edx
	call blk_request

	/* Still working: sector 0 holds the test's mark. */
	movl $0, DATA
	lea r_valid(%rip), %rsi
	xor %eax, %eax
	mov $512, %edx
	call blk_request
	test %eax, %eax
	jnz 2f
	lea mark(%rip), %rsi
	mov $DATA, %edi
	mov $(mark_end - mark), %ecx
	repe cmpsb
	je 1f
	lea r_valid(%rip), %rsi
	call case_head
	lea msg_bad_data(%rip), %rsi
	call puts
	jmp 2f
1:	movzwl USED + 2, %eax           /* the last used element: 512 bytes + status */
	dec %eax
	and $(QSZ - 1), %eax
	mov USED + 4 + 4(,%rax,8), %eax
	cmp $513, %eax
	je 2f
	lea r_valid(%rip), %rsi
	call case_head
	lea msg_bad_len(%rip), %rsi
	call puts
	call putu
	lea msg_nl(%rip), %rsi
	call puts
2:	call vreset
	ret

/* ---- 4. virtio-net: BAR4 moved under a running device ---- */

/* BAR4 <- eax, through PCI config (memory decoding stays on). */
set_bar4:
	push %rax
	mov %r12d, %eax
	or $PCI_BAR4, %eax
	mov $CFG_ADDR, %dx
	out %eax, %dx
	pop %rax
	mov $CFG_DATA, %dx
	out %eax, %dx
	ret

/* eax <- BAR4's address. */
get_bar4:
	mov %r12d, %eax
	or $PCI_BAR4, %eax
	mov $CFG_ADDR, %dx
	out %eax, %dx
	mov $CFG_DATA, %dx
	in %dx, %eax
	and $0xfffffff0, %eax
	ret

/* A while (status reads, an exit each): the device's threads catch up. */
settle:
	push %rcx
	mov $20000, %ecx
1:	movzbl CC_STATUS(%r15), %eax
	dec %ecx
	jnz 1b
	pop %rcx
	ret

/*
 * Valid rings, DRIVER_OK; then BAR4 moves MOVE_BY up (the doorbells are
 * re-hooked there, each queue kicked once, finding the ring empty); the
 * transmit chain (a zero virtio_net_hdr_v1 and a 60-byte broadcast frame)
 * is made available, the OLD doorbell rung (nobody there: nothing may
 * happen), then the NEW one: the used index must advance. "evil-virtio:
 * net bar-move: OK" or "...: FAILED (...)". Then reset, BAR4 back.
 */
#define MOVE_BY 0x40000
bar_move:
	push %r8
	call vreset
	call clear_area
	call negotiate
	call setup_queues
	xor %edi, %edi                  /* desc 0: the header, 12 zero bytes */
	mov $BUF, %esi
	mov $12, %edx
	mov $(D_NEXT | NEXT(1)), %ecx
	call desc
	mov $1, %edi                    /* desc 1: the frame */
	mov $(BUF + 12), %esi
	mov $60, %edx
	xor %ecx, %ecx
	call desc
	movl $0xffffffff, BUF + 12      /* destination ff:ff:ff:ff:ff:ff */
	movw $0xffff, BUF + 16
	movl $0x00545202, BUF + 18      /* source 02:52:54:00:ba:12 */
	movw $0x12ba, BUF + 22
	movw $0xb588, BUF + 24          /* ethertype 0x88b5 (local experimental) */
	movw $0, AVAIL + 4              /* avail->ring[0] = desc 0, not yet published */
	movb $(ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK), CC_STATUS(%r15)

	mov %r15, %r8                   /* r8: where BAR4 was */
	lea MOVE_BY(%r15), %eax
	call set_bar4
	call get_bar4
	lea MOVE_BY(%r8), %ecx
	cmp %ecx, %eax
	lea msg_bm_bar(%rip), %rsi
	jne 8f
	mov %rax, %r15
	call settle                     /* the move's kicks: on an empty ring */
	movzwl USED + 2, %eax
	test %eax, %eax
	lea msg_bm_early(%rip), %rsi
	jnz 8f
	movw $1, AVAIL + 2              /* publish the chain */
	movw %bx, NOTIFY(%r8,%rbx,4)    /* the old doorbell: decodes nothing now */
	call settle
	movzbl CC_STATUS(%r15), %eax
	test $ST_NEEDS_RESET, %al
	lea msg_bm_status(%rip), %rsi
	jnz 8f
	movzwl USED + 2, %eax
	test %eax, %eax
	lea msg_bm_old(%rip), %rsi
	jnz 8f
	call kick                       /* the new doorbell */
	mov $POLLS, %ecx
1:	movzwl USED + 2, %eax
	test %eax, %eax
	jnz 2f
	movzbl CC_STATUS(%r15), %eax    /* an exit a round: a bounded wait in real time */
	dec %ecx
	jnz 1b
	movzwl USED + 2, %eax
	lea msg_bm_used(%rip), %rsi
	jmp 8f
2:	movzbl CC_STATUS(%r15), %eax
	test $ST_NEEDS_RESET, %al
	lea msg_bm_status(%rip), %rsi
	jnz 8f
	lea n_bar_move(%rip), %rsi
	call case_head
	lea msg_ok(%rip), %rsi
	call puts
	lea msg_nl(%rip), %rsi
	call puts
	jmp 9f
8:	push %rax                       /* FAILED: rsi says what, eax the number */
	push %rsi
	lea n_bar_move(%rip), %rsi
	call case_head
	lea msg_bm_failed(%rip), %rsi
	call puts
	pop %rsi
	call puts
	pop %rax
	call putu
	lea msg_paren_nl(%rip), %rsi
	call puts
9:	call vreset
	mov %r8d, %eax                  /* BAR4 back where it was */
	call set_bar4
	mov %r8, %r15
	pop %r8
	ret

/* Print "FAIL: <rsi>" and stop (khyve: exit status 2, halted). */
fail:
	push %rsi
	lea msg_fail(%rip), %rsi
	call puts
	mov VARS, %rsi
	test %rsi, %rsi
	jz 1f
	call puts
	lea msg_colon(%rip), %rsi
	call puts
1:	pop %rsi
	call puts
	lea msg_nl(%rip), %rsi
	call puts
2:	cli
	hlt
	jmp 2b

#include "lm-lib.h"

	.balign 8
case_table:
	.quad n_loop, c_loop
	.quad n_chain, c_chain
	.quad n_far, c_far
	.quad n_length, c_length
	.quad n_ahead, c_ahead
	.quad n_indirect, c_indirect
	.quad n_rings_far, c_rings_far
	.quad n_used_edge, c_used_edge
	.quad 0, 0

n_loop:		.asciz "descriptor-loop"
n_chain:	.asciz "chain-longer-than-queue"
n_far:		.asciz "buffer-outside-ram"
n_length:	.asciz "length-0xffffffff"
n_ahead:	.asciz "avail-index-ahead"
n_indirect:	.asciz "indirect-outside-ram"
n_rings_far:	.asciz "rings-outside-ram"
n_used_edge:	.asciz "used-ring-past-ram-end"
n_bar_move:	.asciz "bar-move"
r_short:	.asciz "short-header"
r_beyond:	.asciz "read-beyond-end"
r_straddle:	.asciz "read-straddling-end"
r_huge:		.asciz "read-sector-2^64-1"
r_valid:	.asciz "valid-read"
name_net:	.asciz "net"
name_blk:	.asciz "blk"
mark:		.ascii "khyve-evil-virtio"
mark_end:
msg_prefix:	.asciz "evil-virtio: "
msg_space:	.asciz " "
msg_colon:	.asciz ": "
msg_nl:		.asciz "\n"
msg_empty:	.asciz ""
msg_paren_nl:	.asciz ")\n"
msg_needs_reset: .asciz "NEEDS_RESET\n"
msg_no_reset:	.asciz "no reset (status "
msg_garbage:	.asciz "garbage"
msg_sane:	.asciz "registers sane\n"
msg_insane:	.asciz "registers WRONG: "
msg_g_noqueue:	.asciz "a queue past the last has a size"
msg_g_qsize:	.asciz "a bad queue size was taken, or reset did not restore it"
msg_g_vector:	.asciz "vector 0xfffe was taken, or reset did not clear it"
msg_g_features:	.asciz "a feature select past 1 reads features"
msg_g_enable:	.asciz "queue enabled after reset"
msg_g_addr:	.asciz "queue address kept over reset"
msg_g_frozen:	.asciz "queue fields changed while running"
msg_g_live:	.asciz "needs reset after garbage on a running device with valid rings"
msg_ioerr:	.asciz "IOERR"
msg_ok:		.asciz "OK"
msg_status:	.asciz "status "
msg_and_reset:	.asciz " and NEEDS_RESET"
msg_no_completion: .asciz "no completion\n"
msg_bad_data:	.asciz "read the wrong data\n"
msg_bad_len:	.asciz "used length "
msg_bm_failed:	.asciz "FAILED ("
msg_bm_bar:	.asciz "BAR4 did not move, reads "
msg_bm_early:	.asciz "chain used before it was published, used idx "
msg_bm_status:	.asciz "status "
msg_bm_old:	.asciz "consumed on the OLD doorbell, used idx "
msg_bm_used:	.asciz "used idx "
msg_done:	.asciz "evil-virtio: done\n"
msg_fail:	.asciz "FAIL: "
msg_nodev:	.asciz "no virtio-net at slot 3 and no virtio-blk at slot 4"
msg_reset_stuck: .asciz "status not 0 after reset"
msg_no_v1:	.asciz "VERSION_1 not offered"
msg_no_indirect: .asciz "INDIRECT_DESC not offered"
msg_fok:	.asciz "FEATURES_OK refused"
msg_qsize:	.asciz "queue size 16 refused"
