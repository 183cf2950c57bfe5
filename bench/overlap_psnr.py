#!/usr/bin/python3
"""What a smaller tile overlap costs: PSNR of tiled against whole-image output.

  cmake --build --preset release --target peaknas-worker
  /usr/bin/python3 bench/overlap_psnr.py [--tile 64]

For a small and a mid-sized trained network (trained a few steps on a generated dataset, as in
bench/denoise_throughput.py), a 1024 x 768 noisy test image is denoised whole (one window) and
tiled at --tile with each overlap from 0 up to the seam-free one (the receptive-field radius
rounded up to the network's multiple, `denoise`'s default). Prints, per
overlap, the PSNR of the tiled output against the whole-image output (16-bit TIFFs; inf:
equal) and the largest difference, in 8-bit steps.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from denoise_throughput import ARCHS, run, run_report  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "worker"))
from compare_tiffs import samples  # noqa: E402


def read16(path):
    """The samples of an uncompressed 16-bit RGB TIFF (as `denoise` writes it), in [0, 1]."""
    return samples(path).astype(np.float64) / 65535.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    parser.add_argument("--tile", type=int, default=64)
    args = parser.parse_args()
    worker = os.path.join(args.build, "worker", "peaknas-worker")
    with tempfile.TemporaryDirectory(prefix="peaknas-overlap-") as tmp:
        data = os.path.join(tmp, "data")
        run([worker, "make-data", "--out", data, "--scenes", "1", "--size", "160",
             "--val-images", "1", "--val-blocks", "2", "--block-size", "32", "--seed", "9"])
        image = os.path.join(tmp, "in.png")
        run([sys.executable, os.path.join(ROOT, "tests", "worker", "make_big_png.py"), image,
             "1024", "768", "--bits", "16"])
        print(f"tile {args.tile}, 1024x768 16-bit test image")
        for name, arch in ARCHS.items():
            model = os.path.join(tmp, f"{name}.pt")
            run([worker, "once", "--arch", arch, "--data", data, "--steps", "20", "--patch",
                 "32", "--tile", "32", "--latency-runs", "1", "--export", model])
            whole_path = os.path.join(tmp, "whole.tif")
            whole_report = run_report([worker, "denoise", "--model", model, "--in", image,
                                       "--out", whole_path, "--budget", "8GiB"])
            assert whole_report["tiles"] == 1, whole_report
            whole = read16(whole_path)
            seam_free = whole_report["overlap"]
            print(f"\n{name} network: {arch}\nseam-free overlap {seam_free}")
            print(f"{'overlap':>8} {'PSNR dB':>8} {'max diff (8-bit steps)':>23}")
            for overlap in range(0, seam_free + 1, 4):
                path = os.path.join(tmp, f"tiled-{overlap}.tif")
                run([worker, "denoise", "--model", model, "--in", image, "--out", path,
                     "--budget", "8GiB", "--tile", str(args.tile), "--overlap", str(overlap)])
                diff = read16(path) - whole
                mse = float(np.mean(diff ** 2))
                psnr = math.inf if mse == 0 else 10 * math.log10(1 / mse)
                print(f"{overlap:8d} {psnr:8.1f} {np.abs(diff).max() * 255:23.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
