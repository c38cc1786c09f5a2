/*
 * virtio-net as the guest sees it (virtio 1.x, section 5.1): feature bits,
 * the header in front of every frame, the device configuration. Shared by
 * the virtio-net device models and the TAP backend (tap.c maps the guest's
 * receive features to TAP offloads).
 *
 * khyve's own copy rather than <linux/virtio_net.h>: the layout is the
 * spec's, not the host kernel's headers' version of it, and the fields are
 * plain little-endian integers (khyve is x86 only) instead of __virtio16.
 * Do not include both in one file: the structures share their names.
 */
#ifndef KHYVE_VIRTIO_NET_HW_H
#define KHYVE_VIRTIO_NET_HW_H

#include <stdint.h>

/* Feature bits (bit numbers in the 64-bit feature word). */
#define VIRTIO_NET_F_CSUM       0    /* device takes frames with a partial checksum */
#define VIRTIO_NET_F_GUEST_CSUM 1    /* driver takes frames with a partial checksum */
#define VIRTIO_NET_F_MTU        3    /* config.mtu is valid */
#define VIRTIO_NET_F_MAC        5    /* config.mac is valid */
#define VIRTIO_NET_F_GUEST_TSO4 7    /* driver takes TCPv4 GSO frames (needs GUEST_CSUM) */
#define VIRTIO_NET_F_GUEST_TSO6 8    /* driver takes TCPv6 GSO frames (needs GUEST_CSUM) */
#define VIRTIO_NET_F_GUEST_ECN  9    /* ...with ECN (needs GUEST_TSO4 or GUEST_TSO6) */
#define VIRTIO_NET_F_GUEST_UFO  10   /* driver takes UFO frames (needs GUEST_CSUM) */
#define VIRTIO_NET_F_HOST_TSO4  11   /* device takes TCPv4 GSO frames (needs CSUM) */
#define VIRTIO_NET_F_HOST_TSO6  12   /* device takes TCPv6 GSO frames (needs CSUM) */
#define VIRTIO_NET_F_HOST_ECN   13   /* ...with ECN (needs HOST_TSO4 or HOST_TSO6) */
#define VIRTIO_NET_F_HOST_UFO   14   /* device takes UFO frames (needs CSUM) */
#define VIRTIO_NET_F_MRG_RXBUF  15   /* a received frame may span several buffers */
#define VIRTIO_NET_F_STATUS     16   /* config.status is valid */
#define VIRTIO_NET_F_CTRL_VQ    17   /* a control queue */
#define VIRTIO_NET_F_MQ         22   /* several queue pairs (needs CTRL_VQ) */

/* virtio_net_hdr_v1.flags */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1   /* checksum at csum_start + csum_offset to fill in */
#define VIRTIO_NET_HDR_F_DATA_VALID 2   /* checksum already verified (receive) */
#define VIRTIO_NET_HDR_F_RSC_INFO   4

/* virtio_net_hdr_v1.gso_type */
#define VIRTIO_NET_HDR_GSO_NONE  0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP   3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN   0x80   /* or'ed in: the TCP segments carry ECN */

/*
 * In front of every frame, both ways. 12 bytes: with VERSION_1 (or
 * MRG_RXBUF) num_buffers is always there, which is why a TAP serving a
 * modern guest is set to a 12-byte header (tap_set_vnet_hdr_len).
 */
struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;        /* bytes of headers to copy into each segment */
	uint16_t gso_size;       /* payload bytes per segment */
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;    /* receive: buffers the frame spans */
};
_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "virtio_net_hdr_v1 is 12 bytes");
/* The header without num_buffers: legacy devices without MRG_RXBUF. */
#define VIRTIO_NET_HDR_LEN_LEGACY 10

/* virtio_net_config.status */
#define VIRTIO_NET_S_LINK_UP  1
#define VIRTIO_NET_S_ANNOUNCE 2

/* The device configuration (the part khyve offers). */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
};
_Static_assert(sizeof(struct virtio_net_config) == 12, "virtio_net_config is 12 bytes");

#endif
