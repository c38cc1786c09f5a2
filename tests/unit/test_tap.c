/*
 * Unit tests for the TAP backend (tap.c): attaching/creating a TAP with a
 * virtio-net header, setting the header length and offloads, the mapping
 * from the guest's virtio-net features to TAP offloads, and the errors for
 * bad names and interfaces that are not TAPs. Creating a TAP needs
 * CAP_NET_ADMIN and /dev/net/tun: without them the kernel-facing tests
 * skip with a message; the mapping is pure and always runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <cmocka.h>

#include "tap.h"
#include "virtio_net_hw.h"

#define F(bit) (1ull << VIRTIO_NET_F_##bit)

/* A TAP name of this process's own, so parallel runs do not collide. */
static void tap_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "kht%s%d", tag, (int)(getpid() % 100000));
}

/* Open a fresh TAP or skip the test, saying why. */
static int open_or_skip(const char *name)
{
	char err[256];
	int fd = tap_open(name, err, sizeof(err));
	if (fd == -ENOENT || fd == -EPERM || fd == -EACCES) {
		printf("skipping: %s\n", err);
		skip();
	}
	if (fd < 0)
		fail_msg("tap_open(%s): %s", name, err);
	return fd;
}

static void test_tap_open(void **state)
{
	char name[IFNAMSIZ], err[256];
	tap_name(name, sizeof(name), "a");
	int fd = open_or_skip(name);
	/* The interface exists now, with our flags, and the fd is non-blocking and close-on-exec. */
	assert_true(if_nametoindex(name) > 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
	assert_string_equal(ifr.ifr_name, name);
	assert_int_equal(ifr.ifr_flags & (IFF_TAP | IFF_TUN | IFF_NO_PI | IFF_VNET_HDR),
			 IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Nothing queued: a read does not block. */
	char buf[2048];
	assert_int_equal(read(fd, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);

	/* A second opener of a single-queue TAP: busy, and told so. */
	assert_int_equal(tap_open(name, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "busy"));

	/* A TAP khyve created is not persistent: it goes with the fd. */
	close(fd);
	assert_int_equal(if_nametoindex(name), 0);
}

static void test_tap_hdr_and_offload(void **state)
{
	char name[IFNAMSIZ], err[256];
	tap_name(name, sizeof(name), "b");
	int fd = open_or_skip(name);
	int len = 0;
	assert_int_equal(ioctl(fd, TUNGETVNETHDRSZ, &len), 0);
	assert_int_equal(len, 10);   /* the kernel's default */
	assert_int_equal(tap_set_vnet_hdr_len(fd, 12, err, sizeof(err)), 0);
	assert_int_equal(ioctl(fd, TUNGETVNETHDRSZ, &len), 0);
	assert_int_equal(len, (int)sizeof(struct virtio_net_hdr_v1));
	assert_int_equal(tap_set_vnet_hdr_len(fd, 10, err, sizeof(err)), 0);
	assert_int_equal(ioctl(fd, TUNGETVNETHDRSZ, &len), 0);
	assert_int_equal(len, 10);
	assert_int_equal(tap_set_vnet_hdr_len(fd, 8, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "10 or 12"));

	/* Every combination the mapping produces is one the kernel takes. */
	uint64_t all = F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN) |
		       F(GUEST_UFO);
	assert_int_equal(tap_set_offload(fd, tap_offload_for_guest(all), err, sizeof(err)), 0);
	assert_int_equal(tap_set_offload(fd, tap_offload_for_guest(F(GUEST_CSUM) | F(GUEST_TSO6)),
					 err, sizeof(err)), 0);
	assert_int_equal(tap_set_offload(fd, tap_offload_for_guest(F(GUEST_ECN) | F(GUEST_TSO4)),
					 err, sizeof(err)), 0);
	assert_int_equal(tap_set_offload(fd, 0, err, sizeof(err)), 0);
	/* The kernel's rule, which the mapping follows: no TSO without CSUM. */
	assert_int_equal(tap_set_offload(fd, TUN_F_TSO4, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "TUNSETOFFLOAD"));
	close(fd);
}

static void test_tap_bad_names(void **state)
{
	char err[256];
	assert_int_equal(tap_open("a-name-far-too-long-for-linux", err, sizeof(err)),
			 -ENAMETOOLONG);
	assert_non_null(strstr(err, "at most 15"));
	assert_int_equal(tap_open("", err, sizeof(err)), -EINVAL);
	assert_int_equal(tap_open("tap/0", err, sizeof(err)), -EINVAL);
	assert_int_equal(tap_open("tap%d", err, sizeof(err)), -EINVAL);
	assert_int_equal(tap_open("..", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a valid interface name"));
	/* A name the kernel has, for an interface that is no TAP. */
	int r = tap_open("lo", err, sizeof(err));
	if (r == -ENOENT || r == -EPERM || r == -EACCES) {
		printf("skipping the 'lo' case: %s\n", err);
		return;
	}
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err, "not a single-queue TAP"));
}

static void test_tap_offload_mapping(void **state)
{
	assert_int_equal(tap_offload_for_guest(0), 0);
	assert_int_equal(tap_offload_for_guest(F(GUEST_CSUM)), TUN_F_CSUM);
	assert_int_equal(tap_offload_for_guest(F(GUEST_CSUM) | F(GUEST_TSO4)),
			 TUN_F_CSUM | TUN_F_TSO4);
	assert_int_equal(tap_offload_for_guest(F(GUEST_CSUM) | F(GUEST_TSO6)),
			 TUN_F_CSUM | TUN_F_TSO6);
	assert_int_equal(tap_offload_for_guest(F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_ECN)),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN);
	assert_int_equal(tap_offload_for_guest(F(GUEST_CSUM) | F(GUEST_UFO)),
			 TUN_F_CSUM | TUN_F_UFO);
	/* Dependencies: nothing without GUEST_CSUM, no ECN without a TSO. */
	assert_int_equal(tap_offload_for_guest(F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_UFO) |
					       F(GUEST_ECN)), 0);
	assert_int_equal(tap_offload_for_guest(F(GUEST_CSUM) | F(GUEST_ECN)), TUN_F_CSUM);
	/* The device's own (HOST_*) and unrelated features change nothing. */
	assert_int_equal(tap_offload_for_guest(F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) |
					       F(HOST_ECN) | F(HOST_UFO) | F(MRG_RXBUF) | F(MAC) |
					       F(STATUS) | F(CTRL_VQ) | F(MQ) | F(MTU)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tap_offload_mapping),
		cmocka_unit_test(test_tap_bad_names),
		cmocka_unit_test(test_tap_open),
		cmocka_unit_test(test_tap_hdr_and_offload),
	};
	return cmocka_run_group_tests_name("TAP", tests, NULL, NULL);
}
