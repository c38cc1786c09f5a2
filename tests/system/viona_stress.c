/*
 * Stress test of viona (src/viona.c, src/viona_user.c) and the virtio-PCI
 * transport under it, meant to run under ThreadSanitizer and
 * AddressSanitizer and as the release build (tests/system/43-viona-stress.sh,
 * inside a network namespace with a TAP). THEORY
 *
 * The program is the guest's virtio-net driver itself, without running a
 * guest OS: it creates a VM with libkhyve, a PCI bus and a virtio-net device
 * (pci_emul_virtio_net, backend=user, on the TAP), and programs it through
 * the MMIO bus exactly as a driver's register accesses would arrive from a
 * vCPU (mmio_dispatch on BAR4's common config: features, queues, status).
 * Its rings and buffers are in guest RAM found through the VM's memory map
 * -- boot RAM at first, and also RAM that the map changer hot-adds -- and
 * the test reads and writes them as the guest would.
 *
 * Doorbells. viona hooks them with ioeventfds: only a guest write to
 * BAR4 + 0x3000 + 4 * q reaches viona's kick fd, and nothing in viona
 * offers the fd to a test (nor should it). So a real vCPU rings them: a
 * tiny 64-bit guest (below), run with KVM_RUN in a thread of the test as
 * tests/unit/test_drv.c does, spins on a kick block in guest RAM and writes
 * queue q's doorbell whenever the test bumps req[q]. It never touches guest
 * memory otherwise, so ThreadSanitizer sees no guest accesses at all. While
 * the doorbells are unhooked (between a reset and DRIVER_OK) its writes
 * exit to the test's KVM_RUN loop, which drops them as the MMIO bus would.
 * MSI-X is on, its vectors aimed at that vCPU, whose interrupts stay off:
 * viona's interrupts take the irqfd path and are never handled.
 * No production code was changed to make the test possible; the one
 * indirection is how the test finds the device's struct viona to read its
 * counters: the link wraps viona_create (-Wl,--wrap=viona_create, in the
 * Makefile), recording what the real one returns.
 *
 * Concurrently, for SECONDS:
 *   - "guest TX": puts Ethernet frames (ethertype 0x88b5, a sequence number,
 *     a length and a pattern derived from it) on the transmit ring and rings
 *     the doorbell; a host "sink" (an AF_PACKET socket on the TAP in the
 *     namespace) checks every frame that comes out: pattern, length,
 *     strictly increasing sequence numbers (a duplicate or reordering is a
 *     bug), and at the end that it saw only frames the device had completed;
 *   - "RX": a host "injector" sends frames (0x88b6, same scheme) into the
 *     TAP through another AF_PACKET socket; the driver's receive thread
 *     consumes the receive ring (mergeable buffers reassembled), checks the
 *     frames the same way and refills the buffers. Losses are allowed (no
 *     buffers, the TAP's queue full), corruption, duplicates and reordering
 *     are not;
 *   - a map changer calls vm_add_memory (2 MiB) a few dozen times: every
 *     call expires viona's lease, which must halt, re-sign and resume; each
 *     new segment becomes a place the next driver generation may put its
 *     rings and buffers;
 *   - a resetter, now and then, stops the driver's queue threads (a driver
 *     reload quiesces them), resets the device (status 0), collects what the
 *     device completed, poisons the old rings and buffers, and initializes
 *     the device again (DRIVER_OK) with a new, random configuration: ring
 *     size, mergeable buffers or not, EVENT_IDX, indirect descriptors,
 *     transmit chain shapes, receive buffer sizes, a different place in
 *     guest RAM. Before a place is used again its poison must be intact:
 *     viona wrote nothing there after the reset.
 * Then EXACT_CHANGES more map changes, each waiting until viona has
 * renewed its lease and frames move again in both directions; then a last
 * reset and the
 * exact accounting (viona_user_counters against what the driver saw
 * complete, byte for byte; lease_renewals against the map changes);
 * then a new generation that must receive again, and the teardown with it
 * running and the injector still sending: vm_destroy (viona lets its hold
 * go) and the device's destroy, clean under ASan's leak checker.
 *
 * The driver side of notification suppression is left out on purpose: the
 * test always kicks after publishing and polls the used rings instead of
 * taking interrupts, and never reads used->flags / avail_event nor changes
 * avail->flags / used_event after DRIVER_OK. Those fields are a Dekker
 * handshake ordered by fences, which ThreadSanitizer cannot see, and the
 * device side accesses them as plain volatile memory: reading them here
 * would only report the protocol's intended races. Everything else the
 * two sides share is ordered by the ring indices (release/acquire), which
 * ThreadSanitizer checks.
 *
 *   viona_stress TAP SECONDS    (env VIONA_STRESS_SEED: the random seed)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "boot_layout.h"
#include "config.h"
#include "errmsg.h"
#include "mmio.h"
#include "pci.h"
#include "pci_emul.h"
#include "pci_msix.h"
#include "vcpu.h"
#include "viona_impl.h"
#include "virtio_net_hw.h"
#include "virtio_pci.h"
#include "virtqueue.h"
#include "vm.h"
#include "vm_lock.h"
#include "vmm_drv.h"
#include "x86_entry.h"

#define SLOT 3
#define PREFIX "pci.0.3.0"
#define CFG(reg) (0x80000000u | (uint32_t)SLOT << 11 | ((reg) & 0xfcu))

/* BAR4 layout (virtio_pci.h); the common config registers are <linux/virtio_pci.h>'s. */
#define DEVICE_CFG 0x2000u
#define NOTIFY 0x3000u
#define MSIX_CAP 0x40u

#define BIT(n) (1ull << (n))
#define RXQ 0
#define TXQ 1

/* Guest RAM: the doorbell guest, its kick block, and two places for rings and buffers. */
#define MEM_SIZE (32ull << 20)
#define GUEST_CODE_GPA 0x100000ull
#define KICK_GPA 0x3000ull
#define EXIT_PORT 0x511
#define BOOT_AREA_GPA(i) (0x400000ull + (uint64_t)(i) * 0x400000ull)
#define HOTMEM_SIZE (2ull << 20)

/* One place ("area") holds a generation's rings and buffers; 2 KiB per chain. */
#define MAXQ 256u
#define RX_DESC 0x0000u
#define RX_AVAIL 0x1000u
#define RX_USED 0x2000u
#define TX_DESC 0x3000u
#define TX_AVAIL 0x4000u
#define TX_USED 0x5000u
#define RINGS_LEN 0x6000u
#define RX_BUF 0x10000u
#define TX_BUF 0x100000u
#define SLOT_BYTES 2048u
#define AREA_LEN (TX_BUF + MAXQ * SLOT_BYTES)
#define TX_INDIRECT_OFF 1536u      /* a chain's 2-entry indirect table, after its frame */
#define POISON 0xdb

#define HDR_LEN sizeof(struct virtio_net_hdr_v1)
#define ETHERTYPE_TX 0x88b5        /* guest -> host frames */
#define ETHERTYPE_RX 0x88b6        /* host -> guest frames */
#define MIN_FRAME 60u
#define MAX_FRAME 1514u
#define MAX_SEQ (1u << 24)         /* sequence numbers tracked in bitmaps */
#define TX_BATCH 32u
#define TX_WINDOW 512u             /* frames ahead of the sink, so that it keeps up */
#define RX_WINDOW 192u             /* frames ahead of the receive thread */
#define MAP_CHANGES 30             /* during the random phase */
#define EXACT_CHANGES 5            /* then one at a time, each waited for */
#define WAIT_MS 30000              /* for progress: generous, the testbox emulates its CPU */

static struct vm vm;
static struct pci_bus bus;
static struct config cfg;
static void *dev;
static struct viona *the_viona;
static uint64_t bar1, bar4;
static uint8_t tap_mac[6], guest_mac[6];
static int tap_ifindex;
static unsigned long seed;

static atomic_ulong errors;
static int failures;

static void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void error(const char *fmt, ...)
{
	/* Every error counts; the first few say what they were. */
	if (atomic_fetch_add(&errors, 1) >= 20)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "viona_stress: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	if (ok)
		return;
	va_list ap;
	va_start(ap, fmt);
	printf("FAILED: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	failures++;
}

static void sleep_us(long us)
{
	nanosleep(&(struct timespec){ us / 1000000, (us % 1000000) * 1000 }, NULL);
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* ---- how the test finds the device's viona (see the theory) ---- */

struct viona *__real_viona_create(struct vm *vm, struct pci_msix *msix, const char *tap,
				  enum viona_backend want, viona_error_fn on_error, void *arg,
				  char *err, size_t errlen);
struct viona *__wrap_viona_create(struct vm *vm, struct pci_msix *msix, const char *tap,
				  enum viona_backend want, viona_error_fn on_error, void *arg,
				  char *err, size_t errlen)
{
	struct viona *v = __real_viona_create(vm, msix, tap, want, on_error, arg, err, errlen);
	the_viona = v;
	return v;
}

/* ---- guest RAM through the memory map ---- */

static void *guest_ptr(uint64_t gpa, uint64_t len)
{
	vm_map_rdlock(&vm);
	void *p = memmap_translate(&vm.mem, gpa, len);
	vm_map_rdunlock(&vm);
	return p;
}

/* ---- register accesses, as a vCPU's would arrive ---- */

static uint64_t mmio_rd(uint64_t gpa, unsigned size)
{
	uint8_t d[8] = { 0 };
	mmio_dispatch(&vm.mmio, gpa, size, false, d);
	uint64_t v = 0;
	memcpy(&v, d, size);
	return v;
}

static void mmio_wr(uint64_t gpa, unsigned size, uint64_t v)
{
	uint8_t d[8];
	memcpy(d, &v, size);
	mmio_dispatch(&vm.mmio, gpa, size, true, d);
}

static uint64_t cc_rd(unsigned off, unsigned size) { return mmio_rd(bar4 + off, size); }
static void cc_wr(unsigned off, unsigned size, uint64_t v) { mmio_wr(bar4 + off, size, v); }

/* A configuration cycle, under the bus lock as the 0xcfc port handler takes it. */
static void pci_cfg_wr(unsigned reg, unsigned size, uint32_t v)
{
	pthread_mutex_lock(&bus.lock);
	pci_bus_cfg_write(&bus, CFG(reg), reg & 3, size, v);
	pthread_mutex_unlock(&bus.lock);
}

static uint32_t pci_cfg_rd(unsigned reg, unsigned size)
{
	pthread_mutex_lock(&bus.lock);
	uint32_t v = pci_bus_cfg_read(&bus, CFG(reg), reg & 3, size);
	pthread_mutex_unlock(&bus.lock);
	return v;
}

/* ---- the doorbell guest ---- */

/*
 * At KICK_GPA; the guest only reads req, stop and doorbell (and counts
 * its writes in rang), so the test's atomic updates are all there is.
 */
struct kick_block {
	uint32_t req[2];        /* +0, +4: the test bumps req[q] to have queue q's bell rung */
	uint32_t stop;          /* +8: the guest leaves through EXIT_PORT */
	uint32_t rang[2];       /* +12, +16: doorbell writes the guest made */
	uint32_t pad;
	uint64_t doorbell[2];   /* +24, +32: queue q's doorbell address */
};
_Static_assert(offsetof(struct kick_block, doorbell) == 24, "the guest code's offsets");

#define STR_(x) #x
#define STR(x) STR_(x)
/*
 * 64-bit, at GUEST_CODE_GPA: r8/r9 hold the req values last served; when
 * req[q] moves, write q (16 bits: the queue index, as a driver does) to
 * queue q's doorbell. Spins with pause until stop is set.
 */
__asm__(".pushsection .rodata\n"
	".code64\n"
	"viona_guest:\n"
	"	xor %r8d, %r8d\n"
	"	xor %r9d, %r9d\n"
	"	mov $" STR(KICK_GPA) ", %esi\n"
	"1:	mov (%rsi), %eax\n"
	"	cmp %eax, %r8d\n"
	"	je 2f\n"
	"	mov %eax, %r8d\n"
	"	mov 24(%rsi), %rbx\n"
	"	movw $0, (%rbx)\n"
	"	incl 12(%rsi)\n"
	"2:	mov 4(%rsi), %eax\n"
	"	cmp %eax, %r9d\n"
	"	je 3f\n"
	"	mov %eax, %r9d\n"
	"	mov 32(%rsi), %rbx\n"
	"	movw $1, (%rbx)\n"
	"	incl 16(%rsi)\n"
	"3:	cmpl $0, 8(%rsi)\n"
	"	jne 4f\n"
	"	pause\n"
	"	jmp 1b\n"
	"4:	mov $" STR(EXIT_PORT) ", %edx\n"
	"	out %al, (%dx)\n"
	"	jmp 4b\n"
	"viona_guest_end:\n"
	".popsection\n");
extern const uint8_t viona_guest[], viona_guest_end[];

static struct kick_block *kb;
static atomic_ulong unhooked_rings;   /* doorbell writes that exited (not hooked then) */

static void kick(unsigned q)
{
	__atomic_fetch_add(&kb->req[q], 1, __ATOMIC_RELEASE);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = &vm.vcpus[0];
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			error("KVM_RUN: %s", strerror(errno));
			return NULL;
		}
		struct kvm_run *r = v->run;
		if (r->exit_reason == KVM_EXIT_IO && r->io.port == EXIT_PORT)
			return NULL;
		if (r->exit_reason == KVM_EXIT_MMIO && r->mmio.is_write &&
		    r->mmio.phys_addr >= bar4 + NOTIFY && r->mmio.phys_addr < bar4 + NOTIFY + 8) {
			/* Rung while unhooked (reset .. DRIVER_OK): not on the bus, dropped. */
			atomic_fetch_add(&unhooked_rings, 1);
			continue;
		}
		error("the doorbell guest exited unexpectedly: reason %u, port 0x%x, gpa 0x%llx",
		      r->exit_reason, r->io.port, (unsigned long long)r->mmio.phys_addr);
		return NULL;
	}
}

/* ---- frames ---- */

static unsigned frame_len(uint64_t seq, unsigned mul)
{
	return MIN_FRAME + (unsigned)((seq * mul + (seq >> 7)) % (MAX_FRAME - MIN_FRAME + 1));
}

static uint8_t pattern(uint64_t seq, unsigned i)
{
	return (uint8_t)(seq * 131 + i * 7 + (seq >> 8) + (i >> 8));
}

/* dst, src, type, 4-byte magic, 8-byte sequence number, pattern up to len. */
static void frame_build(uint8_t *f, unsigned len, const uint8_t dst[6], const uint8_t src[6],
			uint16_t type, const char magic[4], uint64_t seq)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	memcpy(f + 14, magic, 4);
	memcpy(f + 18, &seq, 8);
	for (unsigned i = 26; i < len; i++)
		f[i] = pattern(seq, i);
}

/* 1: a good test frame (seq set); 0: not a test frame; -1: a corrupt one (said why). */
static int frame_check(const uint8_t *f, unsigned len, const uint8_t dst[6],
		       const uint8_t src[6], uint16_t type, const char magic[4], unsigned mul,
		       uint64_t *seq, const char *where)
{
	if (len < 14 || f[12] != (uint8_t)(type >> 8) || f[13] != (uint8_t)type)
		return 0;
	if (len < 26 || memcmp(f + 14, magic, 4)) {
		error("%s: a frame of type 0x%04x without its magic (length %u)", where, type, len);
		return -1;
	}
	memcpy(seq, f + 18, 8);
	if (memcmp(f, dst, 6) || memcmp(f + 6, src, 6)) {
		error("%s: frame %llu has the wrong addresses", where, (unsigned long long)*seq);
		return -1;
	}
	if (len != frame_len(*seq, mul)) {
		error("%s: frame %llu is %u bytes, expected %u", where, (unsigned long long)*seq, len,
		      frame_len(*seq, mul));
		return -1;
	}
	for (unsigned i = 26; i < len; i++)
		if (f[i] != pattern(*seq, i)) {
			error("%s: frame %llu corrupt at byte %u", where, (unsigned long long)*seq, i);
			return -1;
		}
	return 1;
}

#define TX_MUL 53u
#define RX_MUL 37u

static uint8_t *bitmap_new(void)
{
	uint8_t *b = calloc(MAX_SEQ / 8, 1);
	if (!b) {
		fprintf(stderr, "viona_stress: out of memory\n");
		exit(1);
	}
	return b;
}
static void bit_set(uint8_t *b, uint64_t i) { b[i / 8] |= (uint8_t)(1u << (i % 8)); }
static bool bit_get(const uint8_t *b, uint64_t i) { return b[i / 8] >> (i % 8) & 1; }

/* ---- places for rings and buffers ---- */

struct area {
	uint64_t gpa;
	uint8_t *hva;
	unsigned uses;
};
#define MAX_AREAS (2 + MAP_CHANGES + EXACT_CHANGES)
static pthread_mutex_t areas_mu = PTHREAD_MUTEX_INITIALIZER;
static struct area areas[MAX_AREAS];
static unsigned nareas;

static void area_add(uint64_t gpa)
{
	uint8_t *p = guest_ptr(gpa, AREA_LEN);
	if (!p) {
		error("guest RAM at 0x%llx does not translate through the memory map",
		      (unsigned long long)gpa);
		return;
	}
	memset(p, POISON, AREA_LEN);
	pthread_mutex_lock(&areas_mu);
	if (nareas < MAX_AREAS)
		areas[nareas++] = (struct area){ gpa, p, 0 };
	pthread_mutex_unlock(&areas_mu);
}

/* ---- the driver's queues ---- */

struct dq {
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx, last_used;
};

enum tx_mode { TX_ONE, TX_SPLIT, TX_INDIRECT };
enum rx_mode { RX_MRG, RX_ONE, RX_SPLIT };

struct chain {
	bool out;           /* given to the device, not yet used */
	uint64_t seq;       /* transmit: the frame's */
	unsigned len;       /* transmit: the frame's length */
};

/* One driver generation: DRIVER_OK .. reset. */
struct gen {
	struct area *area;
	uint64_t features;
	bool mrg, event_idx, indirect, no_intr, prepost;
	enum tx_mode tx_mode;
	enum rx_mode rx_mode;
	unsigned rxbuf;                 /* RX_MRG: bytes per buffer */
	struct dq q[2];
	unsigned nchains[2];
	struct chain ch[2][MAXQ];
	uint16_t tx_free[MAXQ];
	unsigned tx_nfree;
};
/* The queue threads' while they run, the resetter's while they are parked. */
static struct gen cur;

/* What the driver saw, for the final accounting. */
static atomic_ulong tx_completed, rx_packets_seen;  /* read by the main thread's progress waits */
static unsigned long tx_completed_bytes, tx_posted, tx_discarded;
static unsigned long rx_bytes_seen, rx_test_frames, rx_other_frames, rx_max_buffers;
static uint8_t *tx_done_map;         /* sequence numbers the device completed */
static uint64_t tx_next_seq;
static atomic_ullong rx_last_seq;    /* +1; 0: none yet (the injector's window reads it) */
static atomic_ullong sink_last_seq;  /* +1; 0: none yet (the TX thread's window reads it) */

static void dq_setup(struct dq *q, struct area *a, unsigned desc, unsigned avail, unsigned used,
		     uint16_t size)
{
	*q = (struct dq){ .size = size, .desc_gpa = a->gpa + desc, .avail_gpa = a->gpa + avail,
			  .used_gpa = a->gpa + used };
	q->desc = (struct vring_desc *)(a->hva + desc);
	q->avail = (struct vring_avail *)(a->hva + avail);
	q->used = (struct vring_used *)(a->hva + used);
}

static void dq_put(struct dq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	q->avail_idx++;
}

/* Make what dq_put added visible (descriptors and ring entries first), then ring. */
static void dq_publish(struct dq *q, unsigned qi)
{
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	kick(qi);
}

static uint16_t dq_used_idx(struct dq *q)
{
	return __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
}

/* ---- transmit ---- */

static uint16_t tx_head(struct gen *g, unsigned k)
{
	return (uint16_t)(g->tx_mode == TX_SPLIT ? 2 * k : k);
}

static void tx_post(struct gen *g, unsigned k, uint64_t seq, unsigned len)
{
	struct dq *q = &g->q[TXQ];
	uint64_t gpa = g->area->gpa + TX_BUF + (uint64_t)k * SLOT_BYTES;
	uint8_t *p = g->area->hva + TX_BUF + (size_t)k * SLOT_BYTES;
	memset(p, 0, HDR_LEN);   /* no offload asked for */
	switch (g->tx_mode) {
	case TX_ONE:
		frame_build(p + HDR_LEN, len, tap_mac, guest_mac, ETHERTYPE_TX, "VSTX", seq);
		q->desc[k] = (struct vring_desc){ gpa, (uint32_t)(HDR_LEN + len), 0, 0 };
		break;
	case TX_SPLIT:
		frame_build(p + 16, len, tap_mac, guest_mac, ETHERTYPE_TX, "VSTX", seq);
		q->desc[2 * k] = (struct vring_desc){ gpa, HDR_LEN, VRING_DESC_F_NEXT,
						      (uint16_t)(2 * k + 1) };
		q->desc[2 * k + 1] = (struct vring_desc){ gpa + 16, len, 0, 0 };
		break;
	case TX_INDIRECT: {
		frame_build(p + 16, len, tap_mac, guest_mac, ETHERTYPE_TX, "VSTX", seq);
		struct vring_desc *t = (struct vring_desc *)(p + TX_INDIRECT_OFF);
		t[0] = (struct vring_desc){ gpa, HDR_LEN, VRING_DESC_F_NEXT, 1 };
		t[1] = (struct vring_desc){ gpa + 16, len, 0, 0 };
		q->desc[k] = (struct vring_desc){ gpa + TX_INDIRECT_OFF, 32, VRING_DESC_F_INDIRECT,
						  0 };
		break;
	}
	}
	g->ch[TXQ][k] = (struct chain){ true, seq, len };
	dq_put(q, tx_head(g, k));
}

static void tx_harvest(struct gen *g)
{
	struct dq *q = &g->q[TXQ];
	uint16_t u = dq_used_idx(q);
	unsigned out = g->nchains[TXQ] - g->tx_nfree;
	if ((uint16_t)(u - q->last_used) > out) {
		error("transmit: used index %u ran %u ahead with %u chains out", u,
		      (uint16_t)(u - q->last_used), out);
		q->last_used = u;
		return;
	}
	for (; q->last_used != u; q->last_used++) {
		struct vring_used_elem e = q->used->ring[q->last_used & (q->size - 1)];
		unsigned k = g->tx_mode == TX_SPLIT ? e.id / 2 : e.id;
		if (k >= g->nchains[TXQ] || tx_head(g, k) != e.id || !g->ch[TXQ][k].out) {
			error("transmit: the device used descriptor %u, which it was not given", e.id);
			continue;
		}
		if (e.len != 0)
			error("transmit: used length %u for a chain with nothing writable", e.len);
		struct chain *c = &g->ch[TXQ][k];
		c->out = false;
		g->tx_free[g->tx_nfree++] = (uint16_t)k;
		if (c->seq < MAX_SEQ)
			bit_set(tx_done_map, c->seq);
		tx_completed_bytes += c->len;
		atomic_fetch_add_explicit(&tx_completed, 1, memory_order_relaxed);
	}
}

/*
 * Post up to TX_BATCH frames, as far as free chains and the sink's window
 * allow. force: ignore the window (frames a reset discarded never reach
 * the sink, so the window alone could wait for them forever).
 */
static unsigned tx_fill(struct gen *g, bool force)
{
	unsigned n = 0;
	uint64_t sunk = atomic_load(&sink_last_seq);
	while (n < TX_BATCH && g->tx_nfree && tx_next_seq < MAX_SEQ &&
	       (force || tx_next_seq < sunk + TX_WINDOW)) {
		unsigned k = g->tx_free[--g->tx_nfree];
		tx_post(g, k, tx_next_seq, frame_len(tx_next_seq, TX_MUL));
		tx_next_seq++;
		tx_posted++;
		n++;
	}
	if (n)
		dq_publish(&g->q[TXQ], TXQ);
	return n;
}

/* ---- receive ---- */

static uint16_t rx_head(struct gen *g, unsigned k)
{
	return (uint16_t)(g->rx_mode == RX_SPLIT ? 2 * k : k);
}

static unsigned rx_cap(struct gen *g)
{
	return g->rx_mode == RX_MRG ? g->rxbuf : g->rx_mode == RX_ONE ? SLOT_BYTES
								   : HDR_LEN + SLOT_BYTES - 16;
}

static void rx_post(struct gen *g, unsigned k)
{
	struct dq *q = &g->q[RXQ];
	uint64_t gpa = g->area->gpa + RX_BUF + (uint64_t)k * SLOT_BYTES;
	switch (g->rx_mode) {
	case RX_MRG:
		q->desc[k] = (struct vring_desc){ gpa, g->rxbuf, VRING_DESC_F_WRITE, 0 };
		break;
	case RX_ONE:
		q->desc[k] = (struct vring_desc){ gpa, SLOT_BYTES, VRING_DESC_F_WRITE, 0 };
		break;
	case RX_SPLIT:
		q->desc[2 * k] = (struct vring_desc){ gpa, HDR_LEN,
						      VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						      (uint16_t)(2 * k + 1) };
		q->desc[2 * k + 1] = (struct vring_desc){ gpa + 16, SLOT_BYTES - 16,
							  VRING_DESC_F_WRITE, 0 };
		break;
	}
	g->ch[RXQ][k].out = true;
	dq_put(q, rx_head(g, k));
}

static void rx_frame(const uint8_t *f, unsigned len)
{
	uint64_t seq;
	int r = frame_check(f, len, guest_mac, tap_mac, ETHERTYPE_RX, "VSRX", RX_MUL, &seq,
			    "receive");
	if (r == 0) {
		rx_other_frames++;   /* the host's own traffic on the TAP (IPv6 and such) */
		return;
	}
	if (r < 0)
		return;
	uint64_t last = atomic_load(&rx_last_seq);
	if (last && seq < last)
		error("receive: frame %llu after frame %llu (duplicate or reordered)",
		      (unsigned long long)seq, (unsigned long long)(last - 1));
	atomic_store(&rx_last_seq, seq + 1);
	rx_test_frames++;
}

/*
 * Take the received packets off the used ring, check them, give their
 * buffers back (repost) unless the device is reset. A packet whose buffers
 * are not all visible yet is left for the next call; at a reset (final)
 * that is an error: the device publishes a packet's buffers at once.
 */
static void rx_harvest(struct gen *g, bool repost, bool final)
{
	static uint8_t frame[SLOT_BYTES * MAXQ];
	struct dq *q = &g->q[RXQ];
	uint16_t u = dq_used_idx(q);
	unsigned out = 0;
	for (unsigned k = 0; k < g->nchains[RXQ]; k++)
		out += g->ch[RXQ][k].out;
	if ((uint16_t)(u - q->last_used) > out) {
		error("receive: used index %u ran %u ahead with %u chains out", u,
		      (uint16_t)(u - q->last_used), out);
		q->last_used = u;
		return;
	}
	unsigned reposted = 0;
	while (q->last_used != u) {
		uint16_t ready = (uint16_t)(u - q->last_used);
		struct vring_used_elem e0 = q->used->ring[q->last_used & (q->size - 1)];
		unsigned k0 = g->rx_mode == RX_SPLIT ? e0.id / 2 : e0.id;
		if (k0 >= g->nchains[RXQ] || rx_head(g, k0) != e0.id || !g->ch[RXQ][k0].out) {
			error("receive: the device used descriptor %u, which it was not given", e0.id);
			q->last_used++;
			continue;
		}
		const uint8_t *b0 = g->area->hva + RX_BUF + (size_t)k0 * SLOT_BYTES;
		struct virtio_net_hdr_v1 h;
		memcpy(&h, b0, sizeof(h));
		unsigned nb = g->mrg ? h.num_buffers : 1;
		if (!g->mrg && h.num_buffers != 1)
			error("receive: num_buffers %u without mergeable buffers", h.num_buffers);
		if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
			error("receive: a GSO packet (type %u) that was not negotiated", h.gso_type);
		if (nb == 0 || nb > out) {
			error("receive: num_buffers %u with %u buffers out", nb, out);
			nb = 1;
		}
		if (nb > ready) {
			if (final)
				error("receive: a packet's %u buffers published only %u at a time", nb,
				      ready);
			break;
		}
		unsigned len = 0;
		bool ok = true;
		for (unsigned j = 0; j < nb; j++) {
			struct vring_used_elem e = q->used->ring[(q->last_used + j) & (q->size - 1)];
			unsigned k = g->rx_mode == RX_SPLIT ? e.id / 2 : e.id;
			if (k >= g->nchains[RXQ] || rx_head(g, k) != e.id || !g->ch[RXQ][k].out) {
				error("receive: the device used descriptor %u, which it was not given",
				      e.id);
				ok = false;
				break;
			}
			if (e.len > rx_cap(g) || (j == 0 && e.len < HDR_LEN) || (j > 0 && e.len == 0)) {
				error("receive: used length %u for a %u-byte buffer", e.len, rx_cap(g));
				ok = false;
				break;
			}
			const uint8_t *b = g->area->hva + RX_BUF + (size_t)k * SLOT_BYTES;
			unsigned skip = j == 0 ? (unsigned)HDR_LEN : 0;
			if (g->rx_mode == RX_SPLIT) {
				/* The header filled the first descriptor; the frame is in the second. */
				b += 16;
				skip = 0;
				e.len -= HDR_LEN;
			} else {
				b += skip;
				e.len -= skip;
			}
			memcpy(frame + len, b, e.len);
			len += e.len;
			g->ch[RXQ][k].out = false;
			out--;
		}
		q->last_used = (uint16_t)(q->last_used + nb);
		if (ok) {
			rx_frame(frame, len);
			rx_bytes_seen += len;
			if (nb > rx_max_buffers)
				rx_max_buffers = nb;
			atomic_fetch_add_explicit(&rx_packets_seen, 1, memory_order_relaxed);
		}
		if (repost)
			for (unsigned j = 0; j < nb; j++) {
				struct vring_used_elem e =
					q->used->ring[(uint16_t)(q->last_used - nb + j) & (q->size - 1)];
				unsigned k = g->rx_mode == RX_SPLIT ? e.id / 2 : e.id;
				if (k < g->nchains[RXQ] && !g->ch[RXQ][k].out) {
					rx_post(g, k);
					out++;
					reposted++;
				}
			}
	}
	if (reposted)
		dq_publish(q, RXQ);
}

/* ---- generations: initialize, reset ---- */

static void gen_start(unsigned *rs)
{
	struct gen *g = &cur;
	struct area *prev = g->area;
	memset(g, 0, sizeof(*g));
	pthread_mutex_lock(&areas_mu);
	do
		g->area = &areas[rand_r(rs) % nareas];
	while (g->area == prev && nareas > 1);
	pthread_mutex_unlock(&areas_mu);
	/*
	 * Poisoned when last given up (or made): viona must not have written
	 * since. memcmp, not a byte loop: one range check for the sanitizers.
	 */
	static uint8_t poison[4096];
	memset(poison, POISON, sizeof(poison));
	for (size_t off = 0; off < AREA_LEN; off += sizeof(poison))
		if (memcmp(g->area->hva + off, poison, sizeof(poison))) {
			size_t i = off;
			while (g->area->hva[i] == POISON)
				i++;
			error("guest RAM at 0x%llx was written after the device was reset (use %u)",
			      (unsigned long long)(g->area->gpa + i), g->area->uses);
			break;
		}
	g->area->uses++;
	static const uint16_t sizes[] = { 64, 128, 256 };
	static const unsigned rxbufs[] = { 256, 1024, 2048 };
	uint16_t size = sizes[rand_r(rs) % 3];
	g->mrg = rand_r(rs) & 1;
	g->event_idx = rand_r(rs) & 1;
	g->indirect = rand_r(rs) & 1;
	g->no_intr = rand_r(rs) & 1;
	g->prepost = rand_r(rs) & 1;
	g->tx_mode = (enum tx_mode)(rand_r(rs) % (g->indirect ? 3 : 2));
	g->rx_mode = g->mrg ? RX_MRG : (rand_r(rs) & 1) ? RX_ONE : RX_SPLIT;
	g->rxbuf = rxbufs[rand_r(rs) % 3];
	g->nchains[TXQ] = g->tx_mode == TX_SPLIT ? size / 2u : size;
	g->nchains[RXQ] = g->rx_mode == RX_SPLIT ? size / 2u : size;
	for (unsigned k = 0; k < g->nchains[TXQ]; k++)
		g->tx_free[g->tx_nfree++] = (uint16_t)(g->nchains[TXQ] - 1 - k);

	memset(g->area->hva, 0, RINGS_LEN);
	dq_setup(&g->q[RXQ], g->area, RX_DESC, RX_AVAIL, RX_USED, size);
	dq_setup(&g->q[TXQ], g->area, TX_DESC, TX_AVAIL, TX_USED, size);
	/* Interrupts: not wanted (polling), or wanted rarely; fixed from here on (theory). */
	for (int qi = 0; qi < 2; qi++) {
		g->q[qi].avail->flags = g->no_intr ? VRING_AVAIL_F_NO_INTERRUPT : 0;
		g->q[qi].avail->ring[size] = g->no_intr ? 0xffff : 0;   /* used_event */
	}

	/* The driver's initialization (virtio 1.x 3.1.1). */
	cc_wr(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	cc_wr(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	uint64_t offered = 0;
	for (unsigned s = 0; s < 2; s++) {
		cc_wr(VIRTIO_PCI_COMMON_DFSELECT, 4, s);
		offered |= cc_rd(VIRTIO_PCI_COMMON_DF, 4) << (32 * s);
	}
	uint64_t want = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |
			(g->mrg ? BIT(VIRTIO_NET_F_MRG_RXBUF) : 0) |
			(g->event_idx ? BIT(VIRTIO_RING_F_EVENT_IDX) : 0) |
			(g->indirect ? BIT(VIRTIO_RING_F_INDIRECT_DESC) : 0);
	if ((want & offered) != want)
		error("the device does not offer features 0x%llx",
		      (unsigned long long)(want & ~offered));
	g->features = want & offered;
	for (unsigned s = 0; s < 2; s++) {
		cc_wr(VIRTIO_PCI_COMMON_GFSELECT, 4, s);
		cc_wr(VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(g->features >> (32 * s)));
	}
	uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	cc_wr(VIRTIO_PCI_COMMON_STATUS, 1, st);
	if (!(cc_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK))
		error("FEATURES_OK refused for 0x%llx", (unsigned long long)g->features);
	cc_wr(VIRTIO_PCI_COMMON_MSIX, 2, 2);
	for (unsigned qi = 0; qi < 2; qi++) {
		struct dq *q = &g->q[qi];
		cc_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, qi);
		cc_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
		if (cc_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2) != size)
			error("queue %u: size %u refused", qi, size);
		cc_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, qi);
		cc_wr(VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)q->desc_gpa);
		cc_wr(VIRTIO_PCI_COMMON_Q_DESCHI, 4, (uint32_t)(q->desc_gpa >> 32));
		cc_wr(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)q->avail_gpa);
		cc_wr(VIRTIO_PCI_COMMON_Q_AVAILHI, 4, (uint32_t)(q->avail_gpa >> 32));
		cc_wr(VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)q->used_gpa);
		cc_wr(VIRTIO_PCI_COMMON_Q_USEDHI, 4, (uint32_t)(q->used_gpa >> 32));
		cc_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	}
	/* Receive buffers before DRIVER_OK (found by the first run) or after (kicked). */
	if (g->prepost) {
		for (unsigned k = 0; k < g->nchains[RXQ]; k++)
			rx_post(g, k);
		__atomic_store_n(&g->q[RXQ].avail->idx, g->q[RXQ].avail_idx, __ATOMIC_RELEASE);
	}
	cc_wr(VIRTIO_PCI_COMMON_STATUS, 1, st | VIRTIO_CONFIG_S_DRIVER_OK);
	if (!g->prepost) {
		for (unsigned k = 0; k < g->nchains[RXQ]; k++)
			rx_post(g, k);
		dq_publish(&g->q[RXQ], RXQ);
	}
	st = (uint8_t)cc_rd(VIRTIO_PCI_COMMON_STATUS, 1);
	if (!(st & VIRTIO_CONFIG_S_DRIVER_OK) || (st & VIRTIO_CONFIG_S_NEEDS_RESET))
		error("status 0x%02x after DRIVER_OK", st);
}

/* Reset the device; what it completed before is collected; the place is poisoned. */
static void gen_end(void)
{
	struct gen *g = &cur;
	uint8_t st = (uint8_t)cc_rd(VIRTIO_PCI_COMMON_STATUS, 1);
	if (st & VIRTIO_CONFIG_S_NEEDS_RESET)
		error("the device asked for a reset (status 0x%02x)", st);
	cc_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	if (cc_rd(VIRTIO_PCI_COMMON_STATUS, 1) != 0)
		error("status not 0 after a reset");
	/* The datapath is halted now (viona_stop): the used rings say everything. */
	tx_harvest(g);
	rx_harvest(g, false, true);
	for (unsigned k = 0; k < g->nchains[TXQ]; k++)
		tx_discarded += g->ch[TXQ][k].out;
	memset(g->area->hva, POISON, AREA_LEN);
}

/* ---- the driver's threads and their quiescence for a reset ---- */

static pthread_mutex_t drv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drv_cv = PTHREAD_COND_INITIALIZER;
static bool pause_req;
static int parked;
static atomic_bool stop_drivers, stop_changers, stop_sink, stop_injector;

/* Between batches: park while the resetter works. false: stop. */
static bool drv_checkpoint(void)
{
	pthread_mutex_lock(&drv_mu);
	if (pause_req) {
		parked++;
		pthread_cond_broadcast(&drv_cv);
		while (pause_req)
			pthread_cond_wait(&drv_cv, &drv_mu);
		parked--;
	}
	pthread_mutex_unlock(&drv_mu);
	return !atomic_load(&stop_drivers);
}

static void drivers_pause(void)
{
	pthread_mutex_lock(&drv_mu);
	pause_req = true;
	while (parked < 2)
		pthread_cond_wait(&drv_cv, &drv_mu);
	pthread_mutex_unlock(&drv_mu);
}

static void drivers_resume(void)
{
	pthread_mutex_lock(&drv_mu);
	pause_req = false;
	pthread_cond_broadcast(&drv_cv);
	pthread_mutex_unlock(&drv_mu);
}

static void *tx_thread(void *arg)
{
	unsigned idle = 0;
	while (drv_checkpoint()) {
		tx_harvest(&cur);
		if (tx_fill(&cur, idle >= 100)) {
			idle = 0;
		} else {
			idle++;
			sleep_us(50);
		}
	}
	return NULL;
}

static void *rx_thread(void *arg)
{
	while (drv_checkpoint()) {
		unsigned long before = atomic_load(&rx_packets_seen);
		rx_harvest(&cur, true, false);
		if (atomic_load(&rx_packets_seen) == before)
			sleep_us(50);
	}
	return NULL;
}

static atomic_ulong resets;

static void *resetter(void *arg)
{
	unsigned rs = (unsigned)seed * 7 + 1;
	while (!atomic_load(&stop_changers)) {
		long ms = 100 + rand_r(&rs) % 500;
		for (long t = 0; t < ms && !atomic_load(&stop_changers); t += 10)
			sleep_us(10000);
		if (atomic_load(&stop_changers))
			break;
		drivers_pause();
		gen_end();
		/* Sometimes stay reset a while: map changes then find no lease. */
		if (rand_r(&rs) & 1)
			sleep_us(rand_r(&rs) % 5000);
		gen_start(&rs);
		drivers_resume();
		atomic_fetch_add(&resets, 1);
	}
	return NULL;
}

/* ---- memory-map changes ---- */

static atomic_ulong map_changes;

static bool add_memory(void)
{
	char err[256];
	uint64_t gpa;
	if (vm_add_memory(&vm, HOTMEM_SIZE, &gpa, err, sizeof(err))) {
		error("vm_add_memory: %s", err);
		return false;
	}
	atomic_fetch_add(&map_changes, 1);
	area_add(gpa);   /* a place for a later generation's rings */
	return true;
}

static void *mapper(void *arg)
{
	long seconds = (long)(intptr_t)arg;
	unsigned rs = (unsigned)seed * 13 + 5;
	/* Spread over the time left, not a fixed period: a change may take long (TSan, TCG). */
	uint64_t deadline = now_ms() + (uint64_t)seconds * 1000;
	for (int i = 0; i < MAP_CHANGES && !atomic_load(&stop_changers); i++) {
		uint64_t now = now_ms();
		long left = now < deadline ? (long)(deadline - now) : 0;
		long period_ms = left / (MAP_CHANGES - i + 1);
		long ms = period_ms / 2 + rand_r(&rs) % (period_ms + 1);
		for (long t = 0; t < ms && !atomic_load(&stop_changers); t += 10)
			sleep_us(10000);
		if (!add_memory())
			break;
	}
	return NULL;
}

/* ---- the host side: sink and injector ---- */

static int sink_fd = -1, inject_fd = -1;
static unsigned long sink_frames, sink_other;
static uint8_t *sink_map;
static atomic_ulong injected, inject_errors;

static void *sink_thread(void *arg)
{
	static uint8_t f[65536];
	while (!atomic_load(&stop_sink)) {
		ssize_t n = recv(sink_fd, f, sizeof(f), 0);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				error("sink: recv: %s", strerror(errno));
			continue;
		}
		uint64_t seq;
		int r = frame_check(f, (unsigned)n, tap_mac, guest_mac, ETHERTYPE_TX, "VSTX", TX_MUL,
				    &seq, "transmit (host side)");
		if (r == 0) {
			sink_other++;
			continue;
		}
		if (r < 0)
			continue;
		uint64_t last = atomic_load(&sink_last_seq);
		if (last && seq < last)
			error("transmit: frame %llu after frame %llu (duplicate or reordered)",
			      (unsigned long long)seq, (unsigned long long)(last - 1));
		if (seq < MAX_SEQ)
			bit_set(sink_map, seq);
		atomic_store(&sink_last_seq, seq + 1);
		sink_frames++;
	}
	return NULL;
}

static void *injector(void *arg)
{
	static uint8_t f[MAX_FRAME];
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = tap_ifindex,
				  .sll_halen = 6 };
	memcpy(to.sll_addr, guest_mac, 6);
	uint64_t seq = 0;
	while (!atomic_load(&stop_injector)) {
		/* Not too far ahead of the receiver, but never stuck behind it for long. */
		for (int i = 0; i < 100 && seq >= atomic_load(&rx_last_seq) + RX_WINDOW &&
				!atomic_load(&stop_injector); i++)
			sleep_us(50);
		unsigned len = frame_len(seq, RX_MUL);
		frame_build(f, len, guest_mac, tap_mac, ETHERTYPE_RX, "VSRX", seq);
		if (sendto(inject_fd, f, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len) {
			seq++;
			atomic_fetch_add(&injected, 1);
		} else {
			/* ENOBUFS (queue full) and, at teardown, the TAP without a reader. */
			atomic_fetch_add(&inject_errors, 1);
			sleep_us(200);
		}
	}
	return NULL;
}

static unsigned long softnet_drops(void)
{
	FILE *f = fopen("/proc/net/softnet_stat", "r");
	unsigned long total = 0, processed, dropped;
	if (!f)
		return 0;
	while (fscanf(f, "%lx %lx%*[^\n]", &processed, &dropped) == 2)
		total += dropped;
	fclose(f);
	return total;
}

static int open_sockets(const char *tap)
{
	tap_ifindex = (int)if_nametoindex(tap);
	if (!tap_ifindex) {
		fprintf(stderr, "viona_stress: no interface %s: %s\n", tap, strerror(errno));
		return -1;
	}
	sink_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE_TX));
	/* Protocol 0: the injector receives nothing. */
	inject_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (sink_fd < 0 || inject_fd < 0) {
		fprintf(stderr, "viona_stress: AF_PACKET socket: %s\n", strerror(errno));
		return -1;
	}
	struct sockaddr_ll at = { .sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_TX),
				  .sll_ifindex = tap_ifindex };
	if (bind(sink_fd, (struct sockaddr *)&at, sizeof(at))) {
		fprintf(stderr, "viona_stress: bind to %s: %s\n", tap, strerror(errno));
		return -1;
	}
	int big = 16 << 20;
	if (setsockopt(sink_fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(sink_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct timeval tv = { 0, 100000 };
	setsockopt(sink_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	if (ioctl(sink_fd, SIOCGIFHWADDR, &ifr)) {
		fprintf(stderr, "viona_stress: SIOCGIFHWADDR %s: %s\n", tap, strerror(errno));
		return -1;
	}
	memcpy(tap_mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

/* ---- setup ---- */

static int setup(const char *tap, char *err, size_t errlen)
{
	struct vm_options o = { .name = "viona-stress", .mem_size = MEM_SIZE,
				.allow_emulated_kvm = getenv("KHYVE_TEST_ALLOW_EMULATED") != NULL };
	if (topology_parse("1", &o.topo, err, errlen) || vm_create(&vm, &o, err, errlen))
		return -1;
	uint8_t *code = guest_ptr(GUEST_CODE_GPA, (size_t)(viona_guest_end - viona_guest));
	kb = guest_ptr(KICK_GPA, sizeof(*kb));
	if (!code || !kb)
		return fail_with(err, errlen, "the boot RAM does not translate");
	memcpy(code, viona_guest, (size_t)(viona_guest_end - viona_guest));
	if (x86_enter_long_mode(&vm, &vm.vcpus[0], GUEST_CODE_GPA, 0, BOOT_STACK_GPA, err, errlen))
		return -1;
	if (pci_bus_init(&bus, &vm, err, errlen))
		return -1;
	config_init(&cfg);
	config_set(&cfg, "name", "viona-stress");
	config_set(&cfg, PREFIX ".tap", tap);
	config_set(&cfg, PREFIX ".backend", "user");
	dev = pci_emul_virtio_net.create(&vm, &bus, SLOT, &cfg, PREFIX, err, errlen);
	if (!dev)
		return -1;
	if (!the_viona || strcmp(viona_backend_name(the_viona), "user"))
		return fail_with(err, errlen, "the device's viona was not found, or not on the "
				 "userspace datapath");
	/* Memory decoding on: BAR1 (MSI-X) and BAR4 on the bus, the doorbells hookable. */
	pci_cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	bar1 = pci_cfg_rd(PCI_BAR0 + 4, 4) & ~0xfu;
	bar4 = pci_cfg_rd(PCI_BAR0 + 16, 4) & ~0xfu;
	kb->doorbell[RXQ] = bar4 + NOTIFY + VIRTIO_PCI_NOTIFY_MULT * RXQ;
	kb->doorbell[TXQ] = bar4 + NOTIFY + VIRTIO_PCI_NOTIFY_MULT * TXQ;
	/* MSI-X on, vectors 0-2 to the boot vCPU (interrupts stay off in the guest). */
	for (unsigned v = 0; v < 3; v++) {
		mmio_wr(bar1 + 16 * v, 4, 0xfee00000u);
		mmio_wr(bar1 + 16 * v + 4, 4, 0);
		mmio_wr(bar1 + 16 * v + 8, 4, 0x30 + v);
		mmio_wr(bar1 + 16 * v + 12, 4, 0);
	}
	pci_cfg_wr(MSIX_CAP + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE);
	for (unsigned i = 0; i < 6; i++)
		guest_mac[i] = (uint8_t)mmio_rd(bar4 + DEVICE_CFG + i, 1);
	for (unsigned i = 0; i < 2; i++)
		area_add(BOOT_AREA_GPA(i));
	return 0;
}

/* Wait until *counter has moved by at least delta; false after WAIT_MS. */
static bool wait_progress(atomic_ulong *counter, unsigned long delta)
{
	unsigned long start = atomic_load(counter);
	for (uint64_t t0 = now_ms(); now_ms() - t0 < WAIT_MS; sleep_us(5000))
		if (atomic_load(counter) - start >= delta)
			return true;
	return false;
}

/*
 * Until viona is running on one lease (signed - broken: viona is the VM's
 * only driver) and its counters stay still for 100 ms: a renewal that was
 * under way has finished. false after WAIT_MS.
 */
static bool settle(void)
{
	struct viona_stats a, b;
	struct vmm_drv_stats d;
	viona_get_stats(the_viona, &a);
	for (uint64_t t0 = now_ms(); now_ms() - t0 < WAIT_MS; a = b) {
		sleep_us(100000);
		viona_get_stats(the_viona, &b);
		vmm_drv_get_stats(&vm, &d);
		if (a.running && b.running && a.lease_renewals == b.lease_renewals &&
		    d.leases_signed - d.leases_broken == 1)
			return true;
	}
	return false;
}

/* What the driver and the device look like, when progress stopped. */
static void dump_state(const char *why)
{
	struct gen *g = &cur;
	struct viona_stats vs;
	struct viona_user_counters c;
	viona_get_stats(the_viona, &vs);
	viona_user_counters(the_viona, &c);
	printf("state (%s): generation area 0x%llx, ring size %u, mrg %d, event_idx %d, "
	       "indirect %d, no_intr %d, prepost %d, tx mode %d, rx mode %d, rx buffer %u\n", why,
	       (unsigned long long)g->area->gpa, g->q[RXQ].size, g->mrg, g->event_idx,
	       g->indirect, g->no_intr, g->prepost, g->tx_mode, g->rx_mode, g->rxbuf);
	for (unsigned qi = 0; qi < 2; qi++)
		/* Not used->flags: the device writes it as plain memory (theory). */
		printf("  queue %u: avail idx %u, used idx %u (driver at %u)\n", qi,
		       g->q[qi].avail_idx, dq_used_idx(&g->q[qi]), g->q[qi].last_used);
	printf("  viona: running %d, renewals %lu, ring errors %lu; rx %lu packets %lu drops, tx "
	       "%lu packets; device status 0x%02x\n", vs.running, vs.lease_renewals, vs.ring_errors,
	       c.rx_packets, c.rx_drops, c.tx_packets, (unsigned)cc_rd(VIRTIO_PCI_COMMON_STATUS, 1));
	printf("  doorbells: req %u/%u, rang %u/%u, %lu while unhooked; injected %lu (%lu send "
	       "errors)\n", __atomic_load_n(&kb->req[RXQ], __ATOMIC_RELAXED),
	       __atomic_load_n(&kb->req[TXQ], __ATOMIC_RELAXED),
	       __atomic_load_n(&kb->rang[RXQ], __ATOMIC_RELAXED),
	       __atomic_load_n(&kb->rang[TXQ], __ATOMIC_RELAXED), atomic_load(&unhooked_rings),
	       atomic_load(&injected), atomic_load(&inject_errors));
}

static unsigned long viona_rx_packets(void)
{
	struct viona_user_counters c;
	viona_user_counters(the_viona, &c);
	return c.rx_packets;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: viona_stress TAP SECONDS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	long seconds = atol(argv[2]);
	const char *s = getenv("VIONA_STRESS_SEED");
	seed = s ? strtoul(s, NULL, 0) : (unsigned long)time(NULL);
	printf("seed %lu (VIONA_STRESS_SEED reproduces the configurations)\n", seed);
	char err[512] = "";
	tx_done_map = bitmap_new();
	sink_map = bitmap_new();
	if (open_sockets(argv[1]) || setup(argv[1], err, sizeof(err))) {
		if (!err[0])
			snprintf(err, sizeof(err), "setup failed");
		fprintf(stderr, "viona_stress: %s\n", err);
		return 1;
	}
	unsigned long softnet0 = softnet_drops();
	unsigned rs = (unsigned)seed;
	gen_start(&rs);

	pthread_t vcpu_t, tx_t, rx_t, sink_t, inj_t, map_t, reset_t;
	pthread_create(&vcpu_t, NULL, vcpu_thread, NULL);
	pthread_create(&sink_t, NULL, sink_thread, NULL);
	pthread_create(&inj_t, NULL, injector, NULL);
	pthread_create(&tx_t, NULL, tx_thread, NULL);
	pthread_create(&rx_t, NULL, rx_thread, NULL);
	pthread_create(&map_t, NULL, mapper, (void *)(intptr_t)seconds);
	pthread_create(&reset_t, NULL, resetter, NULL);
	sleep_us(seconds * 1000000);
	atomic_store(&stop_changers, true);
	pthread_join(map_t, NULL);
	pthread_join(reset_t, NULL);
	/* The last change's renewal may still be under way: count from a settled state. */
	bool settled = settle();
	check(settled, "viona did not settle after the random phase");
	struct viona_stats vs0;
	viona_get_stats(the_viona, &vs0);
	unsigned long random_changes = atomic_load(&map_changes);
	printf("random phase: %lu map changes, %lu resets, %lu lease renewals\n", random_changes,
	       atomic_load(&resets), vs0.lease_renewals);
	check(random_changes >= MAP_CHANGES / 2, "only %lu map changes", random_changes);
	check(atomic_load(&resets) >= 3, "only %lu resets", atomic_load(&resets));
	check(vs0.lease_renewals >= 1 && vs0.lease_renewals <= random_changes,
	      "%lu lease renewals for %lu map changes", vs0.lease_renewals, random_changes);

	/*
	 * One change at a time: each must be followed by exactly one renewal
	 * (the device runs, so it holds the lease the change expires) and by
	 * frames moving both ways again.
	 */
	for (int i = 0; settled && i < EXACT_CHANGES; i++) {
		struct viona_stats a, b;
		viona_get_stats(the_viona, &a);
		if (!add_memory())
			break;
		uint64_t t0 = now_ms();
		do {
			sleep_us(2000);
			viona_get_stats(the_viona, &b);
		} while ((b.lease_renewals == a.lease_renewals || !b.running) && now_ms() - t0 < WAIT_MS);
		int before = failures;
		check(a.running && b.running && b.lease_renewals == a.lease_renewals + 1,
		      "map change %d: renewals %lu -> %lu, running %d -> %d", i, a.lease_renewals,
		      b.lease_renewals, a.running, b.running);
		check(wait_progress(&tx_completed, 50), "map change %d: transmit did not resume", i);
		check(wait_progress(&rx_packets_seen, 20), "map change %d: receive did not resume", i);
		if (failures > before) {
			/* Each wait is long: fail now rather than look like a hang. */
			dump_state("after a map change");
			break;
		}
	}
	struct viona_stats vs;
	viona_get_stats(the_viona, &vs);
	check(vs.lease_renewals == vs0.lease_renewals + EXACT_CHANGES,
	      "%lu renewals after %d waited-for map changes (were %lu)", vs.lease_renewals,
	      EXACT_CHANGES, vs0.lease_renewals);

	/* The driver's threads stop; a last reset makes the device's account final. */
	atomic_store(&stop_drivers, true);
	pthread_join(tx_t, NULL);
	pthread_join(rx_t, NULL);
	gen_end();
	sleep_us(300000);   /* the sink drains what the TAP delivered */
	atomic_store(&stop_sink, true);
	pthread_join(sink_t, NULL);
	struct viona_user_counters c;
	viona_user_counters(the_viona, &c);
	viona_get_stats(the_viona, &vs);
	struct tpacket_stats ps = { 0 };
	socklen_t psl = sizeof(ps);
	getsockopt(sink_fd, SOL_PACKET, PACKET_STATISTICS, &ps, &psl);
	unsigned long softnet = softnet_drops() - softnet0;

	unsigned long missing = 0, unsent = 0;
	for (uint64_t q = 0; q < tx_next_seq && q < MAX_SEQ; q++) {
		bool done = bit_get(tx_done_map, q), seen = bit_get(sink_map, q);
		missing += done && !seen;
		unsent += seen && !done;
	}
	printf("transmit: %lu posted, %lu completed (%lu bytes), %lu discarded by resets; "
	       "viona: %lu packets, %lu bytes, %lu drops\n", tx_posted,
	       atomic_load(&tx_completed), tx_completed_bytes, tx_discarded, c.tx_packets,
	       c.tx_bytes, c.tx_drops);
	printf("host sink: %lu frames (%lu others), %lu completed frames not seen, socket drops "
	       "%u, softnet drops %lu\n", sink_frames, sink_other, missing, ps.tp_drops, softnet);
	printf("receive: %lu injected (%lu send errors), %lu packets seen (%lu test frames, %lu "
	       "others, %lu bytes, up to %lu buffers); viona: %lu packets, %lu bytes, %lu drops\n",
	       atomic_load(&injected), atomic_load(&inject_errors), atomic_load(&rx_packets_seen),
	       rx_test_frames, rx_other_frames, rx_bytes_seen, rx_max_buffers, c.rx_packets,
	       c.rx_bytes, c.rx_drops);
	printf("doorbells rung: %u receive, %u transmit (%lu while unhooked); viona: %lu lease "
	       "renewals, %lu ring errors\n", __atomic_load_n(&kb->rang[RXQ], __ATOMIC_RELAXED),
	       __atomic_load_n(&kb->rang[TXQ], __ATOMIC_RELAXED), atomic_load(&unhooked_rings),
	       vs.lease_renewals, vs.ring_errors);
	struct vmm_drv_stats ds;
	vmm_drv_get_stats(&vm, &ds);
	printf("interface: %lu leases signed, %lu broken, %lu map changes, %lu expiries\n",
	       ds.leases_signed, ds.leases_broken, ds.map_changes, ds.lease_expiries);

	/* What the device did is what the driver saw, exactly. */
	check(c.tx_packets + c.tx_drops == atomic_load(&tx_completed),
	      "viona transmitted %lu (+%lu dropped), the driver saw %lu completed", c.tx_packets,
	      c.tx_drops, atomic_load(&tx_completed));
	check(c.tx_drops == 0, "%lu well-formed transmit frames dropped", c.tx_drops);
	check(c.tx_bytes == tx_completed_bytes, "viona transmitted %lu bytes, the driver %lu",
	      c.tx_bytes, tx_completed_bytes);
	check(tx_posted == atomic_load(&tx_completed) + tx_discarded,
	      "%lu posted != %lu completed + %lu discarded", tx_posted, atomic_load(&tx_completed),
	      tx_discarded);
	check(c.rx_packets == atomic_load(&rx_packets_seen),
	      "viona received %lu packets, the driver saw %lu", c.rx_packets,
	      atomic_load(&rx_packets_seen));
	check(c.rx_bytes == rx_bytes_seen, "viona received %lu bytes, the driver saw %lu",
	      c.rx_bytes, rx_bytes_seen);
	check(rx_test_frames <= atomic_load(&injected), "more frames received than injected");
	/* Only frames the device completed left it; what the host lost it says it lost. */
	check(unsent == 0, "%lu frames reached the host that the device never completed", unsent);
	check(missing <= ps.tp_drops + softnet,
	      "%lu completed frames never reached the host (it dropped %u + %lu)", missing,
	      ps.tp_drops, softnet);
	check(vs.ring_errors == 0, "%lu ring errors", vs.ring_errors);
	check(atomic_load(&tx_completed) > 0 && rx_test_frames > 0 && sink_frames > 0,
	      "no traffic");

	/*
	 * After the last reset: a new generation receives; then teardown with
	 * it running. Counted from before DRIVER_OK: with pre-posted buffers
	 * the TAP's backlog may fill all of them at once, and then no more come.
	 */
	unsigned long rx0 = viona_rx_packets();
	gen_start(&rs);
	uint64_t t0 = now_ms();
	while (viona_rx_packets() == rx0 && now_ms() - t0 < WAIT_MS)
		sleep_us(5000);
	check(viona_rx_packets() > rx0, "nothing received after the last reset");
	if (viona_rx_packets() == rx0)
		dump_state("after the last reset");
	__atomic_store_n(&kb->stop, 1, __ATOMIC_RELEASE);
	pthread_join(vcpu_t, NULL);
	vm_destroy(&vm);   /* viona lets go of its hold with the datapath running */
	pci_emul_virtio_net.destroy(dev);
	atomic_store(&stop_injector, true);
	pthread_join(inj_t, NULL);
	pci_bus_free(&bus);
	config_free(&cfg);
	close(sink_fd);
	close(inject_fd);
	free(tx_done_map);
	free(sink_map);
	unsigned long e = atomic_load(&errors);
	printf("viona_stress: %d failed checks, %lu errors\n", failures, e);
	return failures == 0 && e == 0 ? 0 : 1;
}
