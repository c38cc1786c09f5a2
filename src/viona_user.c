/*
 * viona's userspace datapath: one khyve thread moves packets between the
 * guest's two rings and the TAP, where the kernel's vhost-net is missing
 * or not wanted. THEORY
 *
 * Zero copy. The TAP speaks the guest's own framing: with IFF_VNET_HDR and
 * a 12-byte header (viona.c sets both, and the TAP's offloads, before the
 * first run) every frame is preceded by a struct virtio_net_hdr_v1, the
 * very header the guest puts in front of its frames. So a transmit chain's
 * readable part -- header, then frame -- goes to the TAP as it is with one
 * writev() straight from guest memory, and a received packet comes from
 * the TAP with one readv() straight into the guest's buffers. Nothing is
 * copied, checksummed or segmented here: the header carries the checksum
 * and TSO state and the host kernel acts on it (that is the offload). The
 * only byte we write ourselves is num_buffers, which the TAP skips.
 *
 * Receive without knowing the size. A TAP cannot be asked how long its
 * next packet is, so a readv() must offer room for the largest one
 * (MAX_PACKET: a 64 KiB GSO frame and its header). With mergeable buffers
 * (MRG_RXBUF) we pop chains until together they hold MAX_PACKET, readv()
 * into all of them at once, and give back only those the packet filled
 * (num_buffers in the first); the rest stay popped for the next packet
 * (rx_pending), so a stream of small packets pops each chain once, not
 * MAX_PACKET's worth per packet. Without MRG_RXBUF one chain takes one
 * packet. Either way a scratch buffer of MAX_PACKET bytes follows the
 * guest's buffers in the iovec, so a packet too big for them lands partly
 * in scratch instead of being truncated unnoticed: it is dropped (counted)
 * and the chains are kept for the next one. The pending chains are always
 * the last ones popped, so halt() gives them back with one vq_unpop().
 * If the ring runs dry before MAX_PACKET is reached we read anyway with
 * what we have (a big packet may be dropped, as a NIC out of buffers would
 * drop it): waiting instead could wait forever for a guest whose ring, all
 * of it in our hands, holds less than MAX_PACKET.
 *
 * Sleeping and waking. The thread polls a stop eventfd, both doorbells'
 * kick eventfds and the TAP. While it works on a ring it asks the guest
 * not to notify (vq_disable_notify); when a ring is empty it asks again
 * (vq_enable_notify), looks once more -- the guest may have added work
 * just before it saw the request -- and only then sleeps on the kick. An
 * empty receive ring also takes the TAP out of the poll set: packets then
 * queue in (and past its limit are dropped by) the host kernel instead of
 * waking us for nothing, until the guest kicks with new buffers. A TAP
 * that is full (EAGAIN) puts the chain back and waits for POLLOUT. Each
 * wakeup does at most BUDGET packets per direction, so a flood one way
 * cannot starve the other.
 *
 * A hostile guest. Every chain comes through the hardened vq_pop(): its
 * buffers are translated through the lease, so readv/writev only ever see
 * guest RAM, and a chain that breaks the ring protocol stops the queue
 * (viona_ring_error: the device model asks for a reset). What the
 * protocol allows but makes no sense is dropped and counted, and the queue
 * goes on: a transmit frame shorter than the header or longer than
 * MAX_PACKET, a receive buffer too small for a header (returned at once,
 * empty: the spec requires every buffer to hold one). The host kernel
 * validates the headers (a bogus GSO request is refused with EINVAL: a
 * drop). A chain of more than IOV_MAX segments (IOV_MAX - 1 to receive:
 * the scratch buffer takes one) breaks the queue, so that every chain fits
 * one readv/writev.
 *
 * Lifetime. run() attaches the rings through the current lease and starts
 * the thread; halt() stops and joins it, gives back the pending receive
 * chains and detaches the rings: after it returns nothing here touches
 * guest memory. The virtqueues live in the state across halt/run, so a
 * lease renewal (run with fresh false) continues exactly where the rings
 * stood; a fresh run starts them at index 0.
 */
#include "viona_impl.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errmsg.h"
#include "virtio_net_hw.h"
#include "virtqueue.h"

#define HDR_LEN sizeof(struct virtio_net_hdr_v1)
/* The largest frame: a 64 KiB GSO packet plus its Ethernet header (virtio 1.x, 5.1.6.3). */
#define MAX_FRAME 65550u
#define MAX_PACKET (HDR_LEN + MAX_FRAME)
/* Packets per direction per wakeup. */
#define BUDGET 256
/* The guest's buffers offered to one readv, leaving one iovec for the scratch tail. */
#define RX_POOL_SEGS (IOV_MAX - 1)
#define TX_MAX_SEGS IOV_MAX

#define BIT(n) (1ull << (n))

static const uint64_t user_features =
	BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4) |
	BIT(VIRTIO_NET_F_GUEST_TSO6) | BIT(VIRTIO_NET_F_GUEST_ECN) |
	BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN) |
	BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |
	BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC);

/* A receive chain popped and not yet used: its writable iovecs are in rx_iov, in order. */
struct rx_chain {
	uint16_t head;
	unsigned nseg;
	uint64_t cap;
};

struct user_state {
	struct viona *v;
	struct virtqueue vq[VIONA_NQUEUES];   /* positions kept across halt/run */
	struct vmm_lease *lease;              /* v->lease as run() found it, until halt() */
	int stop_fd;
	pthread_t thread;
	bool thread_running;
	bool mrg_rxbuf;

	/* The thread's own from here (run() sets them before it starts). */
	bool queue_stopped[VIONA_NQUEUES];    /* broken: serve it no more until a fresh run */
	bool rx_wait_kick, tx_wait_kick;      /* ring empty, notifications on, sleeping */
	bool tap_readable;                    /* no EAGAIN since the last POLLIN */
	bool tap_full;                        /* a write got EAGAIN: waiting for POLLOUT */
	bool tap_failed;                      /* the TAP is gone (detached): stop using it */

	struct rx_chain rx_pending[RX_POOL_SEGS];
	unsigned rx_npending, rx_nsegs;
	uint64_t rx_cap;
	struct iovec rx_iov[RX_POOL_SEGS + 1];   /* pending chains' buffers, then scratch */
	struct iovec rx_pop_iov[RX_POOL_SEGS];
	struct iovec tx_iov[TX_MAX_SEGS];
	unsigned char scratch[MAX_PACKET];

	atomic_ulong tx_packets, tx_bytes, tx_drops, rx_packets, rx_bytes, rx_drops;
};

static void count(atomic_ulong *c, unsigned long n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void *translate(void *arg, uint64_t gpa, uint64_t len)
{
	struct user_state *s = arg;
	return vmm_drv_gpa2kva(s->lease, gpa, len);
}

static void ring_broken(struct user_state *s, unsigned q)
{
	s->queue_stopped[q] = true;
	char why[160];
	snprintf(why, sizeof(why), "virtio-net %s queue: %s", q == VIONA_RXQ ? "receive" : "transmit",
		 s->vq[q].broken);
	viona_ring_error(s->v, why);
}

/* The TAP is detached (its interface deleted): say so once, then act as a cable unplugged. */
static void tap_gone(struct user_state *s, int e)
{
	if (s->tap_failed)
		return;
	s->tap_failed = true;
	fprintf(stderr, "khyve: virtio-net %s: the TAP failed (%s); packets are dropped until "
		"the device is restarted\n", s->v->tap_name, strerror(e));
}

/* Publish what was pushed and interrupt if the driver wants it. */
static void complete_batch(struct user_state *s, unsigned q, unsigned pushed)
{
	if (!pushed)
		return;
	vq_push_publish(&s->vq[q]);
	if (vq_should_interrupt(&s->vq[q]))
		viona_interrupt(s->v, q);
}

/* ---- transmit: guest -> TAP ---- */

/* Returns true if the budget ran out with chains possibly left. */
static bool tx_service(struct user_state *s)
{
	struct virtqueue *vq = &s->vq[VIONA_TXQ];
	if (s->queue_stopped[VIONA_TXQ] || s->tx_wait_kick || s->tap_full)
		return false;
	unsigned pushed = 0;
	bool more = false;
	for (unsigned done = 0;; done++) {
		if (done == BUDGET) {
			more = true;
			break;
		}
		struct vq_chain c;
		int r = vq_pop(vq, &c, s->tx_iov, TX_MAX_SEGS);
		if (r < 0) {
			ring_broken(s, VIONA_TXQ);
			break;
		}
		if (r == 0) {
			if (vq_enable_notify(vq)) {
				vq_disable_notify(vq);
				continue;
			}
			s->tx_wait_kick = true;
			break;
		}
		/* A writable part in a transmit chain is meaningless: ignored, 0 bytes written. */
		if (c.out_len < HDR_LEN || c.out_len > MAX_PACKET || s->tap_failed) {
			count(&s->tx_drops, 1);
		} else {
			ssize_t n = writev(s->v->tap_fd, c.iov, (int)c.nout);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				int e = errno;
				vq_unpop(vq, 1);
				if (e == EINTR)
					continue;
				s->tap_full = true;
				break;
			}
			if (n < 0) {
				/* EINVAL (a header the kernel refuses), EIO, ENOMEM...: this frame only. */
				if (errno == EBADFD)
					tap_gone(s, errno);
				count(&s->tx_drops, 1);
			} else {
				count(&s->tx_packets, 1);
				count(&s->tx_bytes, c.out_len - HDR_LEN);
			}
		}
		vq_push_elem(vq, c.head, 0);
		pushed++;
	}
	complete_batch(s, VIONA_TXQ, pushed);
	return more;
}

/* ---- receive: TAP -> guest ---- */

/*
 * Pop receive chains until the pending ones can take the largest packet
 * (with MRG_RXBUF) or there is one (without), the ring is empty or the
 * iovec pool is full. 0, or -1: the ring is broken.
 */
static int rx_refill(struct user_state *s, unsigned *pushed)
{
	struct virtqueue *vq = &s->vq[VIONA_RXQ];
	while (s->mrg_rxbuf ? s->rx_cap < MAX_PACKET : s->rx_npending == 0) {
		struct vq_chain c;
		int r = vq_pop(vq, &c, s->rx_pop_iov, RX_POOL_SEGS);
		if (r <= 0)
			return r;
		if (c.in_len < HDR_LEN) {
			/*
			 * Cannot hold a header (the spec forbids such buffers): return it
			 * empty. Only with nothing pending, so that the pending chains
			 * stay the last ones popped; otherwise later.
			 */
			if (s->rx_npending) {
				vq_unpop(vq, 1);
				return 0;
			}
			vq_push_elem(vq, c.head, 0);
			(*pushed)++;
			continue;
		}
		if (c.nin > RX_POOL_SEGS - s->rx_nsegs) {
			vq_unpop(vq, 1);   /* no iovecs left for it now: after this packet */
			return 0;
		}
		/* Readable segments in a receive chain are meaningless: skipped. */
		memcpy(&s->rx_iov[s->rx_nsegs], &c.iov[c.nout], c.nin * sizeof(struct iovec));
		s->rx_pending[s->rx_npending++] = (struct rx_chain){ c.head, c.nin, c.in_len };
		s->rx_nsegs += c.nin;
		s->rx_cap += c.in_len;
	}
	return 0;
}

/* The packet of n bytes is in the pending chains: give back the ones it filled. */
static unsigned rx_deliver(struct user_state *s, uint64_t n)
{
	struct virtqueue *vq = &s->vq[VIONA_RXQ];
	unsigned used = 0, segs = 0;
	for (uint64_t left = n; left; used++) {
		struct rx_chain *ch = &s->rx_pending[used];
		uint64_t got = ch->cap < left ? ch->cap : left;
		vq_push_elem(vq, ch->head, (uint32_t)got);
		left -= got;
		segs += ch->nseg;
	}
	/* The TAP leaves num_buffers alone; the driver reads it once we publish. */
	uint16_t num_buffers = (uint16_t)used;
	vq_buf_to_iov(s->rx_iov, s->rx_pending[0].nseg, offsetof(struct virtio_net_hdr_v1, num_buffers),
		      &num_buffers, sizeof(num_buffers));
	s->rx_npending -= used;
	s->rx_nsegs -= segs;
	s->rx_cap = 0;
	memmove(s->rx_pending, s->rx_pending + used, s->rx_npending * sizeof(s->rx_pending[0]));
	memmove(s->rx_iov, s->rx_iov + segs, s->rx_nsegs * sizeof(s->rx_iov[0]));
	for (unsigned i = 0; i < s->rx_npending; i++)
		s->rx_cap += s->rx_pending[i].cap;
	count(&s->rx_packets, 1);
	count(&s->rx_bytes, n - HDR_LEN);
	return used;
}

/* Returns true if the budget ran out with packets possibly left. */
static bool rx_service(struct user_state *s)
{
	struct virtqueue *vq = &s->vq[VIONA_RXQ];
	if (s->queue_stopped[VIONA_RXQ] || s->rx_wait_kick || !s->tap_readable || s->tap_failed)
		return false;
	unsigned pushed = 0;
	bool more = false;
	for (unsigned done = 0;; done++) {
		if (done == BUDGET) {
			more = true;
			break;
		}
		if (rx_refill(s, &pushed)) {
			ring_broken(s, VIONA_RXQ);
			break;
		}
		if (s->rx_npending == 0) {
			if (vq_enable_notify(vq)) {
				vq_disable_notify(vq);
				continue;
			}
			s->rx_wait_kick = true;   /* the TAP leaves the poll set until a kick */
			break;
		}
		s->rx_iov[s->rx_nsegs] = (struct iovec){ s->scratch, sizeof(s->scratch) };
		ssize_t n = readv(s->v->tap_fd, s->rx_iov, (int)s->rx_nsegs + 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				s->tap_readable = false;
			} else if (errno == EBADFD) {
				tap_gone(s, errno);
			} else {
				/* EFAULT and the like: this packet is lost; POLLIN says when to try again. */
				count(&s->rx_drops, 1);
				s->tap_readable = false;
			}
			break;
		}
		if ((uint64_t)n < HDR_LEN || (uint64_t)n > s->rx_cap) {
			/* Too big for the buffers we have (part of it is in scratch): dropped. */
			count(&s->rx_drops, 1);
			continue;
		}
		pushed += rx_deliver(s, (uint64_t)n);
	}
	complete_batch(s, VIONA_RXQ, pushed);
	return more;
}

/* ---- the thread ---- */

static void drain(int efd)
{
	uint64_t n;
	if (read(efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: already drained. */
	}
}

enum { P_STOP, P_RX_KICK, P_TX_KICK, P_TAP, P_COUNT };

static void *datapath_thread(void *arg)
{
	struct user_state *s = arg;
	struct viona *v = s->v;
	prctl(PR_SET_NAME, "viona-user");   /* from inside: the sandbox forbids /proc */
	/* Look at both rings before sleeping: work may be waiting from before run(). */
	vq_disable_notify(&s->vq[VIONA_RXQ]);
	vq_disable_notify(&s->vq[VIONA_TXQ]);
	bool more = true;
	for (;;) {
		short tap_events = 0;
		if (!s->queue_stopped[VIONA_RXQ] && !s->rx_wait_kick && !s->tap_readable)
			tap_events |= POLLIN;
		if (s->tap_full)
			tap_events |= POLLOUT;
		struct pollfd p[P_COUNT] = {
			[P_STOP] = { .fd = s->stop_fd, .events = POLLIN },
			[P_RX_KICK] = { .fd = v->kick_fd[VIONA_RXQ], .events = POLLIN },
			[P_TX_KICK] = { .fd = v->kick_fd[VIONA_TXQ], .events = POLLIN },
			[P_TAP] = { .fd = tap_events && !s->tap_failed ? v->tap_fd : -1,
				    .events = tap_events },
		};
		if (poll(p, P_COUNT, more ? 0 : -1) < 0)
			continue;   /* EINTR; ENOMEM is as transient */
		if (p[P_STOP].revents)
			break;
		if (p[P_RX_KICK].revents & POLLIN) {
			drain(p[P_RX_KICK].fd);
			if (s->rx_wait_kick) {
				s->rx_wait_kick = false;
				vq_disable_notify(&s->vq[VIONA_RXQ]);
			}
		}
		if (p[P_TX_KICK].revents & POLLIN) {
			drain(p[P_TX_KICK].fd);
			if (s->tx_wait_kick) {
				s->tx_wait_kick = false;
				vq_disable_notify(&s->vq[VIONA_TXQ]);
			}
		}
		if (p[P_TAP].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			tap_gone(s, EBADFD);
			s->tap_full = false;   /* transmit drops from now on */
		}
		if (p[P_TAP].revents & POLLIN)
			s->tap_readable = true;
		if (p[P_TAP].revents & POLLOUT)
			s->tap_full = false;
		bool tx_more = tx_service(s);
		bool rx_more = rx_service(s);
		more = tx_more || rx_more;
	}
	return NULL;
}

/* ---- datapath operations ---- */

static void detach_rings(struct user_state *s)
{
	for (unsigned q = 0; q < VIONA_NQUEUES; q++)
		vq_detach(&s->vq[q]);
	s->lease = NULL;
}

static int run(struct viona *v, bool fresh, char *err, size_t errlen)
{
	struct user_state *s = v->dp_state;
	if (s->thread_running)
		return fail_with(err, errlen, "virtio-net: userspace datapath already running");
	s->lease = v->lease;
	s->mrg_rxbuf = v->features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	for (unsigned q = 0; q < VIONA_NQUEUES; q++) {
		struct virtqueue *vq = &s->vq[q];
		if (fresh)
			vq_reset(vq);
		vq->size = v->ring[q].size;
		vq->desc_gpa = v->ring[q].desc;
		vq->avail_gpa = v->ring[q].avail;
		vq->used_gpa = v->ring[q].used;
		vq->event_idx = v->features & BIT(VIRTIO_RING_F_EVENT_IDX);
		vq->indirect = v->features & BIT(VIRTIO_RING_F_INDIRECT_DESC);
		vq->translate = translate;
		vq->translate_arg = s;
		/* Broken in an earlier run and reported then: it waits for the driver's reset. */
		s->queue_stopped[q] = vq->broken != NULL;
		if (!s->queue_stopped[q] && vq_attach(vq)) {
			int r = fail_with(err, errlen, "virtio-net %s queue: %s",
					  q == VIONA_RXQ ? "receive" : "transmit", vq->broken);
			detach_rings(s);
			return r;
		}
	}
	s->rx_wait_kick = s->tx_wait_kick = false;
	s->tap_readable = true;
	s->tap_full = false;
	s->tap_failed = false;
	s->rx_npending = s->rx_nsegs = 0;
	s->rx_cap = 0;
	/*
	 * Before the thread starts, like everything it shares a word with: it
	 * never reads thread_running, but the compiler may read the word whole
	 * (GCC tests tx_service's flags with one 8-byte load that covers it),
	 * and a store here after pthread_create would race with that load.
	 */
	s->thread_running = true;
	int r = pthread_create(&s->thread, NULL, datapath_thread, s);
	if (r) {
		s->thread_running = false;
		detach_rings(s);
		return fail_with(err, errlen, "virtio-net: pthread_create: %s", strerror(r));
	}
	return 0;
}

static void halt(struct viona *v)
{
	struct user_state *s = v->dp_state;
	if (!s || !s->thread_running)
		return;
	uint64_t one = 1;
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so a stop is pending anyway. */
	}
	pthread_join(s->thread, NULL);
	s->thread_running = false;
	drain(s->stop_fd);
	/* Chains popped for packets that never came go back to the ring, untouched. */
	vq_unpop(&s->vq[VIONA_RXQ], s->rx_npending);
	s->rx_npending = s->rx_nsegs = 0;
	s->rx_cap = 0;
	detach_rings(s);
}

static void close_dp(struct viona *v)
{
	struct user_state *s = v->dp_state;
	if (!s)
		return;
	halt(v);
	close(s->stop_fd);
	free(s);
	v->dp_state = NULL;
}

static const struct viona_datapath_ops user_ops = {
	.name = "user",
	.run = run,
	.halt = halt,
	.close = close_dp,
};

int viona_user_open(struct viona *v, char *err, size_t errlen)
{
	struct user_state *s = calloc(1, sizeof(*s));
	if (!s)
		return fail_with(err, errlen, "virtio-net: out of memory");
	s->v = v;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		int e = errno;
		free(s);
		return fail_with(err, errlen, "virtio-net: eventfd: %s", strerror(e));
	}
	v->dp = &user_ops;
	v->dp_state = s;
	v->dp_features = user_features;
	return 0;
}

void viona_user_counters(struct viona *v, struct viona_user_counters *c)
{
	memset(c, 0, sizeof(*c));
	struct user_state *s = v->dp_state;
	if (v->dp != &user_ops || !s)
		return;
	c->tx_packets = atomic_load_explicit(&s->tx_packets, memory_order_relaxed);
	c->tx_bytes = atomic_load_explicit(&s->tx_bytes, memory_order_relaxed);
	c->tx_drops = atomic_load_explicit(&s->tx_drops, memory_order_relaxed);
	c->rx_packets = atomic_load_explicit(&s->rx_packets, memory_order_relaxed);
	c->rx_bytes = atomic_load_explicit(&s->rx_bytes, memory_order_relaxed);
	c->rx_drops = atomic_load_explicit(&s->rx_drops, memory_order_relaxed);
}
