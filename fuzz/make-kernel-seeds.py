#!/usr/bin/env python3
"""Write the seed corpus of fuzz/fuzz_kernel.c into fuzz/corpus/kernel/.

Each seed is a flags byte (bit 0: boot.classic) and a kernel file:
  elf-vmlinux       a tiny vmlinux ELF (text, data + bss), loaded from the file
  bzimage-gzip      a protocol 2.15 bzImage whose gzip payload is a vmlinux laid
                    out as Linux links one (first segment at file offset 2 MiB,
                    physical pref_address; the last moved down), so the host
                    path decompresses it in place in guest RAM
  bzimage-xz        the same with an xz payload (CRC32 check, as the kernel's)
  bzimage-lz4       the tiny ELF in an lz4 legacy frame (literals only)
  bzimage-classic   the gzip bzImage of the tiny ELF, booted the classic way
The compressed seeds stay a few KiB; rerun this after changing the formats.
"""
import gzip
import lzma
import os
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "kernel")
PREF = 0x1000000


def elf(segments, size):
    """ELF64 x86-64 ET_EXEC of `size` bytes; segments: (offset, paddr, filesz, memsz)."""
    b = bytearray(size)
    phoff, n = 64, len(segments)
    b[0:16] = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", b, 16, 2, 62, 1, segments[0][1], phoff, 0, 0, 64, 56, n, 0, 0, 0)
    for i, (off, paddr, filesz, memsz) in enumerate(segments):
        struct.pack_into("<IIQQQQQQ", b, phoff + 56 * i, 1, 7, off, 0xFFFFFFFF80000000 + paddr,
                         paddr, filesz, memsz, 0x1000)
        for j in range(filesz):
            b[off + j] = (j * 7 + i * 31 + 1) & 0xFF
    return bytes(b)


TINY = elf([(0x200, PREF, 0x100, 0x100), (0x300, PREF + 0x200000, 0x80, 0x1000)], 0x380)
LIKE_VMLINUX = elf([(0x200000, PREF, 0x1000, 0x1000),
                    (0x400000, PREF + 0x200000, 0x800, 0x800),
                    (0x600000, PREF + 0x208000, 0x300, 0x300),
                    (0x610000, PREF + 0x20B000, 0x2000, 0x3000)], 0x612000)


def bzimage(payload, init_size):
    setup_sects, pm_payload_offset = 4, 0x400
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200:0x202] = b"\xeb\x6a"          # jmp over the header (ends at 0x26c)
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)
    setup[0x211] = 0x01                       # LOADED_HIGH
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)   # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)     # kernel_alignment
    setup[0x234] = 1                          # relocatable
    setup[0x235] = 21
    struct.pack_into("<H", setup, 0x236, 0x3)          # XLF_KERNEL_64 | above 4G
    struct.pack_into("<I", setup, 0x238, 2047)         # cmdline_size
    struct.pack_into("<II", setup, 0x248, pm_payload_offset, len(payload))
    struct.pack_into("<Q", setup, 0x258, PREF)         # pref_address
    struct.pack_into("<I", setup, 0x260, init_size)
    pm = bytearray(pm_payload_offset)
    pm[0x200] = 0xFC                          # startup_64: cld
    return bytes(setup) + bytes(pm) + payload + bytes(0x100)


def size_trailer(data):
    return struct.pack("<I", len(data))


def lz4_legacy(data):
    """An lz4 -l frame with one literals-only block, then the size trailer."""
    n = len(data)
    token = min(n, 15) << 4
    lit = bytearray([token])
    if n >= 15:
        rest = n - 15
        while rest >= 255:
            lit.append(255)
            rest -= 255
        lit.append(rest)
    block = bytes(lit) + data
    return struct.pack("<I", 0x184C2102) + struct.pack("<I", len(block)) + block + size_trailer(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "elf-vmlinux": b"\0" + TINY,
        "bzimage-gzip": b"\0" + bzimage(gzip.compress(LIKE_VMLINUX, 9, mtime=0), 0x2000000),
        "bzimage-xz": b"\0" + bzimage(lzma.compress(LIKE_VMLINUX, format=lzma.FORMAT_XZ,
                                                     check=lzma.CHECK_CRC32) + size_trailer(LIKE_VMLINUX),
                                       0x2000000),
        "bzimage-lz4": b"\0" + bzimage(lz4_legacy(TINY), 0x800000),
        "bzimage-classic": b"\1" + bzimage(gzip.compress(TINY, 9, mtime=0), 0x800000),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    sys.exit(main())
