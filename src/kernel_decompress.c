/*
 * Kernel payload decompression: one decoder per format, all writing into a
 * single buffer sized from the payload's 4-byte size trailer.
 *
 * Why trust the trailer at all: it is the only length the kernel's own
 * extractor has (mkpiggy.c turns it into z_output_len), so every real
 * bzImage carries a correct one, and it lets each decoder run against a
 * fixed-capacity buffer. Every decoder below is driven with that capacity as
 * a hard limit; a stream that wants to write more, ends early, or is corrupt
 * is an error. Nothing here trusts a length from inside a compressed stream.
 *
 * Each decoder is handed the whole payload, trailer included: gzip needs it
 * (for gzip the trailer *is* the member's ISIZE field), and the others stop
 * at the end of their own stream, so the 4 extra bytes are never read as
 * data.
 */
#include "kernel_decompress.h"
#include "errmsg.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

/* The legacy frame written by `lz4 -l`: this magic, then blocks. */
#define LZ4_LEGACY_MAGIC 0x184c2102u
/* Every legacy block but the last decompresses to exactly this much. */
#define LZ4_LEGACY_BLOCK (8u << 20)
/* The xz kernel payload uses a 32 MiB dictionary; leave generous room. */
#define LZMA_MEMLIMIT (256ULL << 20)

/*
 * The output buffer is tens of MiB written once from start to end. Filling
 * fresh 4 KiB pages costs one fault each (13,000 for Debian's 53 MiB
 * vmlinux), which dominated the whole load; asking for transparent huge
 * pages on the buffer's aligned interior cuts that to a few dozen faults
 * (bench/README.md, boot). It stays an ordinary malloc() block: the caller
 * frees it with free(), and glibc unmaps it whole. A hint only: without THP
 * nothing changes.
 */
static void *alloc_output(size_t len)
{
	uint8_t *p = malloc(len);
	const uintptr_t huge = 2u << 20;
	uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t hi = ((uintptr_t)p + len) & ~(huge - 1);
	if (p && hi > lo)
		madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
	return p;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static bool has_magic(const uint8_t *in, size_t inlen, const char *magic, size_t n)
{
	return inlen >= n && memcmp(in, magic, n) == 0;
}

/* The stream's output must fill the declared size exactly. */
static int check_length(const char *fmt, size_t produced, size_t declared, char *err,
			size_t errlen)
{
	if (produced != declared)
		return fail_with(err, errlen,
			    "%s payload decompressed to %zu bytes but its size trailer declares %zu",
			    fmt, produced, declared);
	return 0;
}

static int inflate_gzip(const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
			char *err, size_t errlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	/* 16 + MAX_WBITS: expect a gzip header and trailer, not raw zlib. */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return fail_with(err, errlen, "gzip payload: zlib initialisation failed");
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = out;
	zs.avail_out = (uInt)outcap;
	int r = inflate(&zs, Z_FINISH);
	size_t produced = zs.total_out;
	const char *msg = zs.msg;
	inflateEnd(&zs);
	if (r == Z_STREAM_END)
		return check_length("gzip", produced, outcap, err, errlen);
	if (r == Z_BUF_ERROR && produced == outcap)
		return fail_with(err, errlen,
			    "gzip payload decompresses to more than the %zu bytes its size trailer declares",
			    outcap);
	if (r == Z_BUF_ERROR)
		return fail_with(err, errlen, "gzip payload is truncated (stream ends after %zu bytes of output)",
			    produced);
	return fail_with(err, errlen, "gzip payload is corrupt: %s", msg ? msg : "inflate error");
}

static const char *lzma_ret_text(lzma_ret r)
{
	switch (r) {
	case LZMA_FORMAT_ERROR: return "not in the expected format";
	case LZMA_OPTIONS_ERROR: return "unsupported options";
	case LZMA_DATA_ERROR: return "data is corrupt";
	case LZMA_BUF_ERROR: return "stream is truncated";
	case LZMA_MEMLIMIT_ERROR: return "needs more than 256 MiB of decoder memory";
	case LZMA_MEM_ERROR: return "out of memory";
	case LZMA_UNSUPPORTED_CHECK: return "unsupported integrity check";
	default: return "decoder error";
	}
}

/* xz and legacy .lzma share liblzma; only the decoder set-up differs. */
static int decode_lzma_family(const char *fmt, bool xz, const uint8_t *in, size_t inlen,
			      uint8_t *out, size_t outcap, char *err, size_t errlen)
{
	lzma_stream strm = LZMA_STREAM_INIT;
	lzma_ret r = xz ? lzma_stream_decoder(&strm, LZMA_MEMLIMIT, 0)
			: lzma_alone_decoder(&strm, LZMA_MEMLIMIT);
	if (r != LZMA_OK)
		return fail_with(err, errlen, "%s payload: liblzma initialisation failed", fmt);
	strm.next_in = in;
	strm.avail_in = inlen;
	strm.next_out = out;
	strm.avail_out = outcap;
	do
		r = lzma_code(&strm, LZMA_FINISH);
	while (r == LZMA_OK);
	size_t produced = (size_t)strm.total_out;
	lzma_end(&strm);
	if (r == LZMA_STREAM_END)
		return check_length(fmt, produced, outcap, err, errlen);
	if (r == LZMA_BUF_ERROR && produced == outcap)
		return fail_with(err, errlen,
			    "%s payload decompresses to more than the %zu bytes its size trailer declares",
			    fmt, outcap);
	return fail_with(err, errlen, "%s payload: %s (after %zu bytes of output)", fmt,
		    lzma_ret_text(r), produced);
}

/*
 * The lz4 legacy frame: magic, then blocks, each a 4-byte LE compressed
 * length and an LZ4 block decompressing to 8 MiB (the last one to less).
 * The frame has no end marker, so decoding stops once the declared size is
 * reached; the size trailer right after the last block is therefore never
 * mistaken for a block header. A repeated magic starts a concatenated frame,
 * which the kernel's unlz4 also accepts.
 */
static int decode_lz4_legacy(const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
			     char *err, size_t errlen)
{
	const size_t max_block = (size_t)LZ4_compressBound((int)LZ4_LEGACY_BLOCK);
	size_t pos = 4, produced = 0;
	while (produced < outcap) {
		if (inlen - pos < 4)
			return fail_with(err, errlen,
				    "lz4 payload is truncated (stream ends after %zu of %zu declared bytes)",
				    produced, outcap);
		uint32_t csize = le32(in + pos);
		if (csize == LZ4_LEGACY_MAGIC) {
			pos += 4;
			continue;
		}
		if (csize == 0 || csize > max_block)
			return fail_with(err, errlen,
				    "lz4 payload: block at offset %zu has impossible length %u", pos,
				    csize);
		pos += 4;
		if (csize > inlen - pos)
			return fail_with(err, errlen,
				    "lz4 payload is truncated (block at offset %zu needs %u bytes, %zu left)",
				    pos - 4, csize, inlen - pos);
		size_t room = outcap - produced;
		int cap = (int)(room < LZ4_LEGACY_BLOCK ? room : LZ4_LEGACY_BLOCK);
		int n = LZ4_decompress_safe((const char *)in + pos, (char *)out + produced,
					    (int)csize, cap);
		if (n < 0)
			return fail_with(err, errlen,
				    "lz4 payload: block at offset %zu is corrupt or decompresses past the %zu declared bytes",
				    pos - 4, outcap);
		produced += (size_t)n;
		pos += csize;
	}
	return 0;
}

static int decode_zstd(const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
		       char *err, size_t errlen)
{
	/* Bound the frame first so the size trailer is not read as a frame. */
	size_t frame = ZSTD_findFrameCompressedSize(in, inlen);
	if (ZSTD_isError(frame))
		return fail_with(err, errlen, "zstd payload: %s", ZSTD_getErrorName(frame));
	unsigned long long content = ZSTD_getFrameContentSize(in, frame);
	if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != ZSTD_CONTENTSIZE_ERROR &&
	    content != outcap)
		return fail_with(err, errlen,
			    "zstd payload: frame declares %llu bytes but the size trailer declares %zu",
			    content, outcap);
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	if (!dctx)
		return fail_with(err, errlen, "zstd payload: out of memory");
	/*
	 * zstd -22 --ultra may use windows beyond the default limit (2^27);
	 * 2^31 is zstd's own maximum on 64-bit hosts. The output buffer bounds
	 * what the window can reference anyway.
	 */
	ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 31);
	size_t n = ZSTD_decompressDCtx(dctx, out, outcap, in, frame);
	ZSTD_freeDCtx(dctx);
	if (ZSTD_isError(n))
		return fail_with(err, errlen, "zstd payload: %s", ZSTD_getErrorName(n));
	return check_length("zstd", n, outcap, err, errlen);
}

/*
 * Which decoder a payload needs: its magic bytes, as the kernel's own
 * decompress_method() tells them apart.
 */
enum payload_kind { GZIP, XZ, LZMA, LZ4, ZSTD };

static int payload_kind(const uint8_t *in, size_t inlen, enum payload_kind *kind,
			const char **format_name, char *err, size_t errlen)
{
	*format_name = NULL;
	if (has_magic(in, inlen, "\x1f\x8b", 2) || has_magic(in, inlen, "\x1f\x9e", 2))
		*kind = GZIP, *format_name = "gzip";
	else if (has_magic(in, inlen, "\xfd\x37\x7a\x58\x5a\x00", 6))
		*kind = XZ, *format_name = "xz";
	else if (has_magic(in, inlen, "\x5d\x00\x00", 3))
		*kind = LZMA, *format_name = "lzma";
	else if (has_magic(in, inlen, "\x02\x21\x4c\x18", 4))
		*kind = LZ4, *format_name = "lz4";
	else if (has_magic(in, inlen, "\x28\xb5\x2f\xfd", 4))
		*kind = ZSTD, *format_name = "zstd";
	else if (has_magic(in, inlen, "\x42\x5a\x68", 3) ||
		 has_magic(in, inlen, "\x89\x4c\x5a", 3)) {
		*format_name = in[0] == 0x42 ? "bzip2" : "lzo";
		return fail_with(err, errlen,
			    "%s-compressed kernels are unsupported by host decompression (use the classic boot path)",
			    *format_name);
	} else if (inlen < 4)
		return fail_with(err, errlen, "kernel payload is only %zu bytes long", inlen);
	else
		return fail_with(err, errlen,
			    "kernel payload has unknown compression (first bytes %02x %02x %02x %02x)",
			    in[0], in[1], in[2], in[3]);
	return 0;
}

/* The format and the declared size, both checked; kernel_payload_probe's work. */
static int probe(const uint8_t *in, size_t inlen, size_t *declared, enum payload_kind *kind,
		 const char **format_name, char *err, size_t errlen)
{
	*declared = 0;
	if (payload_kind(in, inlen, kind, format_name, err, errlen) != 0)
		return -1;
	/* Smallest sane payload: some stream bytes plus the 4-byte trailer. */
	if (inlen < 16)
		return fail_with(err, errlen, "%s payload is only %zu bytes long", *format_name, inlen);
	if (inlen > KERNEL_DECOMPRESS_MAX)
		return fail_with(err, errlen, "%s payload of %zu bytes exceeds the %llu MiB limit",
			    *format_name, inlen, KERNEL_DECOMPRESS_MAX >> 20);
	size_t size = le32(in + inlen - 4);
	if (size == 0 || size > KERNEL_DECOMPRESS_MAX)
		return fail_with(err, errlen,
			    "%s payload declares an absurd decompressed size of %zu bytes (limit %llu MiB)",
			    *format_name, size, KERNEL_DECOMPRESS_MAX >> 20);
	*declared = size;
	return 0;
}

int kernel_payload_probe(const uint8_t *in, size_t inlen, size_t *declared,
			 const char **format_name, char *err, size_t errlen)
{
	enum payload_kind kind;
	return probe(in, inlen, declared, &kind, format_name, err, errlen);
}

int kernel_decompress_into(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen,
			   char *err, size_t errlen)
{
	size_t declared;
	enum payload_kind kind;
	const char *format;
	if (probe(in, inlen, &declared, &kind, &format, err, errlen) != 0)
		return -1;
	if (outlen != declared)
		return fail_with(err, errlen,
			    "%s payload declares %zu bytes but the output buffer holds %zu", format,
			    declared, outlen);
	switch (kind) {
	case GZIP: return inflate_gzip(in, inlen, out, declared, err, errlen);
	case XZ: return decode_lzma_family("xz", true, in, inlen, out, declared, err, errlen);
	case LZMA: return decode_lzma_family("lzma", false, in, inlen, out, declared, err, errlen);
	case LZ4: return decode_lz4_legacy(in, inlen, out, declared, err, errlen);
	default: return decode_zstd(in, inlen, out, declared, err, errlen);
	}
}

int kernel_decompress(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
		      const char **format_name, char *err, size_t errlen)
{
	*out = NULL;
	*outlen = 0;
	size_t declared;
	if (kernel_payload_probe(in, inlen, &declared, format_name, err, errlen) != 0)
		return -1;
	uint8_t *buf = alloc_output(declared);
	if (!buf)
		return fail_with(err, errlen, "cannot allocate %zu bytes for the decompressed kernel",
			    declared);
	if (kernel_decompress_into(in, inlen, buf, declared, err, errlen) != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = declared;
	return 0;
}
