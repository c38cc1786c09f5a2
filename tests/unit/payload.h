/*
 * Test helpers shared by the unit tests that build kernel payloads
 * (test_decompress.c, test_linux_boot.c): a growable byte buffer and the
 * gzip and xz streams a kernel build would produce, each followed by the
 * little-endian decompressed-size trailer the kernel's boot code reads.
 * Include after <cmocka.h>.
 */
#ifndef KHYVE_TEST_PAYLOAD_H
#define KHYVE_TEST_PAYLOAD_H

#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct buf {
	uint8_t *p;
	size_t len;
};

static inline void append_le32(struct buf *b, uint32_t v)
{
	b->p = realloc(b->p, b->len + 4);
	assert_non_null(b->p);
	for (int i = 0; i < 4; i++)
		b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static inline struct buf compress_gzip(const struct buf *in)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	size_t cap = deflateBound(&zs, in->len);
	struct buf out = { malloc(cap), 0 };
	zs.next_in = in->p;
	zs.avail_in = (uInt)in->len;
	zs.next_out = out.p;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	out.len = zs.total_out;
	deflateEnd(&zs);
	return out;  /* gzip's ISIZE doubles as the size trailer */
}

/* xz with the x86 BCJ filter in front of LZMA2, as the kernel build does. */
static inline struct buf compress_xz(const struct buf *in)
{
	lzma_options_lzma lz;
	assert_false(lzma_lzma_preset(&lz, 1));
	lzma_filter filters[] = { { LZMA_FILTER_X86, NULL }, { LZMA_FILTER_LZMA2, &lz },
				  { LZMA_VLI_UNKNOWN, NULL } };
	size_t cap = lzma_stream_buffer_bound(in->len);
	struct buf out = { malloc(cap), 0 };
	assert_int_equal(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, NULL, in->p,
						   in->len, out.p, &out.len, cap),
			 LZMA_OK);
	append_le32(&out, (uint32_t)in->len);  /* the kernel build's size_append */
	return out;
}

#endif
