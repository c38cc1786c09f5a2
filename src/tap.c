/*
 * TAP: the host end of a virtio-net device.
 *
 * Why a TAP with a virtio-net header. A TAP fd carries Ethernet frames
 * between khyve (or vhost-net, which takes the fd) and the host kernel's
 * network stack. With IFF_VNET_HDR every frame is preceded by a virtio-net
 * header (virtio_net_hw.h) -- the very header the guest puts in front of
 * its frames -- so a frame goes between guest and host with its offload
 * state (checksum not yet computed, one 64 KiB TCP segment still to be
 * cut into MTU-sized ones) and nobody computes a checksum or segments
 * anything on the way: the guest's header is the TAP's header. IFF_NO_PI:
 * no extra packet-information word in front of that.
 *
 * The two directions are not symmetric. What the guest sends (its TX) may
 * carry any offload the device offered (CSUM, HOST_TSO*): the kernel takes
 * a partial checksum or a GSO frame from a TAP with a virtio-net header
 * and finishes it itself if it has to. What the TAP hands us (the guest's
 * RX) it hands over only in the forms TUNSETOFFLOAD allowed, and that must
 * be what the guest accepts, which it said in its negotiated GUEST_*
 * features: tap_offload_for_guest() is that mapping, set once the driver
 * has accepted the features. The kernel refuses flags whose prerequisite
 * is missing (TSO without CSUM, ECN without TSO, UFO without CSUM) and so
 * does the spec for the features: the mapping leaves such bits out.
 *
 * Header length. 12 bytes (struct virtio_net_hdr_v1, with num_buffers)
 * when the guest negotiated VERSION_1 or MRG_RXBUF, 10 otherwise; the TAP
 * is told with TUNSETVNETHDRSZ, at run time when features are set.
 *
 * Attach or create. TUNSETIFF attaches to an existing TAP of that name or
 * creates one. Creating needs CAP_NET_ADMIN, and so does attaching unless
 * the TAP is persistent and made for this user (or group): the way to run
 * khyve unprivileged is for root to prepare the TAP beforehand with
 * `ip tuntap add dev NAME mode tap user UID` (not multi_queue: khyve opens
 * one queue). A TAP khyve created itself is not persistent and goes away
 * with the fd. O_NONBLOCK: the backend polls; a read with nothing queued
 * must not block a thread that has other queues to serve.
 *
 * Sandbox. tap_open() opens /dev/net/tun, so it runs at assembly, before
 * the seccomp filter; reads/writes/readv/writev on the fd and the two
 * run-time ioctls (header length, offloads) are on the allow-list.
 */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "virtio_net_hw.h"

#define TUN_PATH "/dev/net/tun"

/*
 * What the kernel's dev_valid_name() refuses, and '%', which would make it
 * pick the name (tap%d) where the caller could not know it.
 */
static bool name_ok(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s == '%' || *s == ' ' || (*s >= '\t' && *s <= '\r'))
			return false;
	return true;
}

int tap_open(const char *ifname, char *err, size_t errlen)
{
	if (strlen(ifname) >= IFNAMSIZ) {
		snprintf(err, errlen, "TAP %s: interface names are at most %d characters", ifname,
			 IFNAMSIZ - 1);
		return -ENAMETOOLONG;
	}
	if (!name_ok(ifname)) {
		snprintf(err, errlen, "TAP '%s': not a valid interface name (empty, '.', '..', or "
			 "with '/', ':', '%%' or white space)", ifname);
		return -EINVAL;
	}
	int fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENODEV || e == ENXIO)
			snprintf(err, errlen, "TAP %s: no %s (load the tun module: modprobe tun; in a "
				 "container, pass the device in)", ifname, TUN_PATH);
		else if (e == EACCES)
			snprintf(err, errlen, "TAP %s: cannot open %s: %s (it is usually mode 0666: "
				 "every user may open it, and the kernel checks the TAP itself)",
				 ifname, TUN_PATH, strerror(e));
		else
			snprintf(err, errlen, "TAP %s: cannot open %s: %s", ifname, TUN_PATH,
				 strerror(e));
		return -e;
	}
	unsigned features = 0;
	if (ioctl(fd, TUNGETFEATURES, &features) < 0 || !(features & IFF_VNET_HDR)) {
		close(fd);
		snprintf(err, errlen, "TAP %s: this kernel's TUN driver has no IFF_VNET_HDR "
			 "(virtio-net headers), which khyve's virtio-net needs", ifname);
		return -EOPNOTSUPP;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		switch (e) {
		case EPERM:
			snprintf(err, errlen, "TAP %s: creating it, or attaching to one not made for "
				 "uid %u, needs CAP_NET_ADMIN; or let root prepare it: ip tuntap add dev "
				 "%s mode tap user %u (docs/hardening.md)", ifname, (unsigned)geteuid(),
				 ifname, (unsigned)geteuid());
			break;
		case EBUSY:
			snprintf(err, errlen, "TAP %s is busy: another process (another VM?) has it "
				 "open, and a single-queue TAP takes one", ifname);
			break;
		case EINVAL:
			snprintf(err, errlen, "TAP %s: an interface of that name exists and is not a "
				 "single-queue TAP (a TUN, a multi_queue TAP, or not a tun device)",
				 ifname);
			break;
		default:
			snprintf(err, errlen, "TAP %s: TUNSETIFF: %s", ifname, strerror(e));
		}
		return -e;
	}
	return fd;
}

int tap_set_vnet_hdr_len(int fd, int len, char *err, size_t errlen)
{
	if (len != VIRTIO_NET_HDR_LEN_LEGACY && len != (int)sizeof(struct virtio_net_hdr_v1)) {
		snprintf(err, errlen, "TAP: virtio-net header length %d: expected %d or %zu", len,
			 VIRTIO_NET_HDR_LEN_LEGACY, sizeof(struct virtio_net_hdr_v1));
		return -EINVAL;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &len) < 0) {
		int e = errno;
		snprintf(err, errlen, "TAP: TUNSETVNETHDRSZ %d: %s", len, strerror(e));
		return -e;
	}
	return 0;
}

int tap_set_offload(int fd, unsigned tun_flags, char *err, size_t errlen)
{
	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0) {
		int e = errno;
		snprintf(err, errlen, "TAP: TUNSETOFFLOAD 0x%x: %s%s", tun_flags, strerror(e),
			 e == EINVAL ? " (an unknown flag, or TSO/UFO without CSUM, ECN without TSO)"
				     : "");
		return -e;
	}
	return 0;
}

unsigned tap_offload_for_guest(uint64_t f)
{
#define HAS(bit) ((f >> VIRTIO_NET_F_##bit) & 1)
	/* Everything below is a partial-checksum frame: nothing without GUEST_CSUM. */
	if (!HAS(GUEST_CSUM))
		return 0;
	unsigned t = TUN_F_CSUM;
	if (HAS(GUEST_TSO4))
		t |= TUN_F_TSO4;
	if (HAS(GUEST_TSO6))
		t |= TUN_F_TSO6;
	if (HAS(GUEST_ECN) && (t & (TUN_F_TSO4 | TUN_F_TSO6)))
		t |= TUN_F_TSO_ECN;
	if (HAS(GUEST_UFO))
		t |= TUN_F_UFO;
#undef HAS
	return t;
}
