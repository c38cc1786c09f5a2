/*
 * Fuzz target: the virtio-blk device (src/pci_virtio_blk.c, created as
 * machine.c does through pci_emul_virtio_blk) behind its virtio-PCI
 * transport, driven by a guest that lays request chains of its choosing
 * into a fake RAM and rings the doorbell. No KVM: a VM object whose memory
 * map is two heap blocks with a hole between them (so ASan sees any access
 * outside guest RAM, and a buffer across the hole must be refused), the
 * transport's registers reached through the MMIO bus, pci_msix's test
 * hooks instead of interrupt ioctls. The image is a memfd of a few hundred
 * KiB, reopened by the device through /proc/self/fd (it opens a path).
 *
 * Input: an 8-byte header, then 8-byte records [op][a][b][c][d][e][f][g].
 *   [0]     bit 0: read-only disk
 *   [1..2]  image size: 256 KiB + n bytes (LE16; often not whole sectors)
 *   [3]     log2 of the queue size at the first set-up (% 10)
 *   [4..7]  features the driver accepts of those offered (LE32 mask)
 * Records, op % 8:
 *   0  a request: head a, type b, sector c, shape d, lengths e, data at f|g
 *      (see request() for the encoding); made available, not notified
 *   1  the doorbell of queue a & 1 (1 does not exist), 1 << b % 4 bytes
 *   2  RAM: segment a & 1, offset b|c<<8|d<<16, bytes e f g
 *   3  a raw descriptor a: address from b/c, length d|e<<8, flags f & 7,
 *      next g >> 3
 *   4  a raw avail entry a|b<<8 (idx += 1, or += d if c odd), avail flags
 *      e & 1, used_event f|g<<8
 *   5  the driver's set-up again after a reset: queue size 1 << a % 10
 *      (the device refuses > 256), ring layout b (see setup()), feature
 *      mask c..f, g: bit 0 enable the queue, bit 1 drop VERSION_1, bit 2
 *      MSI-X on with the queue on vector 0, bit 3 the used ring misaligned
 *   6  a status write a (0: reset), then an ISR read
 *   7  a request as 0, then the doorbell
 *
 * Invariants: ASan sees no access outside the RAM blocks (or anywhere
 * else); the image keeps its size and the bytes past its last whole
 * sector, and a read-only image is never changed at all. At every doorbell
 * the harness walks the pending chains itself (the split-ring rules of
 * virtio 1.x 2.7, as virtqueue.c enforces them) and, unless the rings,
 * tables and written buffers overlap (the device's own writes could then
 * change what it reads next), checks the device: while running, it
 * completes every valid chain in order, each with a used length no larger
 * than the chain's writable length, and at the first invalid one stops
 * and sets NEEDS_RESET; a device that needs a reset, was not started or
 * has its queue disabled completes nothing.
 */
#include "fuzz.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mmio.h"
#include "pci.h"
#include "pci_emul.h"
#include "pci_msix.h"
#include "virtio_pci.h"
#include "virtqueue.h"
#include "vm_lock.h"

#define SLOT 4
#define PREFIX "pci.0.4.0"
#define BAR1 (0xc0000000ull + SLOT * 0x100000ull)
#define BAR4 (BAR1 + 0x10000)
#define NOTIFY (BAR4 + 0x3000)

/* RAM: rings and tables in the first block, data in the second. */
#define RAM0_GPA 0x0ull
#define RAM0_LEN 0x20000u
#define RAM1_GPA 0x100000ull
#define RAM1_LEN 0x20000u
#define INDIRECT_AT 0x4000u        /* + head * 0x100: a request's indirect table */
#define HDR_AT 0x14000u            /* + head * 16: its header */
#define STATUS_AT 0x15000u         /* + head: its status byte */

#define IMAGE_BASE 0x40000u
#define SECTOR 512u
#define DEV_MAX_IOV 128            /* pci_virtio_blk.c's MAX_IOV: SEG_MAX + 2 */
#define MAX_RANGES 4096

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11 };

struct range { uint64_t gpa, len; };

static struct {
	struct vm vm;
	struct pci_bus bus;
	struct virtio_pci *vp;
	uint8_t *ram0, *ram1, *ram1_init;
	struct mem_segment segs[2];
	int img;                     /* the memfd */
	uint64_t img_size;
	bool ro;

	/* The driver's view of its queue. */
	uint16_t qsize;
	uint64_t desc, avail, used;
	bool indirect, enabled;
	/*
	 * The device serves the queue: started by the last set-up (status
	 * 0x0f read back), queue enabled, and not yet broken at a doorbell.
	 * Not the status alone: the driver may write any bits into it (even
	 * NEEDS_RESET; FAILED does not stop a started device).
	 */
	bool live;
	uint16_t dev_used;           /* the used index the device has published */
	bool verify;                 /* dev_used known and the rings apart */

	/* One doorbell's pre-walk. */
	struct range prot[DEV_MAX_IOV * 2 + 4], wrote[MAX_RANGES];
	unsigned nprot, nwrote;
	bool overflow;
} R;

static void *xlate(uint64_t gpa, uint64_t len)
{
	return memmap_translate(&R.vm.mem, gpa, len);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void t_line(void *arg, int level) { (void)arg; (void)level; }
static void t_deliver(void *arg, uint64_t addr, uint32_t data) { (void)arg; (void)addr; (void)data; }

static uint64_t mmio_rd(uint64_t gpa, unsigned size)
{
	uint8_t data[8] = { 0 };
	mmio_dispatch(&R.vm.mmio, gpa, size, false, data);
	uint64_t v = 0;
	memcpy(&v, data, size);
	return v;
}

static void mmio_wr(uint64_t gpa, unsigned size, uint64_t v)
{
	uint8_t data[8];
	memcpy(data, &v, sizeof(data));
	mmio_dispatch(&R.vm.mmio, gpa, size, true, data);
}

static uint8_t status(void)
{
	uint8_t s = (uint8_t)mmio_rd(BAR4 + VIRTIO_PCI_COMMON_STATUS, 1);
	FUZZ_CHECK(s == virtio_pci_status(R.vp));
	return s;
}

static volatile struct vring_avail *avail_ring(void)
{
	return xlate(R.avail, vq_avail_bytes(R.qsize));
}

static volatile struct vring_used *used_ring(void)
{
	return xlate(R.used, vq_used_bytes(R.qsize));
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* ---- the driver ---- */

/*
 * Reset, negotiate, lay out queue 0 and set DRIVER_OK. Layout: desc, avail
 * and used in 4 KiB slots b & 3, b >> 2 & 3, b >> 4 & 3 of the first block
 * (0x24 keeps them apart; equal slots overlap); b bit 6: the used ring at
 * the end of the second block (across its end for 256 entries); bit 7: the
 * descriptor table in the hole.
 */
static void setup(unsigned log2, uint8_t layout, uint32_t mask, uint8_t g)
{
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_STATUS, 1, 1);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_STATUS, 1, 3);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	uint64_t offered = mmio_rd(BAR4 + VIRTIO_PCI_COMMON_DF, 4);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	offered |= mmio_rd(BAR4 + VIRTIO_PCI_COMMON_DF, 4) << 32;
	uint64_t f = offered & (mask | 0xffffffff00000000ull);
	if (g & 2)
		f &= ~(1ull << VIRTIO_F_VERSION_1);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_GF, 4, f >> 32);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_STATUS, 1, 11);
	R.indirect = f & (1ull << VIRTIO_RING_F_INDIRECT_DESC);

	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_Q_SIZE, 2, 1u << (log2 % 10));
	R.qsize = (uint16_t)mmio_rd(BAR4 + VIRTIO_PCI_COMMON_Q_SIZE, 2);
	R.desc = RAM0_GPA + 0x1000u * (layout & 3);
	R.avail = RAM0_GPA + 0x1000u * (layout >> 2 & 3);
	R.used = RAM0_GPA + 0x1000u * (layout >> 4 & 3);
	if (layout & 0x40)
		R.used = RAM1_GPA + RAM1_LEN - 0x800;
	if (layout & 0x80)
		R.desc = 0x80000;
	if (g & 8)
		R.used += 2;   /* misaligned: refused at DRIVER_OK */
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_Q_DESCLO, 4, R.desc);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_Q_AVAILLO, 4, R.avail);
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_Q_USEDLO, 4, R.used);
	R.enabled = g & 1;
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_Q_ENABLE, 2, R.enabled);
	if (g & 4) {
		/* MSI-X: vector 0 programmed and unmasked, the queue on it. */
		mmio_wr(BAR1, 4, 0xfee00000u);
		mmio_wr(BAR1 + 8, 4, 0x30);
		mmio_wr(BAR1 + 12, 4, 0);
		pci_bus_cfg_write(&R.bus, 0x80000000u | SLOT << 11 | 0x40, 2, 2,
				  PCI_MSIX_CTRL_ENABLE);
		mmio_wr(BAR4 + VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
		mmio_wr(BAR4 + VIRTIO_PCI_COMMON_MSIX, 2, 0);
	}
	/* Fresh rings, as a driver allocates them. */
	void *p;
	if ((p = xlate(R.desc, vq_desc_bytes(R.qsize))))
		memset(p, 0, vq_desc_bytes(R.qsize));
	if ((p = xlate(R.avail, vq_avail_bytes(R.qsize))))
		memset(p, 0, vq_avail_bytes(R.qsize));
	if ((p = xlate(R.used, vq_used_bytes(R.qsize))))
		memset(p, 0, vq_used_bytes(R.qsize));
	mmio_wr(BAR4 + VIRTIO_PCI_COMMON_STATUS, 1, 15);
	R.live = R.enabled && status() == 15;
	R.dev_used = 0;
	/* Checkable while the three rings are in RAM and apart. */
	R.verify = xlate(R.desc, vq_desc_bytes(R.qsize)) && avail_ring() && used_ring() &&
		   !overlap(R.desc, vq_desc_bytes(R.qsize), R.avail, vq_avail_bytes(R.qsize)) &&
		   !overlap(R.desc, vq_desc_bytes(R.qsize), R.used, vq_used_bytes(R.qsize)) &&
		   !overlap(R.avail, vq_avail_bytes(R.qsize), R.used, vq_used_bytes(R.qsize));
}

static void make_available(uint16_t head)
{
	volatile struct vring_avail *a = avail_ring();
	if (!a)
		return;
	a->ring[a->idx % R.qsize] = head;
	a->idx++;
}

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };
	void *p = xlate(table + 16ull * i, 16);
	if (p)
		memcpy(p, &d, 16);
}

/*
 * A request chain. b: type (T_IN, T_OUT, FLUSH, GET_ID, DISCARD, T_IN
 * again for b % 6, any value 0-63 when b >= 0xc0). c: sector, by c >> 6:
 * small, counted back from the capacity, past it, or near 2^64 / 512 and
 * 2^64 (where sector * 512 wraps). d: bits 0-2 data descriptors, 3 through
 * an indirect table, 4 no status descriptor (the status byte is then the
 * last data descriptor's, if any), 5 the header split 8 + 8, 6 the data in
 * the other direction, 7 an empty descriptor after the header. e: each
 * data length, (e & 15) sectors, plus 1 + (e >> 5) stray bytes if e & 16.
 * f|g << 8: the data's place, in 8-byte units, in (and past) the second
 * RAM block; discard segments are written there.
 */
static void request(const uint8_t *r)
{
	static const uint32_t types[6] = { T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_IN };
	uint16_t head = (uint16_t)(r[1] % R.qsize);
	uint8_t b = r[2], c = r[3], d = r[4], e = r[5];
	uint32_t type = b >= 0xc0 ? b & 0x3fu : types[b % 6];
	uint64_t cap = (R.img_size / SECTOR), sector;
	switch (c >> 6) {
	case 0: sector = c & 63; break;
	case 1: sector = cap - (c & 63); break;
	case 2: sector = cap + (c & 63); break;
	default:
		sector = (c & 1) ? UINT64_MAX - (c >> 1 & 31) : UINT64_MAX / 512 + 1 - (c >> 1 & 31);
		break;
	}
	unsigned nseg = d & 7;
	bool indirect = d & 8, no_status = d & 16, split = d & 32, reverse = d & 64,
	     empty = d & 128;
	uint32_t len = (e & 15) * SECTOR + ((e & 16) ? 1u + (e >> 5) : 0);
	uint64_t data = RAM1_GPA + ((unsigned)(r[6] | r[7] << 8) * 8u) % (RAM1_LEN + 0x1000);
	bool data_writable = (type == T_IN || type == T_GET_ID) != reverse;

	uint8_t *hdr = R.ram0 + HDR_AT + 16u * head;
	memcpy(hdr, &type, 4);
	memset(hdr + 4, 0, 4);
	memcpy(hdr + 8, &sector, 8);
	R.ram0[STATUS_AT + head] = 0xee;
	if (type == T_DISCARD) {
		/* Segments covering the data, near the sector: {sector, num, flags}. */
		for (uint32_t o = 0; o + 16 <= len && o < 0x200; o += 16) {
			uint8_t *p = xlate(data + o, 16);
			if (!p)
				break;
			uint64_t s = sector + o / 2;
			uint32_t num = (e >> 4) * 8, flags = 0;
			memcpy(p, &s, 8);
			memcpy(p + 8, &num, 4);
			memcpy(p + 12, &flags, 4);
		}
	}

	/* The descriptors: h0 [h1] [empty] data... [status]. */
	struct vring_desc ch[16];
	unsigned n = 0;
	uint64_t hdr_gpa = RAM0_GPA + HDR_AT + 16u * head;
	if (split) {
		ch[n++] = (struct vring_desc){ hdr_gpa, 8, 0, 0 };
		ch[n++] = (struct vring_desc){ hdr_gpa + 8, 8, 0, 0 };
	} else {
		ch[n++] = (struct vring_desc){ hdr_gpa, 16, 0, 0 };
	}
	if (empty)
		ch[n++] = (struct vring_desc){ 0, 0, 0, 0 };
	for (unsigned k = 0; k < nseg; k++) {
		uint32_t l = len + (no_status && k == nseg - 1 ? 1 : 0);
		ch[n++] = (struct vring_desc){ data, l, data_writable ? VRING_DESC_F_WRITE : 0, 0 };
		data += l;
	}
	if (!no_status)
		ch[n++] = (struct vring_desc){ RAM0_GPA + STATUS_AT + head, 1, VRING_DESC_F_WRITE, 0 };

	uint64_t table = R.desc;
	unsigned first = head;
	if (indirect) {
		uint64_t it = RAM0_GPA + INDIRECT_AT + 0x100u * head;
		put_desc(R.desc, head, it, 16 * n, VRING_DESC_F_INDIRECT, 0);
		table = it;
		first = 0;
	}
	for (unsigned k = 0; k < n; k++) {
		unsigned i = indirect ? k : (first + k) % R.qsize;
		unsigned next = indirect ? k + 1 : (first + k + 1) % R.qsize;
		put_desc(table, i, ch[k].addr, ch[k].len,
			 ch[k].flags | (k + 1 < n ? VRING_DESC_F_NEXT : 0), (uint16_t)next);
	}
	make_available(head);
}

/* ---- the model the device is checked against ---- */

static void note(struct range *list, unsigned *n, unsigned max, uint64_t gpa, uint64_t len)
{
	if (*n == max) {
		R.overflow = true;
		return;
	}
	list[(*n)++] = (struct range){ gpa, len };
}

/*
 * The writable length of the chain at head, or -1 if virtio 1.x 2.7 (as
 * virtqueue.c hardens it) forbids it. Tables go to prot, writable buffers
 * to wrote.
 */
static int64_t walk(uint16_t head)
{
	if (head >= R.qsize)
		return -1;
	const uint8_t *table = xlate(R.desc, vq_desc_bytes(R.qsize));
	uint32_t table_size = R.qsize, visited = 0;
	bool in_indirect = false, seen_writable = false;
	uint64_t in = 0, out = 0;
	unsigned n = 0;
	uint16_t i = head;
	for (;;) {
		struct vring_desc d;
		memcpy(&d, table + 16u * i, 16);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!R.indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT) || d.len == 0 ||
			    d.len % 16 || d.len / 16 > VQ_MAX_SIZE || !(table = xlate(d.addr, d.len)))
				return -1;
			note(R.prot, &R.nprot, sizeof(R.prot) / sizeof(*R.prot), d.addr, d.len);
			table_size = d.len / 16;
			in_indirect = true;
			visited = 0;
			i = 0;
			continue;
		}
		if (++visited > table_size)
			return -1;
		bool w = d.flags & VRING_DESC_F_WRITE;
		seen_writable |= w;
		if (!w && seen_writable)
			return -1;
		if (d.len) {
			if (n == DEV_MAX_IOV || !xlate(d.addr, d.len))
				return -1;
			n++;
			if (w) {
				in += d.len;
				note(R.wrote, &R.nwrote, MAX_RANGES, d.addr, d.len);
			} else {
				out += d.len;
			}
			if (in + out > 0xffffffffull)
				return -1;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return (int64_t)in;
		i = d.next;
		if (i >= table_size)
			return -1;
	}
}

static void check_image(void)
{
	struct stat st;
	FUZZ_CHECK(fstat(R.img, &st) == 0 && (uint64_t)st.st_size == R.img_size);
	/* The bytes past the last whole sector are not the disk's: never written. */
	uint8_t tail[SECTOR];
	size_t t = R.img_size % SECTOR;
	FUZZ_CHECK(pread(R.img, tail, t, (off_t)(R.img_size - t)) == (ssize_t)t);
	for (size_t i = 0; i < t; i++)
		FUZZ_CHECK(tail[i] == (uint8_t)(0xc3 ^ i));
}

static void doorbell(unsigned q, unsigned size)
{
	uint8_t st = status();
	bool running = R.live && q == 0;
	volatile struct vring_avail *a = R.verify ? avail_ring() : NULL;
	volatile struct vring_used *u = R.verify ? used_ring() : NULL;
	uint16_t heads[256];   /* the device's queues have up to 256 entries */
	int64_t in_len[256];
	unsigned valid = 0, pending = 0;
	bool all_valid = true;
	R.nprot = R.nwrote = 0;
	R.overflow = false;
	if (a && running) {
		pending = (uint16_t)(a->idx - R.dev_used);
		if (pending > R.qsize) {
			all_valid = false;   /* the device must refuse before the first chain */
		} else {
			note(R.prot, &R.nprot, sizeof(R.prot) / sizeof(*R.prot), R.desc,
			     vq_desc_bytes(R.qsize));
			note(R.prot, &R.nprot, sizeof(R.prot) / sizeof(*R.prot), R.avail,
			     vq_avail_bytes(R.qsize));
			for (; valid < pending; valid++) {
				heads[valid] = a->ring[(uint16_t)(R.dev_used + valid) % R.qsize];
				if ((in_len[valid] = walk(heads[valid])) < 0) {
					all_valid = false;
					break;
				}
			}
		}
	}
	/* Apart? The device's writes must not change what it reads next. */
	bool apart = !R.overflow;
	for (unsigned w = 0; apart && w < R.nwrote; w++) {
		for (unsigned p = 0; p < R.nprot; p++)
			if (overlap(R.wrote[w].gpa, R.wrote[w].len, R.prot[p].gpa, R.prot[p].len))
				apart = false;
		if (overlap(R.wrote[w].gpa, R.wrote[w].len, R.used, vq_used_bytes(R.qsize)))
			apart = false;
	}
	for (unsigned p = 2; apart && p < R.nprot; p++)   /* indirect tables and the used ring */
		if (overlap(R.prot[p].gpa, R.prot[p].len, R.used, vq_used_bytes(R.qsize)))
			apart = false;

	mmio_wr(NOTIFY + 4 * q, size, q);
	check_image();
	uint8_t after = status();
	if (!u)
		return;
	if (!apart) {
		R.verify = false;   /* from now on the used index is not known for sure */
		return;
	}
	uint16_t done = (uint16_t)(u->idx - R.dev_used);
	if (!running) {
		/* Stopped, broken, disabled or another doorbell: nothing happens. */
		FUZZ_CHECK(done == 0);
		FUZZ_CHECK((after & VIRTIO_CONFIG_S_NEEDS_RESET) == (st & VIRTIO_CONFIG_S_NEEDS_RESET));
		return;
	}
	/* Every valid chain, in order, then NEEDS_RESET at the first bad one. */
	FUZZ_CHECK(done == valid);
	if (!(st & VIRTIO_CONFIG_S_NEEDS_RESET))   /* else the driver wrote the bit itself */
		FUZZ_CHECK(!!(after & VIRTIO_CONFIG_S_NEEDS_RESET) == !all_valid);
	R.live = all_valid;
	for (unsigned k = 0; k < done; k++) {
		struct vring_used_elem e;
		memcpy(&e, (const void *)&u->ring[(uint16_t)(R.dev_used + k) % R.qsize], sizeof(e));
		FUZZ_CHECK(e.id == heads[k]);
		FUZZ_CHECK(e.len <= in_len[k]);
	}
	R.dev_used = u->idx;
}

static void record(const uint8_t *r)
{
	uint8_t a = r[1], b = r[2], c = r[3], d = r[4], e = r[5], f = r[6], g = r[7];
	switch (r[0] % 8) {
	case 0: request(r); break;
	case 1: doorbell(a & 1, 1u << (b % 4)); break;
	case 2: {
		uint32_t off = (uint32_t)(b | c << 8 | d << 16);
		uint8_t *seg = a & 1 ? R.ram1 : R.ram0;
		uint32_t len = a & 1 ? RAM1_LEN : RAM0_LEN;
		uint64_t gpa = (a & 1 ? RAM1_GPA : RAM0_GPA) + off % (len - 2);
		seg[off % (len - 2)] = e;
		seg[off % (len - 2) + 1] = f;
		seg[off % (len - 2) + 2] = g;
		if (overlap(gpa, 3, R.used, vq_used_bytes(R.qsize)))
			R.verify = false;   /* the guest scribbled on what the device publishes */
		break;
	}
	case 3: {
		static const uint64_t bases[4] = { RAM0_GPA + HDR_AT, RAM1_GPA, RAM1_GPA + RAM1_LEN,
						   0x80000 };
		uint64_t addr = bases[b & 3] + (uint64_t)c * 16 + (b >> 2);
		if (xlate(R.desc, vq_desc_bytes(R.qsize)))
			put_desc(R.desc, a % R.qsize, addr, (uint32_t)(d | e << 8), f & 7,
				 (uint16_t)(g >> 3));
		break;
	}
	case 4: {
		volatile struct vring_avail *av = avail_ring();
		if (!av)
			break;
		av->ring[av->idx % R.qsize] = (uint16_t)(a | b << 8);
		av->idx = (uint16_t)(av->idx + ((c & 1) ? d : 1));
		av->flags = e & 1;
		av->ring[R.qsize] = (uint16_t)(f | g << 8);   /* used_event */
		break;
	}
	case 5: setup(a, b, (uint32_t)(c | d << 8 | e << 16 | (uint32_t)f << 24), g); break;
	case 6:
		mmio_wr(BAR4 + VIRTIO_PCI_COMMON_STATUS, 1, a);
		if (a == 0) {
			/*
			 * Reset: the queue is disabled until the next set-up
			 * (which clears the rings); until then the device
			 * must publish nothing, so the used index stays put.
			 */
			volatile struct vring_used *u = used_ring();
			R.dev_used = u ? u->idx : 0;
			R.enabled = R.live = false;
		}
		(void)mmio_rd(BAR4 + 0x1000, 1);
		break;
	case 7:
		request(r);
		doorbell(0, 2);
		break;
	}
}

static void once(void)
{
	R.ram0 = malloc(RAM0_LEN);
	R.ram1 = malloc(RAM1_LEN);
	R.ram1_init = malloc(RAM1_LEN);
	if (!R.ram0 || !R.ram1 || !R.ram1_init)
		abort();
	/* Data RAM with a pattern, so a write of guest data to a read-only disk shows. */
	for (unsigned i = 0; i < RAM1_LEN; i++)
		R.ram1_init[i] = (uint8_t)(i * 31 + 7) | 1;
	R.img = memfd_create("fuzz-blk", MFD_CLOEXEC);
	if (R.img < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	if (!R.ram0)
		once();
	char err[256], path[64];
	memset(R.ram0, 0, RAM0_LEN);
	memcpy(R.ram1, R.ram1_init, RAM1_LEN);
	R.segs[0] = (struct mem_segment){ .gpa = RAM0_GPA, .len = RAM0_LEN, .hva = R.ram0 };
	R.segs[1] = (struct mem_segment){ .gpa = RAM1_GPA, .len = RAM1_LEN, .hva = R.ram1 };
	memset(&R.vm, 0, sizeof(R.vm));
	R.vm.kvm_fd = R.vm.vm_fd = R.vm.stop_eventfd = -1;
	R.vm.mem = (struct memmap){ .segs = R.segs, .nsegs = 2 };
	vm_lock_init(&R.vm);
	ioport_bus_init(&R.vm.io);
	mmio_bus_init(&R.vm.mmio);
	if (pci_bus_init(&R.bus, &R.vm, err, sizeof(err)))
		abort();

	/* The image: zeros, and a pattern in the bytes past its last whole sector. */
	R.ro = data[0] & 1;
	R.img_size = IMAGE_BASE + (uint64_t)(data[1] | data[2] << 8);
	if (ftruncate(R.img, 0) || ftruncate(R.img, (off_t)R.img_size))
		abort();
	uint8_t tail[SECTOR];
	size_t t = R.img_size % SECTOR;
	for (size_t i = 0; i < t; i++)
		tail[i] = (uint8_t)(0xc3 ^ i);
	if (pwrite(R.img, tail, t, (off_t)(R.img_size - t)) != (ssize_t)t)
		abort();

	struct config cfg;
	config_init(&cfg);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", R.img);
	config_set(&cfg, PREFIX ".path", path);
	if (R.ro)
		config_set(&cfg, PREFIX ".ro", "true");
	void *dev = pci_emul_virtio_blk.create(&R.vm, &R.bus, SLOT, &cfg, PREFIX, err, sizeof(err));
	if (!dev) {
		fprintf(stderr, "fuzz_virtio_blk: set-up failed: %s\n", err);
		abort();
	}
	R.vp = R.bus.devs[SLOT][0]->opaque;   /* the transport's, for its MSI-X hooks */
	struct pci_msix *m = virtio_pci_msix(R.vp);
	m->test_line = t_line;
	m->test_deliver = t_deliver;
	pci_bus_cfg_write(&R.bus, 0x80000000u | SLOT << 11 | PCI_COMMAND, 0, 2, PCI_COMMAND_MEMORY);
	setup(data[3], 0x24, le32(data + 4), 1);

	for (size_t i = 8; i + 8 <= size; i += 8)
		record(data + i);

	pci_emul_virtio_blk.destroy(dev);
	check_image();
	if (R.ro) {
		/* A read-only disk: still all zeros (guest data is never zero). */
		static uint8_t buf[IMAGE_BASE];
		uint64_t whole = R.img_size - R.img_size % SECTOR;
		for (uint64_t o = 0; o < whole; o += sizeof(buf)) {
			size_t n = whole - o < sizeof(buf) ? whole - o : sizeof(buf);
			FUZZ_CHECK(pread(R.img, buf, n, (off_t)o) == (ssize_t)n);
			for (size_t i = 0; i < n; i++)
				FUZZ_CHECK(buf[i] == 0);
		}
	}
	config_free(&cfg);
	pci_bus_free(&R.bus);
	mmio_bus_free(&R.vm.mmio);
	ioport_bus_free(&R.vm.io);
	vm_lock_destroy(&R.vm);
	return 0;
}
