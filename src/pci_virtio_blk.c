/*
 * virtio-blk (virtio 1.x, section 5.2) on a raw image file, over the
 * modern virtio-PCI transport (virtio_pci.h): bhyve's pci_virtio_block.
 *
 *   -s SLOT,virtio-blk,PATH[,ro]   keys pci.0.SLOT.0.path (required), .ro
 *
 * THEORY
 *
 * One request queue. Requests are served synchronously on the vCPU thread
 * whose doorbell write reached the transport's notify(): the device drains
 * the queue there, moving data with preadv/pwritev straight between the
 * image file and the guest's buffers (no bounce copy), and raises at most
 * one interrupt per drained batch, when the driver asked for one
 * (vq_should_interrupt: EVENT_IDX or the NO_INTERRUPT flag). No device
 * thread: the guest's own vCPU pays for its I/O, as in bhyve without
 * its block_if threads, and there is nothing to wait for at stop.
 *
 * Guest memory. Ring and buffer pointers are host views of guest RAM that
 * hold only while the memory map does not change, so each drain runs under
 * the VM map read lock and attaches the queue (translates its rings) afresh
 * at its start and detaches at its end: no pointer outlives the read hold.
 *
 * Locking. notify() runs on a vCPU thread inside the MMIO bus's read lock
 * (which prefers readers, so it never waits on a held read side); it takes
 * the map read lock, then the queue lock, which serializes drains from
 * several vCPUs and start/stop. start/stop run under the transport's lock.
 * stop takes only the queue lock. start checks the rings at DRIVER_OK (a
 * ring outside RAM is refused then, not at the first notify), which needs
 * the map: it takes the map read lock first and the queue lock inside it,
 * the order notify uses. It must never wait for the map lock while holding
 * the queue lock: a map writer waits for draining readers, and those may
 * be waiting for that queue lock. Waiting for it under the transport lock
 * is safe because no holder of the map lock waits for a transport lock:
 * readers are drains (queue lock only) and khyvectl, and the writer maps
 * RAM, waiting only for readers and leases.
 * Interrupts and needs_reset take no transport lock.
 *
 * Hostile guests. Every index, address and length goes through the
 * hardened virtqueue (virtqueue.c). Requests that are merely wrong --
 * a header shorter than 16 bytes, a sector range beyond the disk, a length
 * that is not whole sectors, a write to a read-only disk, an unknown type
 * -- complete with status IOERR or UNSUPP and the device carries on; one
 * with no writable status byte is returned with nothing written. A
 * protocol violation (vq_pop fails: a descriptor loop, a buffer outside
 * RAM, ...) sets DEVICE_NEEDS_RESET, and the queue does nothing more until
 * the driver resets the device (stop, then start again).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
/* Feature bits, request types and status codes: the kernel's UAPI, one definition. */
#include <linux/virtio_blk.h>

#include "config.h"
#include "errmsg.h"
#include "memmap.h"
#include "pci_emul.h"
#include "virtio_pci.h"
#include "virtqueue.h"
#include "vm.h"
#include "vm_lock.h"

#define SECTOR 512u
#define QUEUE_SIZE 256
#define SEG_MAX 126                      /* data segments a request may have */
#define MAX_IOV (SEG_MAX + 2)            /* plus the header and the status byte */
#define HDR_LEN 16
#define ID_LEN 20
#define DISCARD_SEG_MAX 32
#define DISCARD_SECTORS_MAX (1u << 22)   /* 2 GiB a segment */
#define PCI_CLASS_STORAGE_SCSI 0x010000

/*
 * The device config the driver sees (virtio 1.x 5.2.4): struct
 * virtio_blk_config up to the write-zeroes fields; the secure-erase ones
 * after them belong to a feature this device does not offer.
 */
#define CFG_SIZE (offsetof(struct virtio_blk_config, unused1) + \
		  sizeof(((struct virtio_blk_config *)0)->unused1))

struct virtio_blk {
	char name[32];                  /* virtio-blk@SLOT: for messages and the MMIO bus */
	struct vm *vm;
	struct virtio_pci *vp;
	int fd;
	bool ro;
	uint64_t capacity;               /* in sectors */
	char id[ID_LEN];                 /* GET_ID's serial, zero-padded */
	struct virtio_blk_config cfg;    /* little-endian, as x86 and virtio 1.x are */

	pthread_mutex_t qlock;           /* everything below */
	bool running;                    /* started with queue 0 enabled */
	uint64_t features;               /* negotiated */
	struct virtqueue vq;
	struct iovec iov[MAX_IOV];       /* the chain vq_pop fills */
	struct iovec data[MAX_IOV];      /* its data part, for preadv/pwritev */
};

static void *translate(void *arg, uint64_t gpa, uint64_t len)
{
	struct vm *vm = arg;
	return memmap_translate(&vm->mem, gpa, len);
}

/* [skip, skip+len) of iov as its own iovec array in out; the count, -1 if it does not fit. */
static int iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
		     struct iovec *out, unsigned max)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - skip;
		if (chunk > len)
			chunk = len;
		if (k == max)
			return -1;
		out[k].iov_base = (char *)iov[i].iov_base + skip;
		out[k].iov_len = chunk;
		k++;
		len -= chunk;
		skip = 0;
	}
	return len ? -1 : (int)k;
}

/* The whole of iov at offset off, through short transfers and signals; 0 or -1. */
static int transfer(int fd, bool write, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = write ? pwritev(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off)
				  : preadv(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;   /* an error, or the image shrank under us */
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* Is [sector, sector + bytes/512) on the disk, in whole sectors? */
static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	return bytes % SECTOR == 0 && sector <= b->capacity &&
	       bytes / SECTOR <= b->capacity - sector;
}

static bool negotiated(const struct virtio_blk *b, unsigned bit)
{
	return b->features & (1ull << bit);
}

static uint8_t do_rw(struct virtio_blk *b, struct vq_chain *c, bool write, uint64_t sector,
		     uint64_t *written)
{
	uint64_t len = write ? c->out_len - HDR_LEN : c->in_len - 1;
	if (write && b->ro)
		return VIRTIO_BLK_S_IOERR;
	if (!range_ok(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	int n = write ? iov_slice(c->iov, c->nout, HDR_LEN, len, b->data, MAX_IOV)
		      : iov_slice(c->iov + c->nout, c->nin, 0, len, b->data, MAX_IOV);
	if (n < 0 || transfer(b->fd, write, b->data, n, sector * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	if (!write)
		*written = len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_discard(struct virtio_blk *b, struct vq_chain *c)
{
	if (!negotiated(b, VIRTIO_BLK_F_DISCARD))
		return VIRTIO_BLK_S_UNSUPP;
	uint64_t len = c->out_len - HDR_LEN;
	if (len == 0 || len % 16 || len / 16 > DISCARD_SEG_MAX)
		return VIRTIO_BLK_S_IOERR;
	struct { uint64_t sector; uint32_t num, flags; } seg[DISCARD_SEG_MAX];
	unsigned nseg = (unsigned)(len / 16);
	vq_iov_to_buf(c->iov, c->nout, HDR_LEN, seg, len);   /* one read of guest memory */
	for (unsigned i = 0; i < nseg; i++) {
		if (seg[i].flags)
			return VIRTIO_BLK_S_UNSUPP;   /* the unmap flag is for WRITE_ZEROES only */
		if (seg[i].num > DISCARD_SECTORS_MAX ||
		    !range_ok(b, seg[i].sector, (uint64_t)seg[i].num * SECTOR))
			return VIRTIO_BLK_S_IOERR;
	}
	for (unsigned i = 0; i < nseg; i++) {
		if (seg[i].num && fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					    (off_t)(seg[i].sector * SECTOR),
					    (off_t)seg[i].num * SECTOR) < 0)
			return errno == EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Serve one chain; the bytes written into its writable part (status included). */
static uint32_t serve(struct virtio_blk *b, struct vq_chain *c)
{
	if (c->in_len == 0)
		return 0;   /* nowhere to put a status: give the chain back untouched */
	const struct iovec *last = &c->iov[c->nout + c->nin - 1];
	uint8_t *status = (uint8_t *)last->iov_base + last->iov_len - 1;
	struct { uint32_t type, reserved; uint64_t sector; } hdr;
	uint64_t written = 0;
	uint8_t s;
	if (c->out_len < HDR_LEN) {
		s = VIRTIO_BLK_S_IOERR;
	} else {
		vq_iov_to_buf(c->iov, c->nout, 0, &hdr, HDR_LEN);   /* read once, then trusted */
		switch (hdr.type) {
		case VIRTIO_BLK_T_IN: s = do_rw(b, c, false, hdr.sector, &written); break;
		case VIRTIO_BLK_T_OUT: s = do_rw(b, c, true, hdr.sector, &written); break;
		case VIRTIO_BLK_T_FLUSH:
			s = fdatasync(b->fd) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
			break;
		case VIRTIO_BLK_T_GET_ID:
			/* Up to 20 bytes, never over the status byte. */
			written = vq_buf_to_iov(c->iov + c->nout, c->nin, 0, b->id,
						c->in_len - 1 < ID_LEN ? c->in_len - 1 : ID_LEN);
			s = VIRTIO_BLK_S_OK;
			break;
		case VIRTIO_BLK_T_DISCARD: s = do_discard(b, c); break;
		default: s = VIRTIO_BLK_S_UNSUPP; break;
		}
	}
	*status = s;
	return (uint32_t)(written + 1);
}

/* Take every available chain. Queue lock and map read lock held, queue attached. */
static void drain(struct virtio_blk *b)
{
	struct virtqueue *vq = &b->vq;
	bool pushed = false;
	vq_disable_notify(vq);
	do {
		struct vq_chain c;
		int r;
		while ((r = vq_pop(vq, &c, b->iov, MAX_IOV)) == 1) {
			vq_push(vq, c.head, serve(b, &c));
			pushed = true;
		}
		if (r < 0) {
			virtio_pci_needs_reset(b->vp, vq->broken);
			break;
		}
	} while (vq_enable_notify(vq));
	if (pushed && vq_should_interrupt(vq))
		virtio_pci_interrupt(b->vp, 0);
}

static void blk_notify(void *dev, unsigned q)
{
	struct virtio_blk *b = dev;
	if (q != 0)
		return;
	vm_map_rdlock(b->vm);
	pthread_mutex_lock(&b->qlock);
	if (b->running && !b->vq.broken) {
		if (vq_attach(&b->vq) == 0)
			drain(b);
		else
			virtio_pci_needs_reset(b->vp, b->vq.broken);
		vq_detach(&b->vq);
	}
	pthread_mutex_unlock(&b->qlock);
	vm_map_rdunlock(b->vm);
}

static int blk_start(void *dev, uint64_t features, char *err, size_t errlen)
{
	struct virtio_blk *b = dev;
	const struct virtio_pci_queue *q = virtio_pci_queue(b->vp, 0);
	vm_map_rdlock(b->vm);   /* before the queue lock: see Locking */
	pthread_mutex_lock(&b->qlock);
	vq_reset(&b->vq);
	b->features = features;
	b->vq.size = q->size;
	b->vq.desc_gpa = q->desc;
	b->vq.avail_gpa = q->avail;
	b->vq.used_gpa = q->used;
	b->vq.indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	b->vq.event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	/* A queue the driver left disabled is one the device must not use. */
	b->running = q->enabled;
	int r = 0;
	if (b->running) {
		/* Rings outside RAM or misaligned: refused now (the transport sets NEEDS_RESET). */
		r = vq_attach(&b->vq);
		vq_detach(&b->vq);
		if (r) {
			b->running = false;
			fail_with(err, errlen, "%s", b->vq.broken);
		}
	}
	pthread_mutex_unlock(&b->qlock);
	vm_map_rdunlock(b->vm);
	return r;
}

static void blk_stop(void *dev)
{
	struct virtio_blk *b = dev;
	pthread_mutex_lock(&b->qlock);
	b->running = false;
	vq_reset(&b->vq);
	pthread_mutex_unlock(&b->qlock);
}

static const struct virtio_pci_ops blk_ops = {
	.start = blk_start,
	.stop = blk_stop,
	.notify = blk_notify,
};

static void blk_destroy(void *dev)
{
	struct virtio_blk *b = dev;
	if (!b)
		return;
	virtio_pci_destroy(b->vp);   /* stops the device first */
	if (b->fd >= 0)
		close(b->fd);
	pthread_mutex_destroy(&b->qlock);
	free(b);
}

/* The serial GET_ID reports: the image's file name, cut to 20 bytes. */
static void make_id(char id[ID_LEN], const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	memset(id, 0, ID_LEN);
	size_t n = strlen(base);
	memcpy(id, base, n < ID_LEN ? n : ID_LEN);
}

static void *blk_create(struct vm *vm, struct pci_bus *bus, uint8_t slot,
			const struct config *cfg, const char *prefix, char *err, size_t errlen)
{
	char key[96];
	snprintf(key, sizeof(key), "%s.path", prefix);
	const char *path = config_get(cfg, key);
	if (!path || !*path) {
		fail_with(err, errlen, "%s: virtio-blk needs an image file (-s SLOT,virtio-blk,PATH)",
			  key);
		return NULL;
	}
	char ro_key[96];
	snprintf(ro_key, sizeof(ro_key), "%s.ro", prefix);
	bool ro;
	if (config_get_bool(cfg, ro_key, false, &ro, err, errlen))
		return NULL;

	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		fail_with(err, errlen, "virtio-blk: out of memory");
		return NULL;
	}
	b->vm = vm;
	b->ro = ro;
	snprintf(b->name, sizeof(b->name), "virtio-blk@%u", slot);
	pthread_mutex_init(&b->qlock, NULL);
	b->vq.translate = translate;
	b->vq.translate_arg = vm;
	b->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		fail_with(err, errlen, "%s=%s: cannot open%s: %s", key, path, ro ? " (read-only)" : "",
			  strerror(errno));
		blk_destroy(b);
		return NULL;
	}
	off_t size = lseek(b->fd, 0, SEEK_END);
	if (size < 0) {
		fail_with(err, errlen, "%s=%s: cannot find its size: %s", key, path, strerror(errno));
		blk_destroy(b);
		return NULL;
	}
	b->capacity = (uint64_t)size / SECTOR;
	make_id(b->id, path);

	b->cfg.capacity = b->capacity;
	b->cfg.seg_max = SEG_MAX;
	b->cfg.blk_size = SECTOR;
	uint64_t features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			    1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
			    1ull << VIRTIO_RING_F_EVENT_IDX;
	if (ro) {
		features |= 1ull << VIRTIO_BLK_F_RO;
	} else {
		features |= 1ull << VIRTIO_BLK_F_DISCARD;
		b->cfg.max_discard_sectors = DISCARD_SECTORS_MAX;
		b->cfg.max_discard_seg = DISCARD_SEG_MAX;
		b->cfg.discard_sector_alignment = 1;
	}
	struct virtio_pci_params p = {
		.name = b->name,
		.device_id = VIRTIO_ID_BLOCK,
		.class_code = PCI_CLASS_STORAGE_SCSI,
		.nqueues = 1,
		.queue_max_size = QUEUE_SIZE,
		.features = features,
		.cfg = (uint8_t *)&b->cfg,
		.cfg_size = CFG_SIZE,
		.ops = &blk_ops,
		.dev = b,
	};
	b->vp = virtio_pci_create(vm, bus, slot, &p, err, errlen);
	if (!b->vp) {
		blk_destroy(b);
		return NULL;
	}
	return b;
}

const struct pci_emul pci_emul_virtio_blk = { "virtio-blk", blk_create, blk_destroy };
