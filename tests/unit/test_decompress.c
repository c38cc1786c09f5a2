/*
 * Unit tests for kernel payload decompression (kernel_decompress.c).
 *
 * Every payload is produced here, at test time, the way the kernel build
 * produces it (scripts/Makefile.lib): the compressor's output followed by the
 * decompressed size as 4 LE bytes (gzip: its own ISIZE trailer), lz4 in the
 * legacy frame of `lz4 -l` built by hand, xz with the x86 BCJ filter in front
 * of LZMA2 as scripts/xz_wrap.sh does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "kernel_decompress.h"
#include "payload.h"

/* Deterministic, moderately compressible data: words from a small LCG. */
static struct buf sample(size_t len)
{
	static const char *const words[] = { "mov ", "push ", "rax,", "rbx ", "call ",
					     "\x00\x00\x00\x00", "ret\n", "\x48\x89\xe5" };
	struct buf b = { malloc(len), len };
	assert_non_null(b.p);
	uint32_t x = 12345;
	size_t i = 0;
	while (i < len) {
		x = x * 1103515245u + 12345u;
		const char *w = words[(x >> 16) % 8];
		size_t wl = (x >> 16) % 8 == 5 ? 4 : strlen(w);
		if ((x >> 24) % 5 == 0)
			b.p[i++] = (uint8_t)(x >> 8);  /* sprinkle entropy */
		for (size_t k = 0; k < wl && i < len; k++)
			b.p[i++] = (uint8_t)w[k];
	}
	return b;
}

static struct buf compress_lzma_alone(const struct buf *in)
{
	lzma_options_lzma lz;
	assert_false(lzma_lzma_preset(&lz, 1));
	lzma_stream s = LZMA_STREAM_INIT;
	assert_int_equal(lzma_alone_encoder(&s, &lz), LZMA_OK);
	size_t cap = in->len + in->len / 2 + 4096;
	struct buf out = { malloc(cap), 0 };
	s.next_in = in->p;
	s.avail_in = in->len;
	s.next_out = out.p;
	s.avail_out = cap;
	assert_int_equal(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
	out.len = (size_t)s.total_out;
	lzma_end(&s);
	append_le32(&out, (uint32_t)in->len);
	return out;
}

/* `lz4 -l`: magic 0x184c2102, then [LE32 csize][block] per 8 MiB of input. */
static struct buf compress_lz4_legacy(const struct buf *in)
{
	const size_t block = 8u << 20;
	size_t cap = 4 + (in->len / block + 1) * (4 + (size_t)LZ4_compressBound((int)block));
	struct buf out = { malloc(cap), 0 };
	static const uint8_t magic[4] = { 0x02, 0x21, 0x4c, 0x18 };
	memcpy(out.p, magic, 4);
	out.len = 4;
	for (size_t off = 0; off < in->len; off += block) {
		size_t n = in->len - off < block ? in->len - off : block;
		int c = LZ4_compress_default((const char *)in->p + off,
					     (char *)out.p + out.len + 4, (int)n,
					     LZ4_compressBound((int)n));
		assert_true(c > 0);
		for (int i = 0; i < 4; i++)
			out.p[out.len + i] = (uint8_t)((uint32_t)c >> (8 * i));
		out.len += 4 + (size_t)c;
	}
	append_le32(&out, (uint32_t)in->len);
	return out;
}

static struct buf compress_zstd_opts(const struct buf *in, int content_size)
{
	size_t cap = ZSTD_compressBound(in->len);
	struct buf out = { malloc(cap), 0 };
	/* As the zstd tool does by default: content size and checksum. */
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, content_size);
	out.len = ZSTD_compress2(cctx, out.p, cap, in->p, in->len);
	ZSTD_freeCCtx(cctx);
	assert_false(ZSTD_isError(out.len));
	append_le32(&out, (uint32_t)in->len);
	return out;
}

static struct buf compress_zstd(const struct buf *in)
{
	return compress_zstd_opts(in, 1);
}

typedef struct buf (*compressor)(const struct buf *);

static const struct {
	const char *name;
	compressor fn;
	bool checksummed;  /* corrupting the stream data is always detected */
} formats[] = {
	{ "gzip", compress_gzip, true },
	{ "xz", compress_xz, true },
	{ "lzma", compress_lzma_alone, false },
	{ "lz4", compress_lz4_legacy, false },
	{ "zstd", compress_zstd, true },
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

static void roundtrip(const struct buf *data, size_t fi)
{
	struct buf c = formats[fi].fn(data);
	uint8_t *out = NULL;
	size_t outlen = 0;
	const char *fmt = NULL;
	char err[256] = "";
	int r = kernel_decompress(c.p, c.len, &out, &outlen, &fmt, err, sizeof(err));
	if (r != 0)
		fail_msg("%s round trip failed: %s", formats[fi].name, err);
	assert_string_equal(fmt, formats[fi].name);
	assert_int_equal(outlen, data->len);
	assert_memory_equal(out, data->p, data->len);
	free(out);
	free(c.p);
}

static void test_roundtrip_each_format(void **state)
{
	struct buf data = sample(2u << 20);
	for (size_t i = 0; i < NFORMATS; i++)
		roundtrip(&data, i);
	free(data.p);
}

/* More than one 8 MiB legacy block, the last one partial. */
static void test_lz4_multi_block(void **state)
{
	struct buf data = sample((17u << 20) + 12345);
	roundtrip(&data, 3);
	free(data.p);
}

static int decompress_expect_fail(const uint8_t *p, size_t len, const char *needle);

/* Two legacy frames back to back (`cat a.lz4 b.lz4`), as unlz4 accepts. */
static void test_lz4_concatenated_frames(void **state)
{
	struct buf data = sample((9u << 20) + 777);
	size_t half = 5u << 20;
	struct buf a = { data.p, half }, b = { data.p + half, data.len - half };
	struct buf ca = compress_lz4_legacy(&a), cb = compress_lz4_legacy(&b);
	struct buf c = { malloc(ca.len + cb.len), 0 };
	memcpy(c.p, ca.p, ca.len - 4);  /* drop each frame's own size trailer */
	memcpy(c.p + ca.len - 4, cb.p, cb.len - 4);
	c.len = ca.len - 4 + cb.len - 4;
	append_le32(&c, (uint32_t)data.len);
	uint8_t *out;
	size_t outlen;
	const char *fmt;
	char err[256] = "";
	if (kernel_decompress(c.p, c.len, &out, &outlen, &fmt, err, sizeof(err)) != 0)
		fail_msg("concatenated lz4 frames: %s", err);
	assert_int_equal(outlen, data.len);
	assert_memory_equal(out, data.p, data.len);
	free(out);
	free(c.p);
	free(ca.p);
	free(cb.p);
	free(data.p);
}

/* Without a content size in the frame, only the trailer bounds the output. */
static void test_zstd_without_content_size(void **state)
{
	struct buf data = sample(1u << 20);
	struct buf c = compress_zstd_opts(&data, 0);
	uint8_t *out;
	size_t outlen;
	const char *fmt;
	char err[256] = "";
	if (kernel_decompress(c.p, c.len, &out, &outlen, &fmt, err, sizeof(err)) != 0)
		fail_msg("zstd without content size: %s", err);
	assert_memory_equal(out, data.p, data.len);
	free(out);
	uint32_t wrong[] = { (uint32_t)data.len - 1, (uint32_t)data.len + 1 };
	for (int w = 0; w < 2; w++) {
		c.len -= 4;
		append_le32(&c, wrong[w]);
		assert_int_equal(decompress_expect_fail(c.p, c.len, "zstd"), -1);
	}
	free(c.p);
	free(data.p);
}

static int decompress_expect_fail(const uint8_t *p, size_t len, const char *needle)
{
	uint8_t *out = (uint8_t *)1;
	size_t outlen = 7;
	const char *fmt;
	char err[256] = "";
	int r = kernel_decompress(p, len, &out, &outlen, &fmt, err, sizeof(err));
	if (r == 0) {
		free(out);
		return 0;
	}
	assert_int_equal(r, -1);
	assert_null(out);
	assert_int_equal(outlen, 0);
	assert_true(strlen(err) > 0);
	if (needle && !strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
	return -1;
}

/* Cut the stream short but keep a correct size trailer: must not decode. */
static void test_truncated_streams(void **state)
{
	struct buf data = sample(1u << 20);
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].fn(&data);
		size_t stream = c.len - 4;
		for (size_t keep = 1; keep < stream; keep += stream / 13 + 1) {
			struct buf t = { malloc(keep), keep };
			memcpy(t.p, c.p, keep);
			append_le32(&t, (uint32_t)data.len);
			if (decompress_expect_fail(t.p, t.len, NULL) != -1)
				fail_msg("%s cut to %zu of %zu bytes was accepted", formats[i].name,
					 keep, stream);
			free(t.p);
		}
		/* Plain truncation, trailer lost: still an error, never a crash. */
		for (size_t keep = 0; keep < c.len; keep += c.len / 17 + 1)
			assert_int_equal(decompress_expect_fail(c.p, keep, NULL), -1);
		free(c.p);
	}
	free(data.p);
}

static void test_corrupt_streams(void **state)
{
	struct buf data = sample(1u << 20);
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].fn(&data);
		for (size_t at = 16; at < c.len - 4; at += (c.len - 4) / 11) {
			uint8_t saved = c.p[at];
			c.p[at] ^= 0x5a;
			int r = decompress_expect_fail(c.p, c.len, NULL);
			/* Without a checksum a flipped literal may decode; never crash. */
			if (formats[i].checksummed && r != -1)
				fail_msg("%s with byte %zu flipped was accepted", formats[i].name, at);
			c.p[at] = saved;
		}
		free(c.p);
	}
	/* lz4: a block length pointing past the payload is caught. */
	struct buf c = compress_lz4_legacy(&data);
	c.p[4] = 0xff, c.p[5] = 0xff, c.p[6] = 0x7f, c.p[7] = 0x00;
	decompress_expect_fail(c.p, c.len, "lz4");
	free(c.p);
	free(data.p);
}

/* The trailer must match what the stream produces, both ways. */
static void test_size_mismatch(void **state)
{
	struct buf data = sample(1u << 20);
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].fn(&data);
		uint32_t wrong[] = { (uint32_t)data.len - 1, (uint32_t)data.len + 1,
				     (uint32_t)data.len / 2 };
		for (size_t w = 0; w < 3; w++) {
			c.len -= 4;
			append_le32(&c, wrong[w]);
			assert_int_equal(decompress_expect_fail(c.p, c.len, formats[i].name), -1);
		}
		free(c.p);
	}
	free(data.p);
}

static void test_absurd_size_refused(void **state)
{
	struct buf data = sample(64u << 10);
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].fn(&data);
		c.len -= 4;
		append_le32(&c, 0xffffffffu);  /* 4 GiB - 1 */
		decompress_expect_fail(c.p, c.len, "absurd");
		c.len -= 4;
		append_le32(&c, 0);
		decompress_expect_fail(c.p, c.len, "absurd");
		free(c.p);
	}
	free(data.p);
}

static void test_unknown_and_unsupported(void **state)
{
	static const uint8_t junk[32] = "this is not a compressed kernel";
	decompress_expect_fail(junk, sizeof(junk), "unknown compression");
	uint8_t bz[32] = { 0x42, 0x5a, 0x68, 0x39 };
	decompress_expect_fail(bz, sizeof(bz), "bzip2");
	uint8_t lzo[32] = { 0x89, 0x4c, 0x5a, 0x4f, 0x00 };
	decompress_expect_fail(lzo, sizeof(lzo), "lzo");
	decompress_expect_fail(junk, 2, "2 bytes");
	static const uint8_t tiny_gzip[6] = { 0x1f, 0x8b, 8, 0, 0, 0 };
	decompress_expect_fail(tiny_gzip, sizeof(tiny_gzip), "only 6 bytes");
	decompress_expect_fail(junk, 0, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_each_format),
		cmocka_unit_test(test_lz4_multi_block),
		cmocka_unit_test(test_lz4_concatenated_frames),
		cmocka_unit_test(test_zstd_without_content_size),
		cmocka_unit_test(test_truncated_streams),
		cmocka_unit_test(test_corrupt_streams),
		cmocka_unit_test(test_size_mismatch),
		cmocka_unit_test(test_absurd_size_refused),
		cmocka_unit_test(test_unknown_and_unsupported),
	};
	return cmocka_run_group_tests_name("kernel_decompress", tests, NULL, NULL);
}
