/*
 * Unit tests for viona's userspace datapath (viona_user.c) with no VM: the
 * test plays the guest driver on a fake guest RAM and the host on the
 * other end of the "TAP".
 *
 * How it runs without KVM. The datapath reaches the rest of khyve through
 * three functions only: vmm_drv_gpa2kva (its lease) and viona_interrupt /
 * viona_ring_error (viona.c). This file defines all of them, so the linker
 * takes viona_user.o and virtqueue.o from libkhyve.a and neither viona.o
 * nor vmm_drv.o: the "lease" is a malloc'ed RAM, interrupts and ring
 * errors are recorded. The TAP is one end of an AF_UNIX datagram
 * socketpair, which keeps what matters here -- one readv/writev is one
 * whole packet, non-blocking, EAGAIN and POLLOUT when the peer's queue is
 * full -- and lets the test see every byte exactly. One test uses a real
 * TAP (skipped without CAP_NET_ADMIN or /dev/net/tun): a frame each way
 * through the host kernel, with the header the TAP writes and the
 * num_buffers it leaves to us. Offloads end to end are the system tests'.
 *
 * Covered: transmit (gathered chains, malformed frames dropped and the
 * queue going on, back-pressure with nothing lost or reordered), receive
 * with and without mergeable buffers (num_buffers, lengths, a packet too
 * big for its buffer dropped and the buffer reused), an empty receive ring
 * leaving packets queued until the guest kicks, a broken ring reported
 * while the other queue keeps working, halt/run continuing where the rings
 * stood (pending receive chains given back), and EVENT_IDX notification
 * suppression.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tap.h"
#include "viona_impl.h"
#include "virtio_net_hw.h"
#include "virtqueue.h"

#define HDR 12u
#define RAM_SIZE (8u << 20)
#define QSIZE 256u
#define BIT(n) (1ull << (n))

/* ---- what viona.c and vmm_drv.c would provide ---- */

struct vmm_lease {
	unsigned char *ram;
	uint64_t size;
};

void *vmm_drv_gpa2kva(struct vmm_lease *lease, uint64_t gpa, uint64_t len)
{
	if (gpa > lease->size || len > lease->size - gpa)
		return NULL;
	return lease->ram + gpa;
}

static atomic_uint interrupts[VIONA_NQUEUES];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static char ring_error[200];

void viona_interrupt(struct viona *v, unsigned q)
{
	atomic_fetch_add(&interrupts[q], 1);
}

void viona_ring_error(struct viona *v, const char *why)
{
	pthread_mutex_lock(&error_lock);
	snprintf(ring_error, sizeof(ring_error), "%s", why);
	pthread_mutex_unlock(&error_lock);
}

/* ---- the fake guest ---- */

struct gring {
	uint64_t desc, avail, used;   /* gpas */
	uint16_t avail_idx;           /* next avail slot the guest fills */
	uint16_t next_desc;           /* descriptors handed out round-robin */
	uint16_t used_seen;
};

struct bench {
	struct vmm_lease lease;
	struct viona v;
	struct gring ring[VIONA_NQUEUES];
	int host_fd;                  /* the other end of the "TAP" */
	uint64_t next_buf;            /* bump allocator for guest buffers */
};

static unsigned char *gpa(struct bench *b, uint64_t addr)
{
	return b->lease.ram + addr;
}

static volatile struct vring_desc *gdesc(struct bench *b, unsigned q)
{
	return (void *)gpa(b, b->ring[q].desc);
}

static volatile struct vring_avail *gavail(struct bench *b, unsigned q)
{
	return (void *)gpa(b, b->ring[q].avail);
}

static volatile struct vring_used *gused(struct bench *b, unsigned q)
{
	return (void *)gpa(b, b->ring[q].used);
}

static uint64_t alloc_buf(struct bench *b, uint64_t len)
{
	uint64_t a = b->next_buf;
	b->next_buf = (b->next_buf + len + 63) & ~63ull;
	assert_true(b->next_buf <= RAM_SIZE);
	return a;
}

struct seg {
	uint64_t addr;
	uint32_t len;
	bool writable;
};

/* Post a chain of descriptors; returns its head. */
static uint16_t post(struct bench *b, unsigned q, const struct seg *s, unsigned n)
{
	struct gring *r = &b->ring[q];
	volatile struct vring_desc *d = gdesc(b, q);
	uint16_t head = r->next_desc % QSIZE;
	for (unsigned i = 0; i < n; i++) {
		uint16_t k = (uint16_t)((head + i) % QSIZE);
		d[k].addr = s[i].addr;
		d[k].len = s[i].len;
		d[k].flags = (uint16_t)((s[i].writable ? VRING_DESC_F_WRITE : 0) |
					(i + 1 < n ? VRING_DESC_F_NEXT : 0));
		d[k].next = (uint16_t)((k + 1) % QSIZE);
	}
	r->next_desc = (uint16_t)(r->next_desc + n);
	volatile struct vring_avail *a = gavail(b, q);
	a->ring[r->avail_idx % QSIZE] = head;
	r->avail_idx++;
	__atomic_store_n(&a->idx, r->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void kick(struct bench *b, unsigned q)
{
	uint64_t one = 1;
	assert_int_equal(write(b->v.kick_fd[q], &one, sizeof(one)), sizeof(one));
}

static uint16_t used_idx(struct bench *b, unsigned q)
{
	return __atomic_load_n(&gused(b, q)->idx, __ATOMIC_ACQUIRE);
}

/* Wait until the device has used `want` elements in all on ring q (or fail after 5 s). */
static void wait_used(struct bench *b, unsigned q, uint16_t want)
{
	for (int i = 0; i < 5000; i++) {
		if (used_idx(b, q) == want)
			return;
		usleep(1000);
	}
	fail_msg("ring %u: used index %u, expected %u", q, used_idx(b, q), want);
}

static struct vring_used_elem used_elem(struct bench *b, unsigned q, uint16_t i)
{
	volatile struct vring_used_elem *e = &gused(b, q)->ring[i % QSIZE];
	return (struct vring_used_elem){ e->id, e->len };
}

/* The host reads one packet from the "TAP" (waits up to 5 s); its length. */
static ssize_t host_read(struct bench *b, void *buf, size_t len)
{
	struct pollfd p = { b->host_fd, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1)
		return -1;
	return read(b->host_fd, buf, len);
}

static bool host_has_packet(struct bench *b, int wait_ms)
{
	struct pollfd p = { b->host_fd, POLLIN, 0 };
	return poll(&p, 1, wait_ms) == 1;
}

static void host_send(struct bench *b, const void *pkt, size_t len)
{
	assert_int_equal(write(b->host_fd, pkt, len), (ssize_t)len);
}

/* A packet as the TAP hands it: 12-byte header (num_buffers left 0), then the frame. */
static size_t make_packet(unsigned char *buf, size_t frame_len, unsigned char fill)
{
	memset(buf, 0, HDR);
	buf[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	for (size_t i = 0; i < frame_len; i++)
		buf[HDR + i] = (unsigned char)(fill + i);
	return HDR + frame_len;
}

static void bench_setup(struct bench *b, uint64_t features)
{
	memset(b, 0, sizeof(*b));
	b->lease.size = RAM_SIZE;
	b->lease.ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(b->lease.ram);
	memset(b->lease.ram, 0, RAM_SIZE);
	for (unsigned q = 0; q < VIONA_NQUEUES; q++) {
		b->ring[q].desc = 0x10000 + q * 0x10000;
		b->ring[q].avail = b->ring[q].desc + vq_desc_bytes(QSIZE);
		b->ring[q].used = (b->ring[q].avail + vq_avail_bytes(QSIZE) + 4095) & ~4095ull;
		b->v.ring[q] = (struct viona_ring){ .size = QSIZE, .vector = q,
						    .desc = b->ring[q].desc,
						    .avail = b->ring[q].avail,
						    .used = b->ring[q].used };
		b->v.kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(b->v.kick_fd[q] >= 0);
		atomic_store(&interrupts[q], 0);
	}
	b->next_buf = 0x100000;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	b->v.tap_fd = sv[0];
	b->host_fd = sv[1];
	snprintf(b->v.tap_name, sizeof(b->v.tap_name), "test");
	ring_error[0] = 0;

	char err[200];
	assert_int_equal(viona_user_open(&b->v, err, sizeof(err)), 0);
	assert_string_equal(b->v.dp->name, "user");
	b->v.features = features & b->v.dp_features;
	b->v.lease = &b->lease;
}

static void bench_run(struct bench *b, bool fresh)
{
	char err[200];
	b->v.lease = &b->lease;
	int r = b->v.dp->run(&b->v, fresh, err, sizeof(err));
	if (r)
		fail_msg("run: %s", err);
}

static void bench_teardown(struct bench *b)
{
	b->v.dp->halt(&b->v);
	b->v.dp->close(&b->v);
	assert_null(b->v.dp_state);
	close(b->v.tap_fd);
	close(b->host_fd);
	for (unsigned q = 0; q < VIONA_NQUEUES; q++)
		close(b->v.kick_fd[q]);
	free(b->lease.ram);
}

static struct viona_user_counters counters(struct bench *b)
{
	struct viona_user_counters c;
	viona_user_counters(&b->v, &c);
	return c;
}

/* ---- tests ---- */

static void test_features(void **state)
{
	struct bench b;
	bench_setup(&b, 0);
	uint64_t f = b.v.dp_features;
	assert_true(f & BIT(VIRTIO_NET_F_MRG_RXBUF));
	assert_true(f & BIT(VIRTIO_NET_F_CSUM));
	assert_true(f & BIT(VIRTIO_NET_F_HOST_TSO4));
	assert_true(f & BIT(VIRTIO_NET_F_GUEST_TSO6));
	assert_true(f & BIT(VIRTIO_RING_F_EVENT_IDX));
	assert_true(f & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	/* No control queue, no multiqueue, no UFO: not implemented here. */
	assert_false(f & BIT(VIRTIO_NET_F_CTRL_VQ));
	assert_false(f & BIT(VIRTIO_NET_F_MQ));
	assert_false(f & BIT(VIRTIO_NET_F_HOST_UFO));
	/* Run and halt with nothing to do, twice. */
	bench_run(&b, true);
	b.v.dp->halt(&b.v);
	b.v.dp->halt(&b.v);
	bench_run(&b, false);
	bench_teardown(&b);
}

static void test_tx(void **state)
{
	struct bench b;
	bench_setup(&b, 0);
	bench_run(&b, true);
	unsigned char pkt[2000], got[4096];
	size_t len = make_packet(pkt, 1000, 7);
	/* Header in one descriptor, frame split over two more. */
	uint64_t a = alloc_buf(&b, len);
	memcpy(gpa(&b, a), pkt, len);
	struct seg s[3] = { { a, HDR, false }, { a + HDR, 300, false },
			    { a + HDR + 300, (uint32_t)(len - HDR - 300), false } };
	uint16_t head = post(&b, VIONA_TXQ, s, 3);
	kick(&b, VIONA_TXQ);
	assert_int_equal(host_read(&b, got, sizeof(got)), (ssize_t)len);
	assert_memory_equal(got, pkt, len);
	wait_used(&b, VIONA_TXQ, 1);
	assert_int_equal(used_elem(&b, VIONA_TXQ, 0).id, head);
	assert_int_equal(used_elem(&b, VIONA_TXQ, 0).len, 0);
	assert_true(atomic_load(&interrupts[VIONA_TXQ]) >= 1);

	/* Malformed frames are dropped, returned, and the queue goes on. */
	uint64_t big = alloc_buf(&b, 70000);
	struct seg tiny = { a, HDR - 1, false };
	struct seg huge = { big, 65563, false };   /* one byte over header + 65550 */
	struct seg good = { a, (uint32_t)len, false };
	post(&b, VIONA_TXQ, &tiny, 1);
	post(&b, VIONA_TXQ, &huge, 1);
	post(&b, VIONA_TXQ, &good, 1);
	kick(&b, VIONA_TXQ);
	assert_int_equal(host_read(&b, got, sizeof(got)), (ssize_t)len);
	wait_used(&b, VIONA_TXQ, 4);
	assert_false(host_has_packet(&b, 50));
	struct viona_user_counters c = counters(&b);
	assert_int_equal(c.tx_packets, 2);
	assert_int_equal(c.tx_bytes, 2000);
	assert_int_equal(c.tx_drops, 2);
	assert_string_equal(ring_error, "");
	bench_teardown(&b);
}

static void test_tx_backpressure(void **state)
{
	struct bench b;
	bench_setup(&b, BIT(VIRTIO_RING_F_EVENT_IDX));
	/*
	 * More frames than the "TAP" takes: the datapath must wait, not drop.
	 * A socketpair's sender is limited by its send buffer: a small one.
	 */
	int sndbuf = 4096;
	assert_int_equal(setsockopt(b.v.tap_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	bench_run(&b, true);
	enum { N = 200 };
	for (unsigned i = 0; i < N; i++) {
		uint64_t a = alloc_buf(&b, 100);
		make_packet(gpa(&b, a), 60, (unsigned char)i);
		struct seg s = { a, HDR + 60, false };
		post(&b, VIONA_TXQ, &s, 1);
	}
	kick(&b, VIONA_TXQ);
	usleep(50000);
	assert_true(used_idx(&b, VIONA_TXQ) < N);   /* stalled on a full "TAP" */
	for (unsigned i = 0; i < N; i++) {
		unsigned char got[200], want[200];
		make_packet(want, 60, (unsigned char)i);
		assert_int_equal(host_read(&b, got, sizeof(got)), HDR + 60);
		assert_memory_equal(got, want, HDR + 60);
	}
	wait_used(&b, VIONA_TXQ, N);
	struct viona_user_counters c = counters(&b);
	assert_int_equal(c.tx_packets, N);
	assert_int_equal(c.tx_drops, 0);
	bench_teardown(&b);
}

static void check_header_num_buffers(struct bench *b, uint64_t buf, uint16_t want)
{
	uint16_t nb;
	memcpy(&nb, gpa(b, buf + offsetof(struct virtio_net_hdr_v1, num_buffers)), sizeof(nb));
	assert_int_equal(nb, want);
}

static void test_rx_one_chain(void **state)
{
	struct bench b;
	bench_setup(&b, 0);
	bench_run(&b, true);
	unsigned char pkt[4000];
	/* A 2000-byte buffer as header + body descriptors. */
	uint64_t a = alloc_buf(&b, 2000);
	memset(gpa(&b, a), 0xee, 2000);
	struct seg s[2] = { { a, HDR, true }, { a + HDR, 2000 - HDR, true } };
	uint16_t head = post(&b, VIONA_RXQ, s, 2);
	kick(&b, VIONA_RXQ);
	/* Too big for it: dropped, the buffer kept for the next packet. */
	host_send(&b, pkt, make_packet(pkt, 3000, 1));
	size_t len = make_packet(pkt, 500, 9);
	host_send(&b, pkt, len);
	wait_used(&b, VIONA_RXQ, 1);
	assert_int_equal(used_elem(&b, VIONA_RXQ, 0).id, head);
	assert_int_equal(used_elem(&b, VIONA_RXQ, 0).len, len);
	check_header_num_buffers(&b, a, 1);
	assert_memory_equal(gpa(&b, a), pkt, offsetof(struct virtio_net_hdr_v1, num_buffers));
	assert_memory_equal((unsigned char *)gpa(&b, a) + HDR, pkt + HDR, len - HDR);
	assert_true(atomic_load(&interrupts[VIONA_RXQ]) >= 1);
	struct viona_user_counters c = counters(&b);
	assert_int_equal(c.rx_packets, 1);
	assert_int_equal(c.rx_bytes, 500);
	assert_int_equal(c.rx_drops, 1);

	/* The ring is empty now: packets wait in the "TAP" until the guest adds a buffer and kicks. */
	host_send(&b, pkt, make_packet(pkt, 100, 3));
	usleep(50000);
	assert_int_equal(used_idx(&b, VIONA_RXQ), 1);
	uint64_t a2 = alloc_buf(&b, 2000);
	struct seg s2 = { a2, 2000, true };
	post(&b, VIONA_RXQ, &s2, 1);
	kick(&b, VIONA_RXQ);
	wait_used(&b, VIONA_RXQ, 2);
	assert_int_equal(used_elem(&b, VIONA_RXQ, 1).len, HDR + 100);
	assert_memory_equal((unsigned char *)gpa(&b, a2) + HDR, pkt + HDR, 100);
	bench_teardown(&b);
}

static void test_rx_mergeable(void **state)
{
	struct bench b;
	bench_setup(&b, BIT(VIRTIO_NET_F_MRG_RXBUF));
	bench_run(&b, true);
	enum { BUF = 1526, NBUF = 100 };
	uint64_t buf[NBUF];
	uint16_t head[NBUF];
	for (unsigned i = 0; i < NBUF; i++) {
		buf[i] = alloc_buf(&b, BUF);
		struct seg s = { buf[i], BUF, true };
		head[i] = post(&b, VIONA_RXQ, &s, 1);
	}
	kick(&b, VIONA_RXQ);
	static unsigned char pkt[70000];
	size_t len = make_packet(pkt, 5000, 4);   /* 5012 bytes: four buffers */
	host_send(&b, pkt, len);
	wait_used(&b, VIONA_RXQ, 4);
	size_t left = len;
	for (unsigned i = 0; i < 4; i++) {
		struct vring_used_elem e = used_elem(&b, VIONA_RXQ, (uint16_t)i);
		assert_int_equal(e.id, head[i]);
		size_t want = left < BUF ? left : BUF;
		assert_int_equal(e.len, want);
		assert_memory_equal(gpa(&b, buf[i]) + (i ? 0 : HDR), pkt + (len - left) + (i ? 0 : HDR),
				    want - (i ? 0 : HDR));
		left -= want;
	}
	check_header_num_buffers(&b, buf[0], 4);
	/* A small one takes the next buffer, which was popped already (pending). */
	size_t small = make_packet(pkt, 60, 5);
	host_send(&b, pkt, small);
	wait_used(&b, VIONA_RXQ, 5);
	assert_int_equal(used_elem(&b, VIONA_RXQ, 4).id, head[4]);
	assert_int_equal(used_elem(&b, VIONA_RXQ, 4).len, small);
	check_header_num_buffers(&b, buf[4], 1);

	/* Halt with chains pending, run on: they are given back and popped again in order. */
	b.v.dp->halt(&b.v);
	bench_run(&b, false);
	len = make_packet(pkt, 65550, 6);          /* the largest: 43 buffers */
	host_send(&b, pkt, len);
	wait_used(&b, VIONA_RXQ, 5 + 43);
	assert_int_equal(used_elem(&b, VIONA_RXQ, 5).id, head[5]);
	check_header_num_buffers(&b, buf[5], 43);
	assert_int_equal(used_elem(&b, VIONA_RXQ, 5 + 42).len, len - 42 * BUF);
	assert_memory_equal(gpa(&b, buf[47]), pkt + 42 * BUF, len - 42 * BUF);

	/*
	 * 52 buffers left: one more of the largest fits, and then the ring runs
	 * dry with 9 (13734 bytes): another is dropped, a small one still fits.
	 */
	host_send(&b, pkt, make_packet(pkt, 65550, 6));
	host_send(&b, pkt, make_packet(pkt, 65550, 7));
	host_send(&b, pkt, make_packet(pkt, 3000, 8));
	wait_used(&b, VIONA_RXQ, 48 + 43 + 2);
	check_header_num_buffers(&b, buf[48], 43);
	check_header_num_buffers(&b, buf[91], 2);
	assert_memory_equal(gpa(&b, buf[91]) + HDR, pkt + HDR, BUF - HDR);
	struct viona_user_counters c = counters(&b);
	assert_int_equal(c.rx_packets, 5);
	assert_int_equal(c.rx_bytes, 5000 + 60 + 65550 + 65550 + 3000);
	assert_int_equal(c.rx_drops, 1);
	assert_string_equal(ring_error, "");
	bench_teardown(&b);
}

static void test_broken_ring(void **state)
{
	struct bench b;
	bench_setup(&b, 0);
	bench_run(&b, true);
	/* A transmit buffer outside guest RAM: the queue stops with a reason. */
	struct seg bad = { RAM_SIZE - 8, 64, false };
	post(&b, VIONA_TXQ, &bad, 1);
	kick(&b, VIONA_TXQ);
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&error_lock);
		bool seen = ring_error[0] != 0;
		pthread_mutex_unlock(&error_lock);
		if (seen)
			break;
		usleep(1000);
	}
	pthread_mutex_lock(&error_lock);
	assert_non_null(strstr(ring_error, "transmit"));
	assert_non_null(strstr(ring_error, "outside guest RAM"));
	pthread_mutex_unlock(&error_lock);
	assert_int_equal(used_idx(&b, VIONA_TXQ), 0);
	/* Receive still works. */
	uint64_t a = alloc_buf(&b, 2000);
	struct seg s = { a, 2000, true };
	post(&b, VIONA_RXQ, &s, 1);
	kick(&b, VIONA_RXQ);
	unsigned char pkt[200];
	host_send(&b, pkt, make_packet(pkt, 100, 1));
	wait_used(&b, VIONA_RXQ, 1);
	/* A renewal does not report it again; a fresh run (the driver's reset) clears it. */
	b.v.dp->halt(&b.v);
	ring_error[0] = 0;
	bench_run(&b, false);
	kick(&b, VIONA_TXQ);
	usleep(20000);
	assert_string_equal(ring_error, "");
	b.v.dp->halt(&b.v);
	memset(b.lease.ram, 0, 0x100000);   /* the driver re-initialises its rings */
	memset(b.ring, 0, sizeof(b.ring));
	for (unsigned q = 0; q < VIONA_NQUEUES; q++) {
		b.ring[q].desc = b.v.ring[q].desc;
		b.ring[q].avail = b.v.ring[q].avail;
		b.ring[q].used = b.v.ring[q].used;
	}
	bench_run(&b, true);
	unsigned char got[200];
	uint64_t t = alloc_buf(&b, 100);
	size_t len = make_packet(gpa(&b, t), 50, 2);
	struct seg ok = { t, (uint32_t)len, false };
	post(&b, VIONA_TXQ, &ok, 1);
	kick(&b, VIONA_TXQ);
	assert_int_equal(host_read(&b, got, sizeof(got)), (ssize_t)len);
	wait_used(&b, VIONA_TXQ, 1);
	bench_teardown(&b);
}

static void test_event_idx(void **state)
{
	struct bench b;
	bench_setup(&b, BIT(VIRTIO_RING_F_EVENT_IDX));
	volatile uint16_t *avail_event = (volatile uint16_t *)&gused(&b, VIONA_TXQ)->ring[QSIZE];
	volatile uint16_t *used_event = &gavail(&b, VIONA_TXQ)->ring[QSIZE];
	/*
	 * Three chains waiting before the run, so the first pass takes them in
	 * one batch; the guest wants an interrupt once the third is used.
	 */
	*used_event = 2;
	for (unsigned i = 0; i < 3; i++) {
		uint64_t a = alloc_buf(&b, 100);
		make_packet(gpa(&b, a), 50, 0);
		struct seg s = { a, HDR + 50, false };
		post(&b, VIONA_TXQ, &s, 1);
	}
	bench_run(&b, true);
	wait_used(&b, VIONA_TXQ, 3);
	for (unsigned i = 0; i < 3; i++) {
		unsigned char got[100];
		assert_int_equal(host_read(&b, got, sizeof(got)), HDR + 50);
	}
	/* Drained: the device asked to be kicked for the next chain. */
	for (int i = 0; i < 1000 && *avail_event != 3; i++)
		usleep(1000);
	assert_int_equal(*avail_event, 3);
	unsigned irqs = atomic_load(&interrupts[VIONA_TXQ]);
	assert_true(irqs == 1);
	/* used_event behind: no interrupt for the next one. */
	uint64_t a = alloc_buf(&b, 100);
	make_packet(gpa(&b, a), 50, 0);
	struct seg s = { a, HDR + 50, false };
	post(&b, VIONA_TXQ, &s, 1);
	kick(&b, VIONA_TXQ);
	wait_used(&b, VIONA_TXQ, 4);
	unsigned char got[100];
	assert_int_equal(host_read(&b, got, sizeof(got)), HDR + 50);
	usleep(20000);
	assert_int_equal(atomic_load(&interrupts[VIONA_TXQ]), 1);
	bench_teardown(&b);
}

/* ---- a real TAP ---- */

#define TEST_ETHERTYPE 0x88b5   /* IEEE local experimental: nobody else sends it */

static void if_up(const char *name)
{
	char path[128];
	/* No IPv6 on it: no router solicitations or MLD reports in the guest's ring. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("1", f);
		fclose(f);
	}
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(sock >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(sock, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(sock, SIOCSIFFLAGS, &ifr), 0);
	close(sock);
}

static void test_real_tap(void **state)
{
	char name[IFNAMSIZ], err[256];
	snprintf(name, sizeof(name), "khvu%d", (int)(getpid() % 100000));
	int tap = tap_open(name, err, sizeof(err));
	if (tap == -ENOENT || tap == -EPERM || tap == -EACCES) {
		printf("skipping: %s\n", err);
		skip();
	}
	if (tap < 0)
		fail_msg("tap_open(%s): %s", name, err);
	assert_int_equal(tap_set_vnet_hdr_len(tap, HDR, err, sizeof(err)), 0);
	if_up(name);
	int ifindex = (int)if_nametoindex(name);
	int pkt_sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(TEST_ETHERTYPE));
	assert_true(pkt_sock >= 0);
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(TEST_ETHERTYPE),
				  .sll_ifindex = ifindex, .sll_halen = 6 };
	memset(ll.sll_addr, 0xff, 6);
	assert_int_equal(bind(pkt_sock, (struct sockaddr *)&ll, sizeof(ll)), 0);

	struct bench b;
	bench_setup(&b, BIT(VIRTIO_NET_F_MRG_RXBUF));
	close(b.v.tap_fd);
	b.v.tap_fd = tap;
	bench_run(&b, true);

	/* Guest -> host: the frame arrives on the interface as the guest wrote it. */
	unsigned char frame[200];
	memset(frame, 0xff, 6);                                    /* broadcast */
	memcpy(frame + 6, "\x02\x00\x00\x00\x00\x01", 6);          /* the guest's MAC */
	frame[12] = TEST_ETHERTYPE >> 8;
	frame[13] = TEST_ETHERTYPE & 0xff;
	for (unsigned i = 14; i < sizeof(frame); i++)
		frame[i] = (unsigned char)i;
	uint64_t t = alloc_buf(&b, HDR + sizeof(frame));
	memset(gpa(&b, t), 0, HDR);
	memcpy(gpa(&b, t) + HDR, frame, sizeof(frame));
	struct seg ts[2] = { { t, HDR, false }, { t + HDR, sizeof(frame), false } };
	post(&b, VIONA_TXQ, ts, 2);
	kick(&b, VIONA_TXQ);
	unsigned char got[2048];
	struct pollfd p = { pkt_sock, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(recv(pkt_sock, got, sizeof(got), 0), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));
	wait_used(&b, VIONA_TXQ, 1);

	/* Host -> guest: header from the TAP, num_buffers from us, then the frame. */
	enum { NRX = 16 };
	uint64_t r[NRX];
	uint16_t rhead[NRX];
	for (unsigned i = 0; i < NRX; i++) {
		r[i] = alloc_buf(&b, 2048);
		memset(gpa(&b, r[i]), 0xee, 2048);
		struct seg rs = { r[i], 2048, true };
		rhead[i] = post(&b, VIONA_RXQ, &rs, 1);
	}
	kick(&b, VIONA_RXQ);
	memcpy(frame, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(frame + 6, "\x02\x00\x00\x00\x00\x02", 6);
	assert_int_equal(sendto(pkt_sock, frame, sizeof(frame), 0, (struct sockaddr *)&ll,
				sizeof(ll)), sizeof(frame));
	/* Ours, among whatever else the host may have sent to a new interface. */
	unsigned char *mine = NULL;
	uint32_t mine_len = 0;
	for (int ms = 0; !mine && ms < 5000; ms++) {
		uint16_t n = used_idx(&b, VIONA_RXQ);
		for (uint16_t u = 0; !mine && u < n && u < NRX; u++) {
			struct vring_used_elem e = used_elem(&b, VIONA_RXQ, u);
			for (unsigned i = 0; i < NRX; i++) {
				unsigned char *buf = gpa(&b, r[i]);
				if (rhead[i] == e.id && e.len >= HDR + 14 &&
				    buf[HDR + 12] == TEST_ETHERTYPE >> 8 &&
				    buf[HDR + 13] == (TEST_ETHERTYPE & 0xff)) {
					mine = buf;
					mine_len = e.len;
				}
			}
		}
		if (!mine)
			usleep(1000);
	}
	assert_non_null(mine);
	assert_int_equal(mine_len, HDR + sizeof(frame));
	struct virtio_net_hdr_v1 h;
	memcpy(&h, mine, sizeof(h));
	assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(h.num_buffers, 1);   /* ours: the TAP skipped it (0xeeee before) */
	assert_memory_equal(mine + HDR, frame, sizeof(frame));
	struct viona_user_counters c = counters(&b);
	assert_int_equal(c.tx_packets, 1);
	assert_true(c.rx_packets >= 1);

	bench_teardown(&b);   /* closes the TAP: the interface goes with it */
	close(pkt_sock);
	assert_int_equal(if_nametoindex(name), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_tx),
		cmocka_unit_test(test_tx_backpressure),
		cmocka_unit_test(test_rx_one_chain),
		cmocka_unit_test(test_rx_mergeable),
		cmocka_unit_test(test_broken_ring),
		cmocka_unit_test(test_event_idx),
		cmocka_unit_test(test_real_tap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
