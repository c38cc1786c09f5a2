/*
 * viona's kernel datapath: vhost-net.
 *
 * vhost-net moves packets between the guest's rings and the TAP in a
 * kernel thread; viona only describes the rings to it. The pieces come
 * from the driver interface (theory in viona.c): the memory table and ring
 * addresses from the lease, the kick fds are the hooked doorbells'
 * eventfds, the call fds are the MSI-X vectors' irqfd eventfds.
 *
 * Offloads are the TAP's business, not vhost's: with IFF_VNET_HDR on the
 * TAP and VHOST_NET_F_VIRTIO_NET_HDR off, vhost passes the guest's
 * virtio_net_hdr through unchanged, so checksum offload and TSO in both
 * directions are whatever the TAP was told (TUNSETOFFLOAD, viona.c). The
 * virtio-net feature bits the device offers for them therefore do not
 * depend on vhost; vhost must only honour the ring features (mergeable
 * buffers, event index, indirect descriptors, VERSION_1).
 *
 * Halting detaches the TAP from each ring (VHOST_NET_SET_BACKEND -1, which
 * waits for vhost's worker to be done with it) and reads the ring position
 * back (VHOST_GET_VRING_BASE): after that vhost holds no reference into
 * guest memory, and a later run continues from that position.
 *
 * A hostile guest. vhost validates every chain itself (a loop, a chain
 * longer than the ring, a buffer outside the memory table, an avail index
 * too far ahead, a bad indirect table) and then simply does not advance:
 * the ring is stuck at the bad chain, which is the "stop" virtio asks for,
 * but nobody is told. vhost tells only through a ring's error eventfd
 * (VHOST_SET_VRING_ERR), which it signals on every such failure. So each
 * ring gets one, and while the datapath runs a small thread of ours polls
 * them (with a stop eventfd) and turns the first error of a ring into
 * viona_ring_error -> DEVICE_NEEDS_RESET. A thread, not the control
 * thread: that one sleeps on a condition variable (viona.c), and making
 * it poll fds would mix the device's life cycle with its error path. The
 * watcher only reads eventfds and calls viona_ring_error (no lock, no
 * guest memory), and halt() joins it, so after halt nothing of this file
 * runs. Later signals of the same ring (the guest kicking again) are
 * drained unreported until the driver resets the device. An error that
 * came just before a halt for a lease renewal stays counted in its
 * eventfd and the next run's watcher reports it; a fresh run (after the
 * driver's reset) first drains what a previous session left there.
 */
#include "viona_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <linux/vhost.h>

#include "errmsg.h"
#include "virtio_net_hw.h"
#include "virtio_pci.h"
#include "virtqueue.h"

#define VHOST_NET_PATH "/dev/vhost-net"

#define MAX_REGIONS 16

struct vhost_state {
	struct viona *v;
	int fd;
	uint64_t kernel_features;
	uint16_t base[VIONA_NQUEUES];
	bool attached[VIONA_NQUEUES];
	int err_fd[VIONA_NQUEUES];       /* vhost's VHOST_SET_VRING_ERR eventfds */
	int stop_fd;                     /* tells the watcher to return */
	pthread_t watcher;
	bool watching;
	bool reported[VIONA_NQUEUES];    /* this driver session; the watcher's own while it runs */
};

/* Ring features vhost must support for the device to offer them. */
static const uint64_t ring_features = (1ull << VIRTIO_NET_F_MRG_RXBUF) |
				      (1ull << VIRTIO_RING_F_EVENT_IDX) |
				      (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
				      (1ull << VIRTIO_F_VERSION_1);
/* The TAP's part: offloads both ways, plus config-space features. */
static const uint64_t tap_features =
	(1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
	(1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
	(1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_HOST_TSO4) |
	(1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN) |
	(1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);

static int vhost_ioctl(struct vhost_state *s, unsigned long req, void *arg, const char *what,
		       char *err, size_t errlen)
{
	if (ioctl(s->fd, req, arg) == 0)
		return 0;
	int e = errno;
	snprintf(err, errlen, "vhost-net: %s: %s", what, strerror(e));
	return -e;
}

static int set_mem_table(struct viona *v, struct vhost_state *s, char *err, size_t errlen)
{
	struct vmm_drv_segment seg[MAX_REGIONS];
	size_t n = vmm_drv_lease_segments(v->lease, seg, MAX_REGIONS);
	if (n > MAX_REGIONS)
		return fail_with(err, errlen, "vhost-net: %zu RAM segments, at most %d supported", n,
				 MAX_REGIONS);
	struct vhost_memory *mem = calloc(1, sizeof(*mem) + n * sizeof(mem->regions[0]));
	if (!mem)
		return fail_with(err, errlen, "vhost-net: out of memory");
	mem->nregions = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		mem->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = seg[i].gpa,
			.memory_size = seg[i].len,
			.userspace_addr = (uint64_t)(uintptr_t)seg[i].hva,
		};
	int r = vhost_ioctl(s, VHOST_SET_MEM_TABLE, mem, "VHOST_SET_MEM_TABLE", err, errlen);
	free(mem);
	return r;
}

static uint64_t hva(struct viona *v, uint64_t gpa, size_t len)
{
	return (uint64_t)(uintptr_t)vmm_drv_gpa2kva(v->lease, gpa, len);
}

static int start_ring(struct viona *v, struct vhost_state *s, unsigned q, bool fresh,
		      char *err, size_t errlen)
{
	const struct viona_ring *r = &v->ring[q];
	struct vhost_vring_addr addr = {
		.index = q,
		.desc_user_addr = hva(v, r->desc, vq_desc_bytes(r->size)),
		.avail_user_addr = hva(v, r->avail, vq_avail_bytes(r->size)),
		.used_user_addr = hva(v, r->used, vq_used_bytes(r->size)),
	};
	/* Never hand the kernel an address the lease did not vouch for. */
	if (!addr.desc_user_addr || !addr.avail_user_addr || !addr.used_user_addr)
		return fail_with(err, errlen, "virtio-net: queue %u: a ring is outside guest RAM", q);
	if ((r->desc & 15) || (r->avail & 1) || (r->used & 3))
		return fail_with(err, errlen, "virtio-net: queue %u: a ring is misaligned", q);
	struct vhost_vring_state num = { .index = q, .num = r->size };
	struct vhost_vring_state base = { .index = q, .num = fresh ? 0 : s->base[q] };
	struct vhost_vring_file kick = { .index = q, .fd = v->kick_fd[q] };
	struct vhost_vring_file call = { .index = q, .fd = viona_call_fd(v, q) };
	struct vhost_vring_file errfd = { .index = q, .fd = s->err_fd[q] };
	struct vhost_vring_file backend = { .index = q, .fd = v->tap_fd };
	int rc;
	if ((rc = vhost_ioctl(s, VHOST_SET_VRING_NUM, &num, "VHOST_SET_VRING_NUM", err, errlen)) ||
	    (rc = vhost_ioctl(s, VHOST_SET_VRING_BASE, &base, "VHOST_SET_VRING_BASE", err,
			      errlen)) ||
	    (rc = vhost_ioctl(s, VHOST_SET_VRING_ADDR, &addr, "VHOST_SET_VRING_ADDR", err,
			      errlen)) ||
	    (rc = vhost_ioctl(s, VHOST_SET_VRING_KICK, &kick, "VHOST_SET_VRING_KICK", err,
			      errlen)) ||
	    (rc = vhost_ioctl(s, VHOST_SET_VRING_CALL, &call, "VHOST_SET_VRING_CALL", err,
			      errlen)) ||
	    (rc = vhost_ioctl(s, VHOST_SET_VRING_ERR, &errfd, "VHOST_SET_VRING_ERR", err,
			      errlen)) ||
	    (rc = vhost_ioctl(s, VHOST_NET_SET_BACKEND, &backend, "VHOST_NET_SET_BACKEND", err,
			      errlen)))
		return rc;
	s->attached[q] = true;
	return 0;
}

static void drain(int fd)
{
	uint64_t n;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing pending. */
	}
}

/* The error watcher: vhost's ring errors become viona_ring_error, once a ring a session. */
static void *watch_errors(void *arg)
{
	struct vhost_state *s = arg;
	prctl(PR_SET_NAME, "viona-vhost-err");   /* from inside: the sandbox forbids /proc */
	for (;;) {
		struct pollfd p[1 + VIONA_NQUEUES] = { { .fd = s->stop_fd, .events = POLLIN } };
		for (unsigned q = 0; q < VIONA_NQUEUES; q++)
			p[1 + q] = (struct pollfd){ .fd = s->err_fd[q], .events = POLLIN };
		if (poll(p, 1 + VIONA_NQUEUES, -1) < 0)
			continue;   /* EINTR; ENOMEM is as transient */
		if (p[0].revents)
			break;
		for (unsigned q = 0; q < VIONA_NQUEUES; q++) {
			if (!(p[1 + q].revents & POLLIN))
				continue;
			drain(s->err_fd[q]);
			if (s->reported[q])
				continue;
			s->reported[q] = true;
			char why[80];
			snprintf(why, sizeof(why), "vhost-net: ring %u error (%s queue)", q,
				 q == VIONA_RXQ ? "receive" : "transmit");
			viona_ring_error(s->v, why);
		}
	}
	return NULL;
}

static void stop_watcher(struct vhost_state *s)
{
	if (!s->watching)
		return;
	uint64_t one = 1;
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so a stop is pending anyway. */
	}
	pthread_join(s->watcher, NULL);
	s->watching = false;
	drain(s->stop_fd);
}

static void halt(struct viona *v)
{
	struct vhost_state *s = v->dp_state;
	/* Errors signalled from here on wait in their eventfds (see the theory). */
	stop_watcher(s);
	for (unsigned q = 0; q < VIONA_NQUEUES; q++) {
		if (!s->attached[q])
			continue;
		char err[160];
		struct vhost_vring_file backend = { .index = q, .fd = -1 };
		struct vhost_vring_state base = { .index = q };
		if (vhost_ioctl(s, VHOST_NET_SET_BACKEND, &backend, "detach", err, sizeof(err)) ||
		    vhost_ioctl(s, VHOST_GET_VRING_BASE, &base, "VHOST_GET_VRING_BASE", err,
				sizeof(err)))
			fprintf(stderr, "khyve: %s\n", err);
		s->base[q] = (uint16_t)base.num;
		s->attached[q] = false;
	}
}

static int run(struct viona *v, bool fresh, char *err, size_t errlen)
{
	struct vhost_state *s = v->dp_state;
	if (fresh) {
		/* A new driver session: what an earlier one left is void. */
		for (unsigned q = 0; q < VIONA_NQUEUES; q++) {
			drain(s->err_fd[q]);
			s->reported[q] = false;
		}
	}
	uint64_t features = v->features & s->kernel_features;
	int r = vhost_ioctl(s, VHOST_SET_FEATURES, &features, "VHOST_SET_FEATURES", err, errlen);
	if (!r)
		r = set_mem_table(v, s, err, errlen);
	for (unsigned q = 0; q < VIONA_NQUEUES && !r; q++)
		r = start_ring(v, s, q, fresh, err, errlen);
	if (!r) {
		int e = pthread_create(&s->watcher, NULL, watch_errors, s);
		if (e)
			r = fail_with(err, errlen, "vhost-net: pthread_create: %s", strerror(e));
		else
			s->watching = true;
	}
	if (r)
		halt(v);
	return r;
}

static void close_dp(struct viona *v)
{
	struct vhost_state *s = v->dp_state;
	if (!s)
		return;
	stop_watcher(s);
	close(s->fd);   /* vhost lets go of the error eventfds with it */
	for (unsigned q = 0; q < VIONA_NQUEUES; q++)
		if (s->err_fd[q] >= 0)
			close(s->err_fd[q]);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s);
	v->dp_state = NULL;
}

static const struct viona_datapath_ops vhost_ops = {
	.name = "vhost",
	.run = run,
	.halt = halt,
	.close = close_dp,
};

int viona_vhost_open(struct viona *v, char *err, size_t errlen)
{
	struct vhost_state *s = calloc(1, sizeof(*s));
	if (!s)
		return fail_with(err, errlen, "vhost-net: out of memory");
	s->v = v;
	s->stop_fd = s->err_fd[0] = s->err_fd[1] = -1;
	s->fd = open(VHOST_NET_PATH, O_RDWR | O_CLOEXEC);
	if (s->fd < 0) {
		int e = errno;
		free(s);
		return fail_with(err, errlen, "cannot open %s: %s%s", VHOST_NET_PATH, strerror(e),
				 e == ENOENT ? " (modprobe vhost_net)" : "");
	}
	int r = 0;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned q = 0; q < VIONA_NQUEUES; q++)
		s->err_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0 || s->err_fd[0] < 0 || s->err_fd[1] < 0)
		r = fail_with(err, errlen, "vhost-net: eventfd: %s", strerror(errno));
	if (!r)
		r = vhost_ioctl(s, VHOST_SET_OWNER, NULL, "VHOST_SET_OWNER", err, errlen);
	if (!r)
		r = vhost_ioctl(s, VHOST_GET_FEATURES, &s->kernel_features, "VHOST_GET_FEATURES",
				err, errlen);
	if (!r && !(s->kernel_features & (1ull << VIRTIO_F_VERSION_1)))
		r = fail_with(err, errlen, "vhost-net: the kernel's vhost lacks VIRTIO_F_VERSION_1");
	if (r) {
		v->dp_state = s;
		close_dp(v);
		return -1;
	}
	v->dp = &vhost_ops;
	v->dp_state = s;
	v->dp_features = tap_features | (s->kernel_features & ring_features);
	return 0;
}
