#!/usr/bin/python3
"""Writes a large noisy RGB PNG band by band, in little memory (a test image, not stored).

  make_big_png.py OUT.png WIDTH HEIGHT [--bits 8|16] [--seed S]

The picture is smooth shapes (sums of sines) with Gaussian noise of sigma 25/255, so a denoiser
has something to do; 64 rows are generated, filtered and compressed at a time.
"""
import argparse
import struct
import sys
import zlib

import numpy as np


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("width", type=int)
    parser.add_argument("height", type=int)
    parser.add_argument("--bits", type=int, choices=(8, 16), default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    w, h = args.width, args.height
    rng = np.random.default_rng(args.seed)
    top = (1 << args.bits) - 1
    dtype = ">u2" if args.bits == 16 else "u1"
    x = np.arange(w, dtype=np.float32)[None, :, None]
    phase = np.array([0.0, 2.1, 4.2], dtype=np.float32)[None, None, :]
    compress = zlib.compressobj(1)
    with open(args.out, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, args.bits, 2, 0, 0, 0)))
        for y0 in range(0, h, 64):
            y = np.arange(y0, min(h, y0 + 64), dtype=np.float32)[:, None, None]
            clean = 0.5 + 0.25 * np.sin(x / 37.0 + phase) * np.cos(y / 53.0 - phase)
            noisy = clean + rng.normal(0, 25 / 255, clean.shape).astype(np.float32)
            rows = np.clip(np.rint(noisy * top), 0, top).astype(dtype)
            raw = np.concatenate(
                [np.zeros((rows.shape[0], 1), np.uint8),  # filter type 0 per row
                 rows.reshape(rows.shape[0], -1).view(np.uint8)], axis=1)
            data = compress.compress(raw.tobytes())
            if data:
                f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IDAT", compress.flush()))
        f.write(chunk(b"IEND", b""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
