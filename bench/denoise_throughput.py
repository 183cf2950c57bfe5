#!/usr/bin/python3
"""Megapixels per second and peak memory of `peaknas-worker denoise` against a PyTorch loop.

  cmake --build --preset release --target peaknas-worker
  /usr/bin/python3 bench/denoise_throughput.py [--megapixels 12,48] [--rounds 2]

For each network (a small and a mid-sized one), a model is trained a few steps and exported
(`peaknas-worker once --export`), and its process's own footprint is measured on a small image
and given to peaknas as a calibration's overhead, so that the budget is the whole process's.
Noisy PNGs of each size are generated (tests/worker/make_big_png.py). For each size and round,
in one run and alternating which goes first, it runs

  * peaknas: `peaknas-worker denoise --budget B --calibration C --threads T` (it picks the
    largest tile whose rows, codecs and window fit B and reads, computes and writes in bands,
    overlapping the three), and
  * the same with `--layout contiguous` (the network in NCHW, as the peer runs it), and
    with `--allocator heap` (freed memory kept in the heap: the budget no longer bounds what
    the heap keeps), and
  * the peer: bench/denoise_peer.py, a plain PyTorch loop over the same exported model with
    the same tile and overlap (whole image in, tiles stitched, whole image out), as such a
    loop is written (contiguous) and with the model and windows channels-last,

each in a process of its own. Throughput is megapixels over the seconds from opening the
image to the saved output (each program times that itself; process start and model loading
are not in it); the peak is the process's resident high-water mark, as each reads it at its end
from /proc/self/status (VmHWM: ru_maxrss would also count the spawning parent's resident set
from before the exec). Both outputs
are compared (they compute the same windows): the mean absolute difference is printed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A small and a mid-sized network of the family (the compute per pixel differs by about 4x).
ARCHS = {
    "small": ('{"levels": 3, "widths": [8, 16, 32], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1],'
              ' "skip": "concat", "upsample": "transposed", "downsample": "strided",'
              ' "activation": "relu"}'),
    "mid": ('{"levels": 3, "widths": [16, 32, 64], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1],'
            ' "skip": "add", "upsample": "bilinear", "downsample": "maxpool",'
            ' "activation": "lrelu"}'),
}


def run(argv):
    """Runs argv to completion; exits with its stderr if it fails."""
    child = subprocess.run(argv, capture_output=True)
    if child.returncode != 0:
        sys.exit(f"{argv[0]} failed ({child.returncode}): {child.stderr.decode()[-3000:]}")


def run_report(argv):
    """Runs argv; returns the JSON object it prints."""
    child = subprocess.run(argv, capture_output=True)
    if child.returncode != 0:
        sys.exit(f"{argv[0]} failed ({child.returncode}): {child.stderr.decode()[-3000:]}")
    return json.loads(child.stdout)


def mean_abs_difference(a, b):
    from PIL import Image
    import numpy as np
    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.int16)
    return float(np.abs(x - y).mean()) if x.shape == y.shape else float("inf")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    parser.add_argument("--megapixels", default="12,48",
                        help="image sizes in megapixels, 4:3 (default 12,48)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each program per size")
    parser.add_argument("--budget", default="256MiB", help="peaknas's budget (default 256MiB)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads, both programs")
    args = parser.parse_args()
    worker = os.path.join(args.build, "worker", "peaknas-worker")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="peaknas-denoise-bench-") as tmp:
        data = os.path.join(tmp, "data")
        run([worker, "make-data", "--out", data, "--scenes", "1", "--size", "160",
             "--val-images", "1", "--val-blocks", "2", "--block-size", "32", "--seed", "9"])
        small_image = os.path.join(tmp, "small.png")
        run([python, os.path.join(ROOT, "tests", "worker", "make_big_png.py"), small_image,
             "160", "160"])
        images = []
        for mp in (float(v) for v in args.megapixels.split(",")):
            w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
            h = int(round(mp * 1e6 / w))
            images.append((w, h, os.path.join(tmp, f"in-{w}x{h}.png")))
            run([python, os.path.join(ROOT, "tests", "worker", "make_big_png.py"), images[-1][2],
                 str(w), str(h)])
        print(f"budget {args.budget} (the whole peaknas process), {args.threads} intra-op "
              f"threads, {args.rounds} rounds per size")
        for name, arch in ARCHS.items():
            model = os.path.join(tmp, f"{name}.pt")
            run([worker, "once", "--arch", arch, "--data", data, "--steps", "20", "--patch",
                 "32", "--tile", "32", "--latency-runs", "1", "--export", model])
            footprint = run_report([worker, "denoise", "--model", model, "--in", small_image,
                                    "--out", os.path.join(tmp, "small-out.png"), "--budget",
                                    "1GiB", "--threads", str(args.threads)])
            calibration = os.path.join(tmp, f"{name}-calibration.json")
            with open(calibration, "w") as f:
                json.dump({"deviceProfile": "cpu", "framework": "bench", "inference": {
                    "samples": 8, "overheadBytes": footprint["process_peak_bytes"],
                    "slope": 1.0, "margin": 1.05, "quantile": 0.99}}, f)
            print(f"\n{name} network: {arch}")
            print(f"{'image':>14} {'program':>8} {'MP/s':>7} {'seconds':>8} {'peak MiB':>9} "
                  f"{'tile':>5}")
            bench_network(args, worker, python, model, calibration, images, tmp)
    return 0


# The programs of each round: peaknas with its defaults (`mapped`: channels-last unless the
# network upsamples by transposed convolutions), peaknas in the contiguous layout, peaknas with
# the heap allocator; the peer as a plain loop does it, and the peer channels-last.
PROGRAMS = ("peaknas", "contig", "heap", "peer", "peer-cl")


def bench_network(args, worker, python, model, calibration, images, tmp):
    """Prints, per image, every program's medians and peaknas's ratios to the peers."""
    for w, h, image in images:
        runs = {name: [] for name in PROGRAMS}
        tile = overlap = layout = None
        for r in range(args.rounds):
            # Round 0 runs peaknas first (its tile is then known); later rounds alternate.
            order = PROGRAMS if r % 2 == 0 else PROGRAMS[3:] + PROGRAMS[:3]
            for who in order:
                if who in ("peaknas", "contig", "heap"):
                    extra = {"peaknas": [], "contig": ["--layout", "contiguous"],
                             "heap": ["--allocator", "heap"]}[who]
                    report = run_report(
                        [worker, "denoise", "--model", model, "--in", image, "--out",
                         os.path.join(tmp, f"{who}.png"), "--budget", args.budget,
                         "--calibration", calibration, "--threads", str(args.threads)] + extra)
                    if who == "peaknas":
                        tile, overlap, layout = report["tile"], report["overlap"], report["layout"]
                    runs[who].append((report["seconds"], report["process_peak_bytes"]))
                else:
                    report = run_report(
                        [python, os.path.join(ROOT, "bench", "denoise_peer.py"), model,
                         image, os.path.join(tmp, f"{who}.png"), str(tile), str(overlap),
                         "4", str(args.threads),
                         "channels-last" if who == "peer-cl" else "contiguous"])
                    runs[who].append((report["seconds"], report["process_peak_bytes"]))
        megapixels = w * h / 1e6
        label = f"{w}x{h}"
        for name in PROGRAMS:
            seconds = statistics.median(s for s, _ in runs[name])
            peak = max(k for _, k in runs[name]) / 2**20
            print(f"{label:>14} {name:>8} {megapixels / seconds:7.2f} {seconds:8.1f} "
                  f"{peak:9.1f} {tile:5d}")
        print(f"{label:>14} peaknas runs {layout}")
        for name in ("peaknas", "contig", "heap"):
            for peer in ("peer", "peer-cl"):
                ratio = (statistics.median(s for s, _ in runs[peer]) /
                         statistics.median(s for s, _ in runs[name]))
                spread = [p[0] / o[0] for o, p in zip(runs[name], runs[peer])]
                print(f"{label:>14} {name}/{peer} throughput {ratio:.2f}x (per round "
                      f"{min(spread):.2f}-{max(spread):.2f}x)")
        for name in ("peaknas", "peer-cl"):
            difference = mean_abs_difference(os.path.join(tmp, f"{name}.png"),
                                             os.path.join(tmp, "peer.png"))
            print(f"{label:>14} {name} and peer outputs differ by {difference:.3f} on average "
                  f"(of 255)")


if __name__ == "__main__":
    sys.exit(main())
