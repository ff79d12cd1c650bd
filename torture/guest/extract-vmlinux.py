#!/usr/bin/env python3
"""Writes the uncompressed ELF vmlinux held in an xz-compressed bzImage (Debian's vmlinuz).

QEMU boots the ELF directly through its PVH entry point, which saves the guest the decompression that
takes seconds under software emulation."""
import lzma
import sys

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
start = data.find(b"\xfd7zXZ\x00")
while start >= 0:
    try:
        out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    except lzma.LZMAError:
        out = b""
    if out[:4] == b"\x7fELF":
        open(dst, "wb").write(out)
        sys.exit(0)
    start = data.find(b"\xfd7zXZ\x00", start + 1)
sys.exit(f"extract-vmlinux: no xz-compressed ELF in {src}")
