/*
 * Unit tests for the hardened split virtqueue (src/virtqueue.c), against a
 * fake guest: a static buffer standing for RAM at guest-physical RAM_GPA and
 * a translate callback that, like memmap_translate, answers only for ranges
 * wholly inside it. Tests write rings and descriptors there as a driver
 * would and check what the device side takes, returns and refuses: normal
 * chains, the used ring and interrupt decisions, notification suppression,
 * and every protocol violation the theory statement lists (each must break
 * the queue with a reason, keep it broken, and leave it usable after
 * vq_reset).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "virtqueue.h"

#define RAM_GPA 0x100000ull
#define RAM_SIZE 0x100000ull
#define DESC_OFF 0x0000
#define AVAIL_OFF 0x2000
#define USED_OFF 0x3000
#define TABLE_OFF 0x8000    /* indirect tables */
#define DATA_OFF 0x10000    /* buffers */
#define QSIZE 16
/* Above this, translate pretends any length is RAM (the 4 GiB chain test). */
#define HUGE_GPA (1ull << 40)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static bool huge_window;
static unsigned translations;

static void *translate(void *arg, uint64_t gpa, uint64_t len)
{
	(void)arg;
	translations++;
	if (huge_window && gpa >= HUGE_GPA)
		return ram;   /* never dereferenced by the queue: it only builds iovecs */
	if (gpa < RAM_GPA || len > RAM_SIZE || gpa - RAM_GPA > RAM_SIZE - len)
		return NULL;
	return ram + (gpa - RAM_GPA);
}

static struct vring_desc *desc_at(unsigned off)
{
	return (struct vring_desc *)(ram + off);
}

#define D(i) (desc_at(DESC_OFF)[i])
#define T(i) (desc_at(TABLE_OFF)[i])
#define AVAIL ((struct vring_avail *)(ram + AVAIL_OFF))
#define USED ((struct vring_used *)(ram + USED_OFF))

static uint64_t data_gpa(unsigned off)
{
	return RAM_GPA + DATA_OFF + off;
}

static void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* The driver makes chain `head` available. */
static void offer(uint16_t size, uint16_t head)
{
	AVAIL->ring[AVAIL->idx % size] = head;
	AVAIL->idx++;
}

static void setup_size(struct virtqueue *vq, uint16_t size)
{
	memset(ram, 0, sizeof(ram));
	memset(vq, 0, sizeof(*vq));
	huge_window = false;
	vq->size = size;
	vq->desc_gpa = RAM_GPA + DESC_OFF;
	vq->avail_gpa = RAM_GPA + AVAIL_OFF;
	vq->used_gpa = RAM_GPA + USED_OFF;
	vq->translate = translate;
	vq_reset(vq);
	assert_int_equal(vq_attach(vq), 0);
	assert_null(vq->broken);
}

static void setup(struct virtqueue *vq)
{
	setup_size(vq, QSIZE);
}

/* vq_pop must fail with a reason containing why, and keep failing. */
static void expect_broken(struct virtqueue *vq, const char *why)
{
	struct iovec iov[8];
	struct vq_chain c;
	assert_int_equal(vq_pop(vq, &c, iov, 8), -1);
	assert_non_null(vq->broken);
	if (!strstr(vq->broken, why))
		fail_msg("broken for '%s', expected '%s'", vq->broken, why);
	/* Broken stays broken: no more chains, no re-attach, no work. */
	assert_int_equal(vq_pop(vq, &c, iov, 8), -1);
	assert_false(vq_has_work(vq));
	assert_int_equal(vq_attach(vq), -1);
	/* Until the driver resets the device. */
	vq_reset(vq);
	assert_null(vq->broken);
	assert_int_equal(vq_attach(vq), 0);
}

static void test_direct_chain(void **state)
{
	struct virtqueue vq;
	struct iovec iov[8];
	struct vq_chain c;
	setup(&vq);
	assert_false(vq_has_work(&vq));
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 0);

	/* Header (readable), data (readable), an empty one, status (writable). */
	set_desc(&D(3), data_gpa(0), 16, VRING_DESC_F_NEXT, 7);
	set_desc(&D(7), data_gpa(0x100), 512, VRING_DESC_F_NEXT, 1);
	set_desc(&D(1), data_gpa(0x400), 0, VRING_DESC_F_NEXT, 2);
	set_desc(&D(2), data_gpa(0x500), 1, VRING_DESC_F_WRITE, 0);
	offer(QSIZE, 3);
	assert_true(vq_has_work(&vq));
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.nin, 1);          /* the empty descriptor takes no iovec */
	assert_int_equal(c.out_len, 528);
	assert_int_equal(c.in_len, 1);
	assert_ptr_equal(c.iov, iov);
	assert_ptr_equal(iov[0].iov_base, ram + DATA_OFF);
	assert_int_equal(iov[0].iov_len, 16);
	assert_ptr_equal(iov[1].iov_base, ram + DATA_OFF + 0x100);
	assert_ptr_equal(iov[2].iov_base, ram + DATA_OFF + 0x500);
	assert_false(vq_has_work(&vq));
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 0);

	/* Used ring: element and index, in order. */
	vq_push(&vq, 3, 1);
	assert_int_equal(USED->idx, 1);
	assert_int_equal(USED->ring[0].id, 3);
	assert_int_equal(USED->ring[0].len, 1);

	/* Unpop gives the same chain again. */
	set_desc(&D(5), data_gpa(0x600), 8, 0, 0);
	offer(QSIZE, 5);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_int_equal(c.head, 5);
	vq_unpop(&vq, 1);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_int_equal(c.head, 5);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 0);

	/* Batched push: nothing visible until published. */
	vq_push_elem(&vq, 5, 0);
	assert_int_equal(USED->idx, 1);
	vq_push_publish(&vq);
	assert_int_equal(USED->idx, 2);
	assert_int_equal(USED->ring[1].id, 5);
	assert_null(vq.broken);
}

static void test_indirect_chain(void **state)
{
	struct virtqueue vq;
	struct iovec iov[8];
	struct vq_chain c;
	setup(&vq);
	vq.indirect = true;
	set_desc(&T(0), data_gpa(0), 16, VRING_DESC_F_NEXT, 2);
	set_desc(&T(2), data_gpa(0x1000), 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(&T(1), data_gpa(0x3000), 1, VRING_DESC_F_WRITE, 0);
	set_desc(&D(9), RAM_GPA + TABLE_OFF, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 9);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_int_equal(c.head, 9);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 2);
	assert_int_equal(c.out_len, 16);
	assert_int_equal(c.in_len, 4097);
	assert_ptr_equal(iov[1].iov_base, ram + DATA_OFF + 0x1000);
	assert_ptr_equal(iov[2].iov_base, ram + DATA_OFF + 0x3000);

	/* A direct chain that ends in an indirect table (readable, then the table). */
	set_desc(&D(4), data_gpa(0x4000), 16, VRING_DESC_F_NEXT, 6);
	set_desc(&D(6), RAM_GPA + TABLE_OFF + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(&desc_at(TABLE_OFF + 0x100)[0], data_gpa(0x5000), 1, VRING_DESC_F_WRITE, 0);
	offer(QSIZE, 4);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 1);

	/* A table of the largest size the spec allows is fine, with room for it. */
	static struct iovec big[QSIZE * 4];
	memset(ram + TABLE_OFF, 0, 64 * 16);
	for (unsigned i = 0; i < 64; i++)
		set_desc(&T(i), data_gpa(i * 8), 8, i < 63 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(&D(0), RAM_GPA + TABLE_OFF, 64 * 16, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	assert_int_equal(vq_pop(&vq, &c, big, 64), 1);
	assert_int_equal(c.nout, 64);
	assert_int_equal(c.out_len, 512);
	assert_null(vq.broken);
}

/* Descriptor tables need no alignment beyond the ring's: an odd indirect table works. */
static void test_indirect_unaligned(void **state)
{
	struct virtqueue vq;
	struct iovec iov[8];
	struct vq_chain c;
	setup(&vq);
	vq.indirect = true;
	struct vring_desc t = { .addr = data_gpa(0), .len = 32, .flags = 0 };
	memcpy(ram + TABLE_OFF + 3, &t, sizeof(t));
	set_desc(&D(0), RAM_GPA + TABLE_OFF + 3, 16, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_int_equal(c.out_len, 32);
}

static void test_index_wrap(void **state)
{
	struct virtqueue vq;
	struct iovec iov[8];
	struct vq_chain c;
	setup(&vq);
	/* Both sides near the 16-bit wrap: pending counts across it. */
	vq.last_avail = vq.used_idx = 65534;
	AVAIL->idx = 65534;
	USED->idx = 65534;
	for (uint16_t h = 0; h < 4; h++) {
		set_desc(&D(h), data_gpa(h * 16), 16, VRING_DESC_F_WRITE, 0);
		offer(QSIZE, h);
	}
	assert_int_equal(AVAIL->idx, 2);
	for (uint16_t h = 0; h < 4; h++) {
		assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
		assert_int_equal(c.head, h);
		vq_push(&vq, c.head, 16);
	}
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 0);
	assert_int_equal(USED->idx, 2);
	assert_int_equal(USED->ring[(65534 + 3) % QSIZE].id, 3);
}

static void test_interrupt_decisions(void **state)
{
	struct virtqueue vq;
	setup(&vq);
	/* Without EVENT_IDX: the NO_INTERRUPT flag decides. */
	vq_push(&vq, 0, 0);
	assert_true(vq_should_interrupt(&vq));
	AVAIL->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&vq, 0, 0);
	assert_false(vq_should_interrupt(&vq));
	AVAIL->flags = 0;
	assert_true(vq_should_interrupt(&vq));

	/* With EVENT_IDX: used_event decides, the flag is ignored. */
	setup(&vq);
	vq.event_idx = true;
	uint16_t *used_event = &AVAIL->ring[QSIZE];
	AVAIL->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&vq, 0, 0);                      /* used 1 */
	assert_true(vq_should_interrupt(&vq));   /* the first signal always goes */
	*used_event = 5;                         /* "tell me once entry 5 is used" */
	vq_push(&vq, 0, 0);                      /* used 2 */
	assert_false(vq_should_interrupt(&vq));
	for (int i = 0; i < 3; i++)
		vq_push(&vq, 0, 0);              /* used 5: entry 4 used, not yet 5 */
	assert_false(vq_should_interrupt(&vq));
	vq_push(&vq, 0, 0);                      /* used 6: entry 5 used */
	assert_true(vq_should_interrupt(&vq));
	vq_push(&vq, 0, 0);                      /* used 7: event 5 already signalled */
	assert_false(vq_should_interrupt(&vq));
	/* A batch that steps over used_event signals once. */
	*used_event = 8;
	for (int i = 0; i < 4; i++)
		vq_push(&vq, 0, 0);              /* used 11 */
	assert_true(vq_should_interrupt(&vq));
	assert_false(vq_should_interrupt(&vq));
	/* An event index behind the used index (stale driver value) does not signal. */
	*used_event = 3;
	vq_push(&vq, 0, 0);
	assert_false(vq_should_interrupt(&vq));
	/* After reset the first signal goes again. */
	vq_reset(&vq);
	assert_int_equal(vq_attach(&vq), 0);
	vq_push(&vq, 0, 0);
	assert_true(vq_should_interrupt(&vq));
}

static void test_notify_suppression(void **state)
{
	struct virtqueue vq;
	struct iovec iov[8];
	struct vq_chain c;
	setup(&vq);
	vq_disable_notify(&vq);
	assert_int_equal(USED->flags, VRING_USED_F_NO_NOTIFY);
	assert_false(vq_enable_notify(&vq));
	assert_int_equal(USED->flags, 0);
	/* A chain that arrived while disabled is reported by enable. */
	vq_disable_notify(&vq);
	set_desc(&D(0), data_gpa(0), 4, 0, 0);
	offer(QSIZE, 0);
	assert_true(vq_enable_notify(&vq));
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_false(vq_enable_notify(&vq));

	/* EVENT_IDX: avail_event tells the driver where to notify; the flag stays clear. */
	setup(&vq);
	vq.event_idx = true;
	uint16_t *avail_event = (uint16_t *)&USED->ring[QSIZE];
	vq_disable_notify(&vq);
	assert_int_equal(USED->flags, 0);
	set_desc(&D(0), data_gpa(0), 4, 0, 0);
	offer(QSIZE, 0);
	offer(QSIZE, 0);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_true(vq_enable_notify(&vq));
	assert_int_equal(*avail_event, 1);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_false(vq_enable_notify(&vq));
	assert_int_equal(*avail_event, 2);
}

static void test_iov_copies(void **state)
{
	char a[4] = "abcd", b[3] = "efg", out[8] = { 0 };
	struct iovec iov[2] = { { a, 4 }, { b, 3 } };
	assert_int_equal(vq_iov_to_buf(iov, 2, 2, out, 8), 5);
	assert_memory_equal(out, "cdefg", 5);
	assert_int_equal(vq_iov_to_buf(iov, 2, 9, out, 8), 0);
	assert_int_equal(vq_buf_to_iov(iov, 2, 3, "XYZ", 3), 3);
	assert_memory_equal(a, "abcX", 4);
	assert_memory_equal(b, "YZg", 3);
	assert_int_equal(vq_buf_to_iov(iov, 2, 6, "123", 3), 1);
	assert_memory_equal(b, "YZ1", 3);
}

/* ---- hardening: every violation breaks the queue with its reason ---- */

static void test_loops_and_indices(void **state)
{
	struct virtqueue vq;
	setup(&vq);
	/* Empty descriptors, so that no segment limit is reached first. */
	set_desc(&D(0), data_gpa(0), 0, VRING_DESC_F_NEXT, 1);
	set_desc(&D(1), data_gpa(0), 0, VRING_DESC_F_NEXT, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "loops");

	setup(&vq);   /* a descriptor that names itself */
	set_desc(&D(5), data_gpa(0), 0, VRING_DESC_F_NEXT, 5);
	offer(QSIZE, 5);
	expect_broken(&vq, "loops");

	setup(&vq);
	set_desc(&D(0), data_gpa(0), 4, VRING_DESC_F_NEXT, QSIZE);
	offer(QSIZE, 0);
	expect_broken(&vq, "next outside");

	setup(&vq);
	offer(QSIZE, QSIZE);
	expect_broken(&vq, "outside the table");

	setup(&vq);
	offer(QSIZE, 0xffff);
	expect_broken(&vq, "outside the table");

	setup(&vq);
	AVAIL->idx = QSIZE + 1;
	expect_broken(&vq, "ahead");
	/* Exactly a full ring is fine. */
	setup(&vq);
	for (unsigned i = 0; i < QSIZE; i++) {
		set_desc(&D(i), data_gpa(i), 1, 0, 0);
		offer(QSIZE, (uint16_t)i);
	}
	struct iovec iov[8];
	struct vq_chain c;
	for (unsigned i = 0; i < QSIZE; i++)
		assert_int_equal(vq_pop(&vq, &c, iov, 8), 1);
	assert_int_equal(vq_pop(&vq, &c, iov, 8), 0);
	/* The index running backwards is "ahead" by almost 65536. */
	AVAIL->idx = QSIZE - 1;
	expect_broken(&vq, "ahead");

	/* A chain as long as the table, no loop, is fine; a loop in an indirect table is not. */
	setup(&vq);
	for (unsigned i = 0; i < QSIZE; i++)
		set_desc(&D(i), data_gpa(i), 1, i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	offer(QSIZE, 0);
	static struct iovec many[QSIZE];
	assert_int_equal(vq_pop(&vq, &c, many, QSIZE), 1);
	assert_int_equal(c.nout, QSIZE);
	setup(&vq);
	vq.indirect = true;
	set_desc(&T(0), data_gpa(0), 0, VRING_DESC_F_NEXT, 1);
	set_desc(&T(1), data_gpa(0), 0, VRING_DESC_F_NEXT, 0);
	set_desc(&D(0), RAM_GPA + TABLE_OFF, 32, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "loops");
	setup(&vq);
	vq.indirect = true;
	set_desc(&T(0), data_gpa(0), 1, VRING_DESC_F_NEXT, 2);
	set_desc(&D(0), RAM_GPA + TABLE_OFF, 32, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "next outside");
}

static void test_buffers_outside_ram(void **state)
{
	struct virtqueue vq;
	static const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ RAM_GPA + RAM_SIZE - 4, 8 },          /* straddles the end */
		{ RAM_GPA + RAM_SIZE, 1 },              /* just past it */
		{ RAM_GPA - 1, 2 },                     /* straddles the start */
		{ 0, 16 },                              /* below RAM */
		{ 0xfffffffffffffff0ull, 0x20 },        /* wraps around */
		{ RAM_GPA, 0xffffffffu },               /* far too long */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		setup(&vq);
		set_desc(&D(0), data_gpa(0), 16, VRING_DESC_F_NEXT, 1);
		set_desc(&D(1), bad[i].addr, bad[i].len, VRING_DESC_F_WRITE, 0);
		offer(QSIZE, 0);
		expect_broken(&vq, "outside guest RAM");
	}
	/* The last byte of RAM is fine. */
	setup(&vq);
	set_desc(&D(0), RAM_GPA + RAM_SIZE - 1, 1, 0, 0);
	offer(QSIZE, 0);
	struct iovec iov[2];
	struct vq_chain c;
	assert_int_equal(vq_pop(&vq, &c, iov, 2), 1);
	assert_ptr_equal(iov[0].iov_base, ram + RAM_SIZE - 1);
}

static void test_rings_outside_ram(void **state)
{
	struct virtqueue vq;
	uint64_t *fields[] = { &vq.desc_gpa, &vq.avail_gpa, &vq.used_gpa };
	for (unsigned f = 0; f < 3; f++) {
		/* The ring's last byte beyond RAM, then far away. */
		static const uint64_t where[] = { RAM_GPA + RAM_SIZE - 16, 0x10000, 1ull << 60 };
		for (unsigned w = 0; w < 3; w++) {
			setup(&vq);
			*fields[f] = where[w];
			vq_reset(&vq);
			assert_int_equal(vq_attach(&vq), -1);
			assert_non_null(strstr(vq.broken, "outside guest RAM"));
			assert_null(vq.desc);
			assert_false(vq_has_work(&vq));
		}
	}
	/* Misaligned: descriptors to 16, avail to 2, used to 4 bytes. */
	static const uint64_t misalign[] = { 8, 1, 2 };
	for (unsigned f = 0; f < 3; f++) {
		setup(&vq);
		*fields[f] += misalign[f];
		vq_reset(&vq);
		assert_int_equal(vq_attach(&vq), -1);
		assert_non_null(strstr(vq.broken, "misaligned"));
	}
	/* Sizes: a power of two up to 32768. */
	static const uint16_t sizes[] = { 0, 3, 12, 0xffff };
	for (unsigned s = 0; s < 4; s++) {
		setup(&vq);
		vq.size = sizes[s];
		vq_reset(&vq);
		assert_int_equal(vq_attach(&vq), -1);
		assert_non_null(strstr(vq.broken, "power of two"));
	}
	/* Used before attach (or after detach): refused, not a crash. */
	setup(&vq);
	vq_detach(&vq);
	struct iovec iov[2];
	struct vq_chain c;
	assert_int_equal(vq_pop(&vq, &c, iov, 2), -1);
	assert_non_null(strstr(vq.broken, "not attached"));
	vq_push(&vq, 0, 0);   /* ignored */
	assert_false(vq_should_interrupt(&vq));
	assert_false(vq_enable_notify(&vq));
}

static void test_indirect_violations(void **state)
{
	struct virtqueue vq;
	/* Without the feature. */
	setup(&vq);
	set_desc(&T(0), data_gpa(0), 4, 0, 0);
	set_desc(&D(0), RAM_GPA + TABLE_OFF, 16, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "without VIRTIO_F_INDIRECT_DESC");

	/* Nested. */
	setup(&vq);
	vq.indirect = true;
	set_desc(&T(0), RAM_GPA + TABLE_OFF + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(&desc_at(TABLE_OFF + 0x100)[0], data_gpa(0), 4, 0, 0);
	set_desc(&D(0), RAM_GPA + TABLE_OFF, 16, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "nested");
	/* Nested to itself. */
	setup(&vq);
	vq.indirect = true;
	set_desc(&T(0), RAM_GPA + TABLE_OFF, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(&D(0), RAM_GPA + TABLE_OFF, 16, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "nested");

	/* INDIRECT together with NEXT. */
	setup(&vq);
	vq.indirect = true;
	set_desc(&T(0), data_gpa(0), 4, 0, 0);
	set_desc(&D(0), RAM_GPA + TABLE_OFF, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	set_desc(&D(1), data_gpa(0), 4, 0, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "with NEXT");

	/* Table lengths: not a multiple of 16, empty, more than 32768 entries. */
	static const uint32_t lens[] = { 24, 15, 0, 16u * 32769 };
	for (unsigned i = 0; i < 4; i++) {
		setup(&vq);
		vq.indirect = true;
		set_desc(&D(0), RAM_GPA + TABLE_OFF, lens[i], VRING_DESC_F_INDIRECT, 0);
		offer(QSIZE, 0);
		expect_broken(&vq, "multiple of 16");
	}

	/* The table outside RAM. */
	setup(&vq);
	vq.indirect = true;
	set_desc(&D(0), RAM_GPA + RAM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "indirect table outside");
}

static void test_chain_shape_violations(void **state)
{
	struct virtqueue vq;
	/* Readable after writable, directly and across an indirect table. */
	setup(&vq);
	set_desc(&D(0), data_gpa(0), 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&D(1), data_gpa(0), 4, 0, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "readable descriptor after a writable");
	setup(&vq);
	vq.indirect = true;
	set_desc(&D(0), data_gpa(0), 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&D(1), RAM_GPA + TABLE_OFF, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(&T(0), data_gpa(0), 4, 0, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "readable descriptor after a writable");

	/* More segments than the caller's iovecs (empty descriptors do not count). */
	setup(&vq);
	for (unsigned i = 0; i < 5; i++)
		set_desc(&D(i), data_gpa(i), 1, i < 4 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(QSIZE, 0);
	struct iovec iov[5];
	struct vq_chain c;
	assert_int_equal(vq_pop(&vq, &c, iov, 4), -1);
	assert_non_null(strstr(vq.broken, "more segments"));
	setup(&vq);
	for (unsigned i = 0; i < 5; i++)
		set_desc(&D(i), data_gpa(i), i == 2 ? 0 : 1, i < 4 ? VRING_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	offer(QSIZE, 0);
	assert_int_equal(vq_pop(&vq, &c, iov, 4), 1);
	assert_int_equal(c.nout, 4);

	/* A total over 4 GiB (the fake RAM pretends to be that large above HUGE_GPA). */
	setup(&vq);
	huge_window = true;
	set_desc(&D(0), HUGE_GPA, 0x80000000u, VRING_DESC_F_NEXT, 1);
	set_desc(&D(1), HUGE_GPA, 0x7fffffffu, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(&D(2), HUGE_GPA, 1, VRING_DESC_F_WRITE, 0);
	offer(QSIZE, 0);
	expect_broken(&vq, "longer than 4 GiB");
	/* Exactly 4 GiB - 1 is fine. */
	setup(&vq);
	huge_window = true;
	set_desc(&D(0), HUGE_GPA, 0x80000000u, VRING_DESC_F_NEXT, 1);
	set_desc(&D(1), HUGE_GPA, 0x7fffffffu, VRING_DESC_F_WRITE, 0);
	offer(QSIZE, 0);
	assert_int_equal(vq_pop(&vq, &c, iov, 4), 1);
	assert_int_equal(c.out_len + c.in_len, 0xffffffffull);
}

/* A broken queue stays broken: new, valid chains are not taken until vq_reset. */
static void test_broken_until_reset(void **state)
{
	struct virtqueue vq;
	struct iovec iov[4];
	struct vq_chain c;
	setup(&vq);
	offer(QSIZE, 99);
	assert_int_equal(vq_pop(&vq, &c, iov, 4), -1);
	const char *why = vq.broken;
	set_desc(&D(0), data_gpa(0), 4, 0, 0);
	offer(QSIZE, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vq_pop(&vq, &c, iov, 4), -1);
	assert_ptr_equal(vq.broken, why);   /* the first reason stays */
	vq_reset(&vq);
	assert_int_equal(vq_attach(&vq), 0);
	/* The driver resets its ring too: the queue starts from index 0. */
	memset(ram + AVAIL_OFF, 0, 0x1000);
	memset(ram + USED_OFF, 0, 0x1000);
	offer(QSIZE, 0);
	assert_int_equal(vq_pop(&vq, &c, iov, 4), 1);
	assert_int_equal(c.head, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_chain),
		cmocka_unit_test(test_indirect_chain),
		cmocka_unit_test(test_indirect_unaligned),
		cmocka_unit_test(test_index_wrap),
		cmocka_unit_test(test_interrupt_decisions),
		cmocka_unit_test(test_notify_suppression),
		cmocka_unit_test(test_iov_copies),
		cmocka_unit_test(test_loops_and_indices),
		cmocka_unit_test(test_buffers_outside_ram),
		cmocka_unit_test(test_rings_outside_ram),
		cmocka_unit_test(test_indirect_violations),
		cmocka_unit_test(test_chain_shape_violations),
		cmocka_unit_test(test_broken_until_reset),
	};
	return cmocka_run_group_tests_name("virtqueue", tests, NULL, NULL);
}
