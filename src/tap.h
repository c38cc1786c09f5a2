/*
 * The host end of a virtio-net device: a TAP interface, opened with a
 * virtio-net header in front of every frame (IFF_VNET_HDR) so that
 * checksum and segmentation offloads pass between guest and host kernel
 * without either computing or splitting anything. Theory at the top of
 * tap.c.
 *
 * Functions that can fail return 0 (or the fd) or a negative errno and
 * write a one-line reason to err.
 */
#ifndef KHYVE_TAP_H
#define KHYVE_TAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Attach to TAP interface ifname, creating it (non-persistent: it goes
 * when the fd is closed) if it does not exist: IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR, fd O_NONBLOCK | O_CLOEXEC. The fd, or -errno: -ENOENT (no
 * /dev/net/tun), -EPERM (creating needs CAP_NET_ADMIN; an unprivileged
 * user attaches to a TAP root made for it), -ENAMETOOLONG, -EINVAL (a bad
 * name, or ifname exists and is not a single-queue TAP), -EBUSY (another
 * process has it), -EOPNOTSUPP (no IFF_VNET_HDR in this kernel). Call
 * before the sandbox: it opens /dev/net/tun.
 */
int tap_open(const char *ifname, char *err, size_t errlen);
/* TUNSETVNETHDRSZ: 10 (legacy, no MRG_RXBUF) or 12 (VERSION_1 or MRG_RXBUF). */
int tap_set_vnet_hdr_len(int fd, int len, char *err, size_t errlen);
/* TUNSETOFFLOAD: TUN_F_* the TAP may hand us (and so the guest); see tap_offload_for_guest. */
int tap_set_offload(int fd, unsigned tun_flags, char *err, size_t errlen);
/*
 * The TUN_F_* offloads that fit the guest's negotiated virtio-net features
 * (a bit mask of 1 << VIRTIO_NET_F_*): TUN_F_CSUM with GUEST_CSUM, and only
 * then TUN_F_TSO4 / TUN_F_TSO6 with GUEST_TSO4 / GUEST_TSO6, TUN_F_TSO_ECN
 * with GUEST_ECN and a TSO, TUN_F_UFO with GUEST_UFO. What the spec makes
 * depend on another feature is left out without it, as the kernel refuses
 * such a combination with EINVAL.
 */
unsigned tap_offload_for_guest(uint64_t virtio_net_features);

#endif
