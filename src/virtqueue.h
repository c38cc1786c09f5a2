/*
 * The device side of a virtio split virtqueue (virtio 1.x, section 2.7),
 * written for a guest that may be hostile. Theory at the top of
 * virtqueue.c; in short, every index, address and length that comes from
 * guest memory is checked before use, and any violation makes the queue
 * "broken" with a one-line reason: the device model then sets
 * DEVICE_NEEDS_RESET and stops using the queue until the driver resets it.
 *
 * Guest-physical addresses become host pointers through a translate
 * callback, so the same code serves a device model that holds the VM's map
 * read lock and a driver that holds a vmm_drv lease.
 *
 * One thread at a time uses a virtqueue (the device's queue lock or its
 * only thread): this file does no locking, only the memory ordering the
 * ring protocol needs against the guest.
 */
#ifndef KHYVE_VIRTQUEUE_H
#define KHYVE_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
/* The split ring's layout, flags and feature bits: the kernel's UAPI, one definition. */
#include <linux/virtio_ring.h>

#define VQ_MAX_SIZE 32768u               /* the spec's limit for a split ring */
/* Host pointer for guest-physical [gpa, gpa+len), or NULL. */
typedef void *(*vq_translate_fn)(void *arg, uint64_t gpa, uint64_t len);

struct virtqueue {
	/* Set by the device model from the transport before vq_attach(). */
	uint16_t size;                   /* a power of two, 1 to VQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx, indirect;        /* negotiated VIRTIO_RING_F_* */
	vq_translate_fn translate;
	void *translate_arg;

	/* Host views of the rings, valid from vq_attach() while the map holds. */
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint16_t last_avail;             /* next avail slot the device takes */
	uint16_t used_idx;               /* the device's copy of used->idx */
	uint16_t signalled_used;         /* used_idx at the last interrupt */
	bool signalled_valid;
	const char *broken;              /* why the queue is unusable, or NULL */
};

/*
 * A descriptor chain taken from the ring: iov[0, nout) is what the device
 * reads (driver -> device), iov[nout, nout+nin) what it writes. The chain
 * is returned to the driver with vq_push(head, bytes written).
 */
struct vq_chain {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len;
	struct iovec *iov;
};

/*
 * Translate the three ring areas (once the driver has set DRIVER_OK, and
 * again after every memory-map change). Keeps last_avail/used_idx: a
 * re-attach continues where the queue stood. -1 and vq->broken if a ring
 * is outside guest RAM or misaligned.
 */
int vq_attach(struct virtqueue *vq);
/* Forget the host views (the map is about to change); indices are kept. */
void vq_detach(struct virtqueue *vq);
/* Back to the state after reset (indices zero, not attached, not broken). */
void vq_reset(struct virtqueue *vq);

/*
 * Take the next available chain into c, using up to max_iov entries of
 * iov. 1: got one; 0: ring empty; -1: the guest broke the protocol
 * (vq->broken says how: a loop, a chain longer than the ring, a readable
 * descriptor after a writable one, an address outside RAM, a total length
 * over 4 GiB, more than max_iov segments, a bad index).
 */
int vq_pop(struct virtqueue *vq, struct vq_chain *c, struct iovec *iov, unsigned max_iov);
/* Give the last n popped chains back, unused (e.g. no room for a packet). */
void vq_unpop(struct virtqueue *vq, unsigned n);
/* Any chain available? */
bool vq_has_work(struct virtqueue *vq);

/*
 * Put a used element (chain head, bytes written into its writable part)
 * in the used ring. vq_push_publish() makes all pushed elements visible to
 * the driver at once; vq_push() is both.
 */
void vq_push_elem(struct virtqueue *vq, uint16_t head, uint32_t len);
void vq_push_publish(struct virtqueue *vq);
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);

/*
 * After publishing: does the driver want an interrupt now (EVENT_IDX's
 * used_event, or the NO_INTERRUPT flag)? Updates the signalled state, so
 * call it once per batch and then signal if true.
 */
bool vq_should_interrupt(struct virtqueue *vq);

/*
 * Notification suppression while the device is polling the ring: disable
 * asks the driver not to notify; enable asks again and returns true if
 * chains arrived meanwhile (the caller must then keep processing).
 */
void vq_disable_notify(struct virtqueue *vq);
bool vq_enable_notify(struct virtqueue *vq);

/* Copy helpers over a chain's iovecs; they return bytes copied. */
size_t vq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t vq_buf_to_iov(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
		     size_t len);

/* The ring sizes in bytes for a queue of size n (split layout). */
size_t vq_desc_bytes(unsigned n);
size_t vq_avail_bytes(unsigned n);
size_t vq_used_bytes(unsigned n);

#endif
