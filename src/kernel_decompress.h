/*
 * Host-side decompression of a bzImage payload (the compressed vmlinux).
 *
 * Linux's build compresses vmlinux.bin (the stripped vmlinux ELF, with the
 * KASLR relocation table appended when the kernel has one) with one of
 * gzip, bzip2, lzma, xz, lzo, lz4 or zstd, then appends the decompressed
 * length as a 4-byte little-endian number ("size_append"; gzip's own ISIZE
 * trailer plays that role for gzip). arch/x86/boot/compressed/mkpiggy.c
 * reads those last 4 bytes for every format, and so do we: they size the
 * output buffer up front, and the stream must produce exactly that many
 * bytes, so a corrupt or hostile payload can neither overrun the buffer nor
 * make us allocate without bound (KERNEL_DECOMPRESS_MAX caps the claim).
 *
 * The format is recognised by its magic bytes, as the kernel's own
 * decompress_method() does. gzip, xz, lzma (legacy .lzma), lz4 (the legacy
 * frame of `lz4 -l`) and zstd are decoded with the system libraries; bzip2
 * and lzo are recognised and refused with a clear message because khyve does
 * not link those libraries (boot such a kernel with the classic path, which
 * lets the guest decompress itself).
 */
#ifndef KHYVE_KERNEL_DECOMPRESS_H
#define KHYVE_KERNEL_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* Largest decompressed kernel we accept; real ones are 30-100 MiB. */
#define KERNEL_DECOMPRESS_MAX (512ULL << 20)

/*
 * Recognise a payload's format and read its declared decompressed size (the
 * size trailer), refusing an unknown format or an absurd size. Returns 0,
 * or -1 with a one-line reason in err (format_name is set whenever the
 * format was recognised, NULL otherwise).
 */
int kernel_payload_probe(const uint8_t *in, size_t inlen, size_t *declared,
			 const char **format_name, char *err, size_t errlen);

/*
 * Decompress a payload into out, which must hold exactly the declared size
 * (kernel_payload_probe). The caller owns out: a loader can decompress
 * straight into guest memory (linux_boot.c). On failure out is partly
 * written. Returns 0, or -1 with a one-line reason in err.
 */
int kernel_decompress_into(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen,
			   char *err, size_t errlen);

/*
 * Decompress a kernel payload (compressed stream + 4-byte LE size trailer).
 * On success *out is a malloc'd buffer of *outlen bytes (the caller frees
 * it) and *format_name a static name ("gzip", "xz", "lzma", "lz4", "zstd").
 * Returns 0, or -1 with a one-line reason in err (format_name is still set
 * when the format was recognised, NULL otherwise).
 */
int kernel_decompress(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
		      const char **format_name, char *err, size_t errlen);

#endif
