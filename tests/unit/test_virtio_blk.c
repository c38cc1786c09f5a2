/*
 * Unit tests for the virtio-blk device model (src/pci_virtio_blk.c) without
 * KVM: a VM object with 1 MiB of fake RAM at guest-physical 0, the device
 * created as machine.c does (pci_emul_virtio_blk on a config prefix) over a
 * temporary image file, and a minimal driver in the test that negotiates,
 * lays out one queue in the fake RAM, submits requests and rings the
 * doorbell through the MMIO bus. Checked: reads and writes land in the file
 * and in guest memory, FLUSH, GET_ID, DISCARD; bad requests get IOERR or
 * UNSUPP and the device carries on; a read-only disk refuses writes; a
 * protocol violation sets NEEDS_RESET and stops the queue until reset;
 * configuration errors name their key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest_mmio.h"

#include "config.h"
#include "mmio.h"
#include "pci.h"
#include "pci_emul.h"
#include "virtio_pci.h"
#include "virtqueue.h"
#include "vm.h"
#include "vm_lock.h"

#define SLOT 4
#define PCICFG(reg) (0x80000000u | SLOT << 11 | ((reg) & 0xfc))
#define BAR4 (0xc0000000ull + SLOT * 0x100000ull + 0x10000)
#define COMMON BAR4
#define ISR (BAR4 + 0x1000)
#define DEVCFG (BAR4 + 0x2000)
#define NOTIFY (BAR4 + 0x3000)
#define QSIZE 16
#define DESC_GPA 0x10000
#define AVAIL_GPA 0x11000
#define USED_GPA 0x12000
#define HDR_GPA 0x20000
#define DATA_GPA 0x30000
#define STATUS_GPA 0x28000
#define DISK_SECTORS 64

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

static uint8_t ram[1 << 20] __attribute__((aligned(4096)));
static struct mem_segment seg = { .gpa = 0, .len = sizeof(ram), .hva = ram };

struct rig {
	struct vm vm;
	struct pci_bus bus;
	struct config cfg;
	char path[64];
	int fd;
	void *dev;
	uint16_t avail_idx, used_seen;
};

static void rig_vm(struct rig *r)
{
	char err[256];
	memset(r, 0, sizeof(*r));
	memset(ram, 0, sizeof(ram));
	r->vm.kvm_fd = r->vm.vm_fd = r->vm.stop_eventfd = -1;
	r->vm.mem = (struct memmap){ .segs = &seg, .nsegs = 1 };
	vm_lock_init(&r->vm);
	ioport_bus_init(&r->vm.io);
	mmio_bus_init(&r->vm.mmio);
	assert_int_equal(pci_bus_init(&r->bus, &r->vm, err, sizeof(err)), 0);
	config_init(&r->cfg);
	strcpy(r->path, "/tmp/blk-test-XXXXXX");
	r->fd = mkstemp(r->path);
	assert_true(r->fd >= 0);
	/* A recognizable image: sector s is filled with the byte s. */
	for (int s = 0; s < DISK_SECTORS; s++) {
		uint8_t sec[512];
		memset(sec, s, sizeof(sec));
		assert_int_equal(pwrite(r->fd, sec, 512, 512 * s), 512);
	}
	config_set(&r->cfg, "pci.0.4.0.path", r->path);
}

static uint64_t features(struct rig *r)
{
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	uint64_t f = guest_mmio_read(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DF, 4);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	return f | guest_mmio_read(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* The driver's start-up: everything offered accepted, one queue, DRIVER_OK. */
static void driver_start(struct rig *r)
{
	uint64_t f = features(r);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 3);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4, f >> 32);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 11);
	assert_int_equal(guest_mmio_read(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1), 11);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_DESCLO, 4, DESC_GPA);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_AVAILLO, 4, AVAIL_GPA);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_USEDLO, 4, USED_GPA);
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	memset(ram + DESC_GPA, 0, 0x3000);
	r->avail_idx = r->used_seen = 0;
	guest_mmio_write(&r->vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 15);
}

static void rig_up(struct rig *r, bool ro)
{
	char err[256];
	rig_vm(r);
	if (ro)
		config_set(&r->cfg, "pci.0.4.0.ro", "true");
	r->dev = pci_emul_virtio_blk.create(&r->vm, &r->bus, SLOT, &r->cfg, "pci.0.4.0", err,
					    sizeof(err));
	if (!r->dev)
		fail_msg("create: %s", err);
	pci_bus_cfg_write(&r->bus, PCICFG(PCI_COMMAND), 0, 2, 2);
	driver_start(r);
}

static void rig_down(struct rig *r)
{
	if (r->dev)
		pci_emul_virtio_blk.destroy(r->dev);
	pci_bus_free(&r->bus);
	mmio_bus_free(&r->vm.mmio);
	ioport_bus_free(&r->vm.io);
	vm_lock_destroy(&r->vm);
	config_free(&r->cfg);
	close(r->fd);
	unlink(r->path);
}

static struct vring_desc *desc(unsigned i)
{
	return (struct vring_desc *)(ram + DESC_GPA) + i;
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	*desc(i) = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void header(uint32_t type, uint64_t sector)
{
	memcpy(ram + HDR_GPA, &type, 4);
	memset(ram + HDR_GPA + 4, 0, 4);
	memcpy(ram + HDR_GPA + 8, &sector, 8);
}

/* Offer chain `head` and ring the doorbell; returns the used element's length. */
static uint32_t submit(struct rig *r, uint16_t head)
{
	struct vring_avail *a = (void *)(ram + AVAIL_GPA);
	struct vring_used *u = (void *)(ram + USED_GPA);
	a->ring[r->avail_idx % QSIZE] = head;
	a->idx = ++r->avail_idx;
	ram[STATUS_GPA] = 0xee;
	guest_mmio_write(&r->vm.mmio, NOTIFY, 2, 0);
	assert_int_equal(u->idx, (uint16_t)(r->used_seen + 1));
	struct vring_used_elem e = u->ring[r->used_seen % QSIZE];
	r->used_seen++;
	assert_int_equal(e.id, head);
	return e.len;
}

/* header, data (readable or writable), status: a classic three-descriptor request. */
static uint8_t request(struct rig *r, uint32_t type, uint64_t sector, uint32_t data_len,
		       bool data_writable, uint32_t *used_len)
{
	header(type, sector);
	uint16_t dflags = VRING_DESC_F_NEXT | (data_writable ? VRING_DESC_F_WRITE : 0);
	set_desc(0, HDR_GPA, 16, VRING_DESC_F_NEXT, data_len ? 1 : 2);
	set_desc(1, DATA_GPA, data_len, dflags, 2);
	set_desc(2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	uint32_t len = submit(r, 0);
	if (used_len)
		*used_len = len;
	return ram[STATUS_GPA];
}

static uint8_t file_byte(struct rig *r, off_t off)
{
	uint8_t b = 0xff;
	assert_int_equal(pread(r->fd, &b, 1, off), 1);
	return b;
}

static void test_config_and_features(void **state)
{
	struct rig r;
	rig_up(&r, false);
	uint64_t f = features(&r);
	assert_true(f & 1ull << 2);    /* SEG_MAX */
	assert_true(f & 1ull << 6);    /* BLK_SIZE */
	assert_true(f & 1ull << 9);    /* FLUSH */
	assert_true(f & 1ull << 13);   /* DISCARD */
	assert_false(f & 1ull << 5);   /* not RO */
	assert_true(f & 1ull << VIRTIO_RING_F_INDIRECT_DESC);
	assert_true(f & 1ull << VIRTIO_RING_F_EVENT_IDX);
	assert_true(f & 1ull << VIRTIO_F_VERSION_1);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, DEVCFG, 8), DISK_SECTORS);
	assert_int_equal(guest_mmio_read(&r.vm.mmio, DEVCFG + 20, 4), 512);
	assert_true(guest_mmio_read(&r.vm.mmio, DEVCFG + 12, 4) >= 1);
	assert_true(guest_mmio_read(&r.vm.mmio, DEVCFG + 40, 4) >= 1);   /* max_discard_seg */
	rig_down(&r);

	rig_up(&r, true);
	f = features(&r);
	assert_true(f & 1ull << 5);
	assert_false(f & 1ull << 13);
	rig_down(&r);
}

static void test_read_write_flush_id(void **state)
{
	struct rig r;
	uint32_t used;
	rig_up(&r, false);
	/* Read sectors 3-4 into guest memory. */
	assert_int_equal(request(&r, T_IN, 3, 1024, true, &used), S_OK);
	assert_int_equal(used, 1025);
	assert_int_equal(ram[DATA_GPA], 3);
	assert_int_equal(ram[DATA_GPA + 1023], 4);
	/* Write sector 10 from guest memory. */
	memset(ram + DATA_GPA, 0xab, 512);
	assert_int_equal(request(&r, T_OUT, 10, 512, false, &used), S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(file_byte(&r, 10 * 512), 0xab);
	assert_int_equal(file_byte(&r, 10 * 512 + 511), 0xab);
	assert_int_equal(file_byte(&r, 11 * 512), 11);
	/* The last sector is reachable, one past it is not. */
	assert_int_equal(request(&r, T_IN, DISK_SECTORS - 1, 512, true, NULL), S_OK);
	assert_int_equal(request(&r, T_IN, DISK_SECTORS - 1, 1024, true, NULL), S_IOERR);
	assert_int_equal(request(&r, T_OUT, DISK_SECTORS, 512, false, NULL), S_IOERR);
	assert_int_equal(request(&r, T_IN, UINT64_MAX, 512, true, NULL), S_IOERR);
	assert_int_equal(request(&r, T_IN, UINT64_MAX / 512 + 1, 512, true, NULL), S_IOERR);
	/* Not whole sectors. */
	assert_int_equal(request(&r, T_IN, 0, 100, true, NULL), S_IOERR);
	/* FLUSH, GET_ID (the file name, up to 20 bytes). */
	assert_int_equal(request(&r, T_FLUSH, 0, 0, false, &used), S_OK);
	assert_int_equal(used, 1);
	memset(ram + DATA_GPA, 0, 64);
	assert_int_equal(request(&r, T_GET_ID, 0, 20, true, &used), S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(ram + DATA_GPA, strrchr(r.path, '/') + 1, strlen(strrchr(r.path, '/') + 1));
	assert_int_equal(request(&r, T_GET_ID, 0, 4, true, &used), S_OK);
	assert_int_equal(used, 5);
	/* Unknown types. */
	assert_int_equal(request(&r, 99, 0, 0, false, NULL), S_UNSUPP);
	assert_int_equal(request(&r, 13, 0, 0, false, NULL), S_UNSUPP);   /* WRITE_ZEROES: not offered */

	/* Data and status in one writable descriptor, split buffers, through an indirect table. */
	struct vring_desc *t = (struct vring_desc *)(ram + 0x40000);
	header(T_IN, 20);
	t[0] = (struct vring_desc){ HDR_GPA, 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ DATA_GPA, 100, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	t[2] = (struct vring_desc){ DATA_GPA + 0x1000, 413, VRING_DESC_F_WRITE, 0 };
	set_desc(5, 0x40000, 48, VRING_DESC_F_INDIRECT, 0);
	memset(ram + DATA_GPA + 0x1000, 0xee, 413);
	assert_int_equal(submit(&r, 5), 513);
	assert_int_equal(ram[DATA_GPA + 99], 20);
	assert_int_equal(ram[DATA_GPA + 0x1000 + 411], 20);
	assert_int_equal(ram[DATA_GPA + 0x1000 + 412], S_OK);
	rig_down(&r);
}

struct discard_seg { uint64_t sector; uint32_t num, flags; };

static void test_discard(void **state)
{
	struct rig r;
	rig_up(&r, false);
	struct discard_seg seg[2] = { { 5, 2, 0 }, { 30, 1, 0 } };
	memcpy(ram + DATA_GPA, seg, sizeof(seg));
	uint8_t s = request(&r, T_DISCARD, 0, sizeof(seg), false, NULL);
	if (s == S_UNSUPP) {
		/* The file system under /tmp cannot punch holes: only the answer is checked. */
		rig_down(&r);
		return;
	}
	assert_int_equal(s, S_OK);
	assert_int_equal(file_byte(&r, 5 * 512), 0);
	assert_int_equal(file_byte(&r, 7 * 512 - 1), 0);
	assert_int_equal(file_byte(&r, 7 * 512), 7);
	assert_int_equal(file_byte(&r, 30 * 512), 0);
	/* Out of range, the unmap flag, a ragged length: refused, nothing punched. */
	seg[0] = (struct discard_seg){ DISK_SECTORS - 1, 2, 0 };
	memcpy(ram + DATA_GPA, seg, sizeof(seg));
	assert_int_equal(request(&r, T_DISCARD, 0, 16, false, NULL), S_IOERR);
	seg[0] = (struct discard_seg){ 40, 1, 1 };
	memcpy(ram + DATA_GPA, seg, sizeof(seg));
	assert_int_equal(request(&r, T_DISCARD, 0, 16, false, NULL), S_UNSUPP);
	assert_int_equal(file_byte(&r, 40 * 512), 40);
	assert_int_equal(request(&r, T_DISCARD, 0, 24, false, NULL), S_IOERR);
	rig_down(&r);
}

static void test_bad_requests_keep_device_working(void **state)
{
	struct rig r;
	uint32_t used;
	rig_up(&r, false);
	/* Header shorter than 16 bytes. */
	header(T_IN, 0);
	set_desc(0, HDR_GPA, 8, VRING_DESC_F_NEXT, 2);
	set_desc(2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	assert_int_equal(submit(&r, 0), 1);
	assert_int_equal(ram[STATUS_GPA], S_IOERR);
	/* No writable byte at all: returned untouched, length 0. */
	set_desc(0, HDR_GPA, 16, 0, 0);
	header(T_OUT, 0);
	assert_int_equal(submit(&r, 0), 0);
	assert_int_equal(ram[STATUS_GPA], 0xee);
	/* A write whose data the driver made writable: a write of nothing is still whole sectors. */
	assert_int_equal(request(&r, T_OUT, 0, 512, true, &used), S_OK);
	assert_int_equal(file_byte(&r, 0), 0);
	/* Still working. */
	assert_int_equal(request(&r, T_IN, 1, 512, true, NULL), S_OK);
	assert_int_equal(ram[DATA_GPA], 1);
	assert_false(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	rig_down(&r);
}

static void test_read_only(void **state)
{
	struct rig r;
	rig_up(&r, true);
	memset(ram + DATA_GPA, 0xab, 512);
	assert_int_equal(request(&r, T_OUT, 2, 512, false, NULL), S_IOERR);
	assert_int_equal(file_byte(&r, 2 * 512), 2);
	assert_int_equal(request(&r, T_DISCARD, 0, 16, false, NULL), S_UNSUPP);
	assert_int_equal(request(&r, T_IN, 2, 512, true, NULL), S_OK);
	assert_int_equal(ram[DATA_GPA], 2);
	assert_int_equal(request(&r, T_FLUSH, 0, 0, false, NULL), S_OK);
	rig_down(&r);
}

static void test_violation_needs_reset(void **state)
{
	struct rig r;
	rig_up(&r, false);
	/* A descriptor loop: the queue breaks, the device asks for a reset. */
	set_desc(0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, DATA_GPA, 0, VRING_DESC_F_NEXT, 0);
	struct vring_avail *a = (void *)(ram + AVAIL_GPA);
	struct vring_used *u = (void *)(ram + USED_GPA);
	a->ring[0] = 0;
	a->idx = 1;
	guest_mmio_write(&r.vm.mmio, NOTIFY, 2, 0);
	assert_int_equal(u->idx, 0);
	assert_true(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(guest_mmio_read(&r.vm.mmio, ISR, 1) & 2);
	/* A valid request now is not served. */
	header(T_IN, 1);
	set_desc(2, HDR_GPA, 16, VRING_DESC_F_NEXT, 3);
	set_desc(3, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	a->ring[1] = 2;
	a->idx = 2;
	guest_mmio_write(&r.vm.mmio, NOTIFY, 2, 0);
	assert_int_equal(u->idx, 0);
	/* After a reset it is. */
	driver_start(&r);
	assert_false(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(request(&r, T_IN, 1, 512, true, NULL), S_OK);
	assert_int_equal(ram[DATA_GPA], 1);

	/* Rings outside RAM: the same. */
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 3);
	uint64_t f = features(&r);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_GF, 4, f >> 32);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 11);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x7ffff000);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	guest_mmio_write(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1, 15);
	guest_mmio_write(&r.vm.mmio, NOTIFY, 2, 0);
	assert_true(guest_mmio_read(&r.vm.mmio, COMMON + VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	rig_down(&r);
}

static void test_config_errors(void **state)
{
	struct rig r;
	char err[256];
	rig_vm(&r);
	struct config empty;
	config_init(&empty);
	assert_null(pci_emul_virtio_blk.create(&r.vm, &r.bus, SLOT, &empty, "pci.0.4.0", err,
					       sizeof(err)));
	assert_non_null(strstr(err, "pci.0.4.0.path"));
	config_set(&empty, "pci.0.4.0.path", "/nonexistent/khyve-disk.img");
	assert_null(pci_emul_virtio_blk.create(&r.vm, &r.bus, SLOT, &empty, "pci.0.4.0", err,
					       sizeof(err)));
	assert_non_null(strstr(err, "pci.0.4.0.path=/nonexistent/khyve-disk.img"));
	config_set(&r.cfg, "pci.0.4.0.ro", "maybe");
	assert_null(pci_emul_virtio_blk.create(&r.vm, &r.bus, SLOT, &r.cfg, "pci.0.4.0", err,
					       sizeof(err)));
	assert_non_null(strstr(err, "pci.0.4.0.ro"));
	config_free(&empty);
	rig_down(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_and_features),
		cmocka_unit_test(test_read_write_flush_id),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_bad_requests_keep_device_working),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_violation_needs_reset),
		cmocka_unit_test(test_config_errors),
	};
	return cmocka_run_group_tests_name("virtio_blk", tests, NULL, NULL);
}
