#!/usr/bin/python3
"""Compares two uncompressed 16-bit RGB TIFFs as `peaknas-worker denoise` writes them.

  compare_tiffs.py A.tif B.tif WIDTH HEIGHT [--max-diff N]

Exits non-zero with the reason unless both are WIDTH x HEIGHT RGB16 in strips, agree to N
steps of 65535 (default 1) sample for sample, and resolve finer steps than 8 bits do.
`samples` reads one such TIFF (bench/overlap_psnr.py uses it too).
"""
import argparse
import struct
import sys

import numpy as np


def samples(path, width=None, height=None):
    """The samples of an uncompressed 16-bit RGB TIFF in strips, as integers; of WIDTH x HEIGHT
    pixels when given."""
    b = open(path, "rb").read()
    assert b[:4] == b"II*\x00", (path, b[:4])
    (ifd,) = struct.unpack("<I", b[4:8])
    (n,) = struct.unpack("<H", b[ifd:ifd + 2])
    tags = {}
    for i in range(n):
        tag, kind, count, value = struct.unpack("<HHII", b[ifd + 2 + 12 * i: ifd + 14 + 12 * i])
        tags[tag] = (kind, count, value)
    if width is not None:
        assert tags[256][2] == width and tags[257][2] == height, (path, tags)
    assert tags[277][2] == 3 and tags[259][2] == 1, (path, tags)  # RGB, uncompressed
    bits = tags[258]
    assert bits[1] == 3 and struct.unpack("<3H", b[bits[2]:bits[2] + 6]) == (16, 16, 16), bits

    def values(tag):
        kind, count, value = tags[tag]
        if count == 1:
            return [value]
        code, size = {3: ("H", 2), 4: ("I", 4)}[kind]
        return list(struct.unpack("<%d%s" % (count, code), b[value:value + size * count]))

    data = b"".join(b[o:o + c] for o, c in zip(values(273), values(279)))
    return np.frombuffer(data, "<u2").astype(np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("width", type=int)
    parser.add_argument("height", type=int)
    parser.add_argument("--max-diff", type=int, default=1)
    args = parser.parse_args()
    a = samples(args.a, args.width, args.height)
    b = samples(args.b, args.width, args.height)
    assert a.size == args.width * args.height * 3, a.size
    diff = np.abs(a - b)
    assert diff.max() <= args.max_diff, ("largest difference", diff.max())
    assert np.unique(a % 257).size > 1, "no finer steps than 8 bits"
    print("largest difference %d of 65535, %d samples differ" % (diff.max(), (diff > 0).sum()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
