/*
 * vq-cycle: one round trip of a buffer through khyve's device side of a
 * split virtqueue (virtqueue.c), N times, for valgrind --tool=callgrind to
 * count the instructions: the driver side (this program, playing the guest)
 * makes a chain available, the device side pops it (every descriptor read
 * once, bounds- and RAM-checked, translated), pushes it used, publishes and
 * decides whether the guest wants an interrupt. It is the per-packet (or
 * per-request) cost every virtio device in khyve pays on top of moving the
 * bytes: viona's userspace datapath, virtio-blk. Only the device side is
 * counted (callgrind --toggle-collect=bench_vq_DEVICE... see callgrind.sh).
 *
 *   vq-cycle SCENARIO N
 *     tx2        a 2-descriptor readable chain (virtio-net header + frame)
 *     rx1_event  a 1-descriptor writable buffer, EVENT_IDX interrupt test
 *     indirect4  an indirect table of 4 descriptors (virtio-blk: header,
 *                two data segments, status)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtqueue.h"

#define QSIZE 256u
#define RAM_SIZE (1u << 20)
#define DESC_GPA 0x1000u
#define AVAIL_GPA 0x3000u
#define USED_GPA 0x4000u
#define INDIRECT_GPA 0x8000u
#define DATA_GPA 0x10000u

static uint8_t *ram;

static void *translate(void *arg, uint64_t gpa, uint64_t len)
{
	(void)arg;
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return ram + gpa;
}

static struct vring_desc *desc_table(uint64_t gpa)
{
	return (struct vring_desc *)(ram + gpa);
}

/* Not static: callgrind counts from here. */
void bench_vq_device(struct virtqueue *vq, struct iovec *iov, unsigned *interrupts);

#define NOINLINE __attribute__((noinline, noclone, used))

/* The device's half of one round trip: what is counted. */
NOINLINE void bench_vq_device(struct virtqueue *vq, struct iovec *iov, unsigned *interrupts)
{
	struct vq_chain c;
	if (vq_pop(vq, &c, iov, 16) != 1) {
		fprintf(stderr, "vq-cycle: pop failed: %s\n", vq->broken ? vq->broken : "empty");
		exit(1);
	}
	vq_push(vq, c.head, (uint32_t)c.in_len);
	if (vq_should_interrupt(vq))
		(*interrupts)++;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: vq-cycle tx2|rx1_event|indirect4 N\n");
		return 2;
	}
	const char *s = argv[1];
	long n = atol(argv[2]);
	ram = aligned_alloc(4096, RAM_SIZE);
	if (!ram || n <= 0)
		return 2;
	memset(ram, 0, RAM_SIZE);
	struct virtqueue vq = { .size = QSIZE, .desc_gpa = DESC_GPA, .avail_gpa = AVAIL_GPA,
				.used_gpa = USED_GPA, .translate = translate };
	bool indirect = strcmp(s, "indirect4") == 0;
	vq.event_idx = strcmp(s, "rx1_event") == 0;
	vq.indirect = indirect;
	if (strcmp(s, "tx2") && !vq.event_idx && !indirect) {
		fprintf(stderr, "vq-cycle: unknown scenario %s\n", s);
		return 2;
	}
	if (vq_attach(&vq))
		return 1;
	struct vring_desc *d = desc_table(DESC_GPA);
	struct vring_avail *avail = (struct vring_avail *)(ram + AVAIL_GPA);
	/* One chain at head 0, made available again and again. */
	if (indirect) {
		struct vring_desc *t = desc_table(INDIRECT_GPA);
		t[0] = (struct vring_desc){ DATA_GPA, 16, VRING_DESC_F_NEXT, 1 };
		t[1] = (struct vring_desc){ DATA_GPA + 0x1000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
		t[2] = (struct vring_desc){ DATA_GPA + 0x2000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3 };
		t[3] = (struct vring_desc){ DATA_GPA + 0x3000, 1, VRING_DESC_F_WRITE, 0 };
		d[0] = (struct vring_desc){ INDIRECT_GPA, 4 * 16, VRING_DESC_F_INDIRECT, 0 };
	} else if (vq.event_idx) {
		d[0] = (struct vring_desc){ DATA_GPA, 1526, VRING_DESC_F_WRITE, 0 };
	} else {
		d[0] = (struct vring_desc){ DATA_GPA, 12, VRING_DESC_F_NEXT, 1 };
		d[1] = (struct vring_desc){ DATA_GPA + 0x100, 1514, 0, 0 };
	}
	struct iovec iov[16];
	unsigned interrupts = 0;
	for (long i = 0; i < n; i++) {
		/* The guest: the chain into the avail ring, then the index (what a driver does). */
		avail->ring[avail->idx % QSIZE] = 0;
		avail->ring[QSIZE] = (uint16_t)(avail->idx);   /* used_event: interrupt each time */
		__atomic_store_n(&avail->idx, (uint16_t)(avail->idx + 1), __ATOMIC_RELEASE);
		bench_vq_device(&vq, iov, &interrupts);
	}
	printf("vq-cycle %s: %ld round trips, %u interrupts\n", s, n, interrupts);
	free(ram);
	return 0;
}
