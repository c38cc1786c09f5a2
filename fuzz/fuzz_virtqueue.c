/*
 * Fuzz target: the hardened split virtqueue (src/virtqueue.c) against a
 * driver that writes anything. The input lays out a fake guest RAM (rings,
 * descriptors, indirect tables: whatever bytes the fuzzer chose) and then
 * plays a sequence of driver and device actions on it: pops (each chain
 * pushed back), the driver offering more chains or changing a byte of RAM
 * between pops (as a racing guest would), notification toggles, interrupt
 * decisions, device resets.
 *
 * Input: an 8-byte header, the RAM image, then 4-byte action records.
 *   [0]     bits 0-3: log2 of the queue size (0-15: 1 to 32768; sizes
 *           whose rings do not fit the RAM simply fail to attach);
 *           bit 4 INDIRECT_DESC, bit 5 EVENT_IDX negotiated
 *   [1]     iovecs the device offers a chain (1-64)
 *   [2..7]  descriptor table, avail and used ring offsets from RAM's start
 *           (LE16 each; they may be misaligned or run past RAM)
 *   [8..9]  n: LE16 length of the RAM image, then n bytes copied to RAM
 *   then    [op][a][b][c] records, op % 8:
 *           0 pop one chain   1 pop until empty or broken   2 avail->idx += a
 *           3 RAM[a | b << 8] = c   4 disable notify (c odd) or enable
 *           5 should_interrupt   6 detach and re-attach (a map change)
 *           7 reset (the driver reset the device) and re-attach
 *   and finally one more "pop until empty or broken".
 *
 * Invariants: every iovec the queue returns lies inside the fake RAM (a
 * heap block of exactly its size, so ASan also sees any stray access, and
 * the device side touches every byte it was given); a chain has at most the
 * offered iovecs, no empty one, lengths that add up, a head inside the
 * table and at most 4 GiB in all; a broken queue has a reason and takes
 * nothing until reset; a queue that is not attached takes nothing.
 */
#include "fuzz.h"

#include "virtqueue.h"

#define RAM_GPA 0x1000ull
#define RAM_SIZE 0x2000u
#define MAX_IOV 64
#define MAX_POPS 1024   /* bounds one "pop until empty" (the ring can be refilled forever) */

static uint8_t *ram;

static void *translate(void *arg, uint64_t gpa, uint64_t len)
{
	(void)arg;
	if (gpa < RAM_GPA || len > RAM_SIZE || gpa - RAM_GPA > RAM_SIZE - len)
		return NULL;
	return ram + (gpa - RAM_GPA);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* One pop; the chain is checked, its buffers used as a device would, and pushed back. */
static int pop_one(struct virtqueue *vq, unsigned max_iov)
{
	struct iovec iov[MAX_IOV];
	struct vq_chain c;
	bool was_broken = vq->broken != NULL, attached = vq->avail != NULL;
	int r = vq_pop(vq, &c, iov, max_iov);
	FUZZ_CHECK(r >= -1 && r <= 1);
	if (r < 0)
		FUZZ_CHECK(vq->broken != NULL);
	if (was_broken || !attached)
		FUZZ_CHECK(r == -1);
	if (r != 1)
		return r;
	FUZZ_CHECK(c.head < vq->size);
	FUZZ_CHECK(c.iov == iov && c.nout + c.nin <= max_iov);
	uint64_t out = 0, in = 0;
	for (unsigned k = 0; k < c.nout + c.nin; k++) {
		uint8_t *p = iov[k].iov_base;
		FUZZ_CHECK(iov[k].iov_len > 0);
		FUZZ_CHECK(p >= ram && p < ram + RAM_SIZE && iov[k].iov_len <= RAM_SIZE &&
			   (size_t)(p - ram) <= RAM_SIZE - iov[k].iov_len);
		if (k < c.nout) {
			out += iov[k].iov_len;
			volatile uint8_t sink = 0;
			for (size_t j = 0; j < iov[k].iov_len; j++)
				sink ^= p[j];
			(void)sink;
		} else {
			in += iov[k].iov_len;
			memset(p, 0x5a, iov[k].iov_len);   /* the device's reply over the rings, even */
		}
	}
	FUZZ_CHECK(out == c.out_len && in == c.in_len && out + in <= 0xffffffffull);
	vq_push(vq, c.head, (uint32_t)c.in_len);
	return 1;
}

static void drain(struct virtqueue *vq, unsigned max_iov)
{
	for (int i = 0; i < MAX_POPS && pop_one(vq, max_iov) == 1; i++)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 10)
		return 0;
	ram = calloc(1, RAM_SIZE);
	if (!ram)
		abort();
	struct virtqueue vq;
	memset(&vq, 0, sizeof(vq));
	vq.size = (uint16_t)(1u << (data[0] & 15));
	vq.indirect = data[0] & 0x10;
	vq.event_idx = data[0] & 0x20;
	unsigned max_iov = data[1] % MAX_IOV + 1;
	vq.desc_gpa = RAM_GPA + le16(data + 2);
	vq.avail_gpa = RAM_GPA + le16(data + 4);
	vq.used_gpa = RAM_GPA + le16(data + 6);
	vq.translate = translate;
	size_t n = le16(data + 8), at = 10;
	if (n > size - at)
		n = size - at;
	memcpy(ram, data + at, n < RAM_SIZE ? n : RAM_SIZE);
	at += n;

	vq_reset(&vq);
	if (vq_attach(&vq) < 0)
		FUZZ_CHECK(vq.broken && !vq.desc && !vq.avail && !vq.used);
	for (; at + 4 <= size; at += 4) {
		uint8_t op = data[at], a = data[at + 1], b = data[at + 2], c = data[at + 3];
		switch (op % 8) {
		case 0: pop_one(&vq, max_iov); break;
		case 1: drain(&vq, max_iov); break;
		case 2:
			if (vq.avail)
				vq.avail->idx = (uint16_t)(vq.avail->idx + a);
			break;
		case 3: ram[(a | b << 8) % RAM_SIZE] = c; break;
		case 4:
			if (c & 1)
				vq_disable_notify(&vq);
			else
				(void)vq_enable_notify(&vq);
			break;
		case 5: (void)vq_should_interrupt(&vq); break;
		case 6:
			vq_detach(&vq);
			FUZZ_CHECK(!vq_has_work(&vq));
			(void)vq_attach(&vq);
			break;
		case 7:
			vq_reset(&vq);
			FUZZ_CHECK(!vq.broken && vq.last_avail == 0 && vq.used_idx == 0);
			(void)vq_attach(&vq);
			break;
		}
		if (vq.broken)
			FUZZ_CHECK(!vq_has_work(&vq));
	}
	drain(&vq, max_iov);
	free(ram);
	ram = NULL;
	return 0;
}
