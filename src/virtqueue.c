/*
 * Virtqueue: the device side of a split ring, hardened against the guest.
 *
 * THEORY
 *
 * The three ring areas live in guest RAM and the guest may change any byte
 * of them at any time, maliciously or by bug. The device therefore:
 *
 *   - reads each descriptor ONCE into a local copy and validates the copy
 *     (no time-of-check/time-of-use window through a second read);
 *   - trusts no index: avail->idx may move at most `size` entries ahead of
 *     what the device has consumed, a head or next index must be inside its
 *     table, and a chain may visit at most as many descriptors as its table
 *     has (more means a loop -- this bound is exact, no cycle detection
 *     needed);
 *   - translates every buffer through the translate callback, which answers
 *     only for ranges wholly inside one RAM segment, so no guest value can
 *     make the device touch host memory outside guest RAM; a chain's total
 *     length is bounded by 4 GiB and its segment count by the caller's iovec
 *     array;
 *   - allows one level of indirection only (the spec forbids nesting and
 *     INDIRECT together with NEXT), and only if negotiated;
 *   - and on any violation marks the queue broken with a reason instead of
 *     guessing. A broken queue does nothing until vq_reset(): the device
 *     model reports DEVICE_NEEDS_RESET, as virtio 1.x section 2.1.2 asks.
 *
 * Memory ordering against the guest (virtio 1.x, 2.7.13 and 2.7.7): the
 * avail index is loaded with acquire before the ring entry and descriptors
 * it covers are read; used elements are written before the used index is
 * stored with release; and a full fence separates publishing used->idx (or
 * re-enabling notifications) from reading the driver's used_event/flags (or
 * re-checking avail->idx), the Dekker pattern that makes sure neither side
 * misses the other's update and sleeps forever.
 */
#include "virtqueue.h"

#include <stdio.h>
#include <string.h>

#define VQ_MAX_CHAIN_BYTES 0xffffffffull

static int broken(struct virtqueue *vq, const char *why)
{
	vq->broken = why;
	return -1;
}

size_t vq_desc_bytes(unsigned n)
{
	return 16ul * n;
}

size_t vq_avail_bytes(unsigned n)
{
	return 6ul + 2ul * n;   /* flags, idx, ring[n], used_event */
}

size_t vq_used_bytes(unsigned n)
{
	return 6ul + 8ul * n;   /* flags, idx, ring[n], avail_event */
}

int vq_attach(struct virtqueue *vq)
{
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	if (vq->broken)
		return -1;
	if (vq->size == 0 || vq->size > VQ_MAX_SIZE || (vq->size & (vq->size - 1)))
		return broken(vq, "queue size is not a power of two up to 32768");
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return broken(vq, "a ring area is misaligned");
	void *d = vq->translate(vq->translate_arg, vq->desc_gpa, vq_desc_bytes(vq->size));
	void *a = vq->translate(vq->translate_arg, vq->avail_gpa, vq_avail_bytes(vq->size));
	void *u = vq->translate(vq->translate_arg, vq->used_gpa, vq_used_bytes(vq->size));
	if (!d || !a || !u)
		return broken(vq, "a ring area is outside guest RAM");
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	return 0;
}

void vq_detach(struct virtqueue *vq)
{
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
}

void vq_reset(struct virtqueue *vq)
{
	vq_detach(vq);
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->broken = NULL;
}

static uint16_t avail_idx_acquire(struct virtqueue *vq)
{
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
}

bool vq_has_work(struct virtqueue *vq)
{
	if (vq->broken || !vq->avail)
		return false;
	return avail_idx_acquire(vq) != vq->last_avail;
}

/*
 * One descriptor, copied out of guest memory once. As bytes: the spec
 * aligns the ring's table but not an indirect one, which may sit at any
 * address the driver chose, where a typed access would be undefined.
 */
static struct vring_desc read_desc(volatile const struct vring_desc *table, uint16_t i)
{
	struct vring_desc d;
	memcpy(&d, (const void *)((uintptr_t)table + sizeof(d) * i), sizeof(d));
	return d;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *c, struct iovec *iov, unsigned max_iov)
{
	if (vq->broken)
		return -1;
	if (!vq->avail)
		return broken(vq, "queue used while not attached");
	uint16_t avail = avail_idx_acquire(vq);
	uint16_t pending = (uint16_t)(avail - vq->last_avail);
	if (pending == 0)
		return 0;
	if (pending > vq->size)
		return broken(vq, "avail index ran more than the queue size ahead");
	uint16_t head = vq->avail->ring[vq->last_avail & (vq->size - 1)];
	if (head >= vq->size)
		return broken(vq, "avail ring names a descriptor outside the table");

	volatile const struct vring_desc *table = vq->desc;
	uint32_t table_size = vq->size, visited = 0;
	bool in_indirect = false, seen_writable = false;
	uint16_t i = head;
	unsigned n = 0, nout = 0;
	uint64_t out_len = 0, in_len = 0;
	for (;;) {
		struct vring_desc d = read_desc(table, i);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return broken(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
			if (in_indirect)
				return broken(vq, "nested indirect descriptor");
			if (d.flags & VRING_DESC_F_NEXT)
				return broken(vq, "indirect descriptor with NEXT set");
			if (d.len == 0 || (d.len & 15) || d.len / 16 > VQ_MAX_SIZE)
				return broken(vq, "indirect table length is not a multiple of 16 "
						  "up to 32768 entries");
			table = vq->translate(vq->translate_arg, d.addr, d.len);
			if (!table)
				return broken(vq, "indirect table outside guest RAM");
			table_size = d.len / 16;
			in_indirect = true;
			visited = 0;
			i = 0;
			continue;
		}
		if (++visited > table_size)
			return broken(vq, "descriptor chain loops (longer than its table)");
		bool writable = d.flags & VRING_DESC_F_WRITE;
		seen_writable |= writable;
		if (!writable && seen_writable)
			return broken(vq, "device-readable descriptor after a writable one");
		if (d.len) {
			if (n >= max_iov)
				return broken(vq, "descriptor chain has more segments than the "
						  "device accepts");
			void *p = vq->translate(vq->translate_arg, d.addr, d.len);
			if (!p)
				return broken(vq, "descriptor buffer outside guest RAM");
			iov[n].iov_base = p;
			iov[n].iov_len = d.len;
			n++;
			if (writable) {
				in_len += d.len;
			} else {
				out_len += d.len;
				nout++;
			}
			if (in_len + out_len > VQ_MAX_CHAIN_BYTES)
				return broken(vq, "descriptor chain longer than 4 GiB");
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= table_size)
			return broken(vq, "descriptor names a next outside its table");
	}
	vq->last_avail++;
	c->head = head;
	c->iov = iov;
	c->nout = nout;
	c->nin = n - nout;
	c->out_len = out_len;
	c->in_len = in_len;
	return 1;
}

void vq_unpop(struct virtqueue *vq, unsigned n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void vq_push_elem(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	if (!vq->used)
		return;
	volatile struct vring_used_elem *e = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	e->id = head;
	e->len = len;
	vq->used_idx++;
}

void vq_push_publish(struct virtqueue *vq)
{
	if (vq->used)
		__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	vq_push_elem(vq, head, len);
	vq_push_publish(vq);
}

bool vq_should_interrupt(struct virtqueue *vq)
{
	if (!vq->avail)
		return false;
	/* Our used->idx store must be visible before we read the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (!vq->event_idx)
		return !(vq->avail->flags & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	uint16_t used_event = vq->avail->ring[vq->size];
	/* vring_need_event(): did used_idx step over used_event since the last signal? */
	return (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
}

static volatile uint16_t *avail_event(struct virtqueue *vq)
{
	return (volatile uint16_t *)&vq->used->ring[vq->size];
}

void vq_disable_notify(struct virtqueue *vq)
{
	if (!vq->used || vq->event_idx)
		return;   /* with EVENT_IDX, not moving avail_event is enough */
	vq->used->flags |= VRING_USED_F_NO_NOTIFY;
}

bool vq_enable_notify(struct virtqueue *vq)
{
	if (!vq->used)
		return false;
	if (vq->event_idx)
		*avail_event(vq) = vq->last_avail;
	else
		vq->used->flags &= (uint16_t)~VRING_USED_F_NO_NOTIFY;
	/* The re-enable must be visible before we look at avail->idx again. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq_has_work(vq);
}

/* Copy between a chain's iovecs (from byte skip on) and buf; to_iov says which way. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len,
		       bool to_iov)
{
	size_t done = 0;
	for (unsigned k = 0; k < n && done < len; k++) {
		if (skip >= iov[k].iov_len) {
			skip -= iov[k].iov_len;
			continue;
		}
		size_t chunk = iov[k].iov_len - skip;
		if (chunk > len - done)
			chunk = len - done;
		char *guest = (char *)iov[k].iov_base + skip, *local = (char *)buf + done;
		memcpy(to_iov ? guest : local, to_iov ? local : guest, chunk);
		done += chunk;
		skip = 0;
	}
	return done;
}

size_t vq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
	return iov_copy(iov, n, skip, buf, len, false);
}

size_t vq_buf_to_iov(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
		     size_t len)
{
	return iov_copy(iov, n, skip, (void *)buf, len, true);
}
