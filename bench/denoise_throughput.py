#!/usr/bin/python3
"""Megapixels per second and peak memory of `peaknas-worker denoise` against a PyTorch loop.

  cmake --build --preset release --target peaknas-worker
  /usr/bin/python3 bench/denoise_throughput.py [--megapixels 12,48] [--rounds 2]

A model is trained a few steps and exported (`peaknas-worker once --export`); noisy PNGs of
each size are generated (tests/worker/make_big_png.py). For each size and round, in one run
and alternating which goes first, it runs

  * peaknas: `peaknas-worker denoise --budget B --threads T` (it picks the largest tile that
    fits B and reads, computes and writes in bands, overlapping the three), and
  * the peer: bench/denoise_peer.py, a plain PyTorch loop over the same exported model with
    the same tile and overlap (whole image in, tiles stitched, whole image out),

each in a process of its own. Throughput is megapixels over the seconds from opening the
image to the saved output (each program times that itself; process start and model loading
are not in it); the peak is the process's resident high-water mark (ru_maxrss). Both outputs
are compared (they compute the same windows): the mean absolute difference is printed.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = ('{"levels": 3, "widths": [16, 32, 64], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1], '
        '"skip": "add", "upsample": "bilinear", "downsample": "maxpool", "activation": "lrelu"}')


def run(argv):
    """Runs argv to completion; exits with its stderr if it fails."""
    child = subprocess.run(argv, capture_output=True)
    if child.returncode != 0:
        sys.exit(f"{argv[0]} failed ({child.returncode}): {child.stderr.decode()[-3000:]}")


def run_measured(argv):
    """Runs argv in a child and returns (stdout, the child's ru_maxrss in KiB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{argv[0]} failed: {err.read().decode()[-3000:]}")
        return out.read().decode(), usage.ru_maxrss


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
        data, model = os.path.join(tmp, "data"), os.path.join(tmp, "model.pt")
        run([worker, "make-data", "--out", data, "--scenes", "1", "--size", "160",
             "--val-images", "1", "--val-blocks", "2", "--block-size", "32", "--seed", "9"])
        run([worker, "once", "--arch", ARCH, "--data", data, "--steps", "20", "--patch", "32",
             "--tile", "32", "--latency-runs", "1", "--export", model])
        print(f"model: {ARCH}\nbudget {args.budget}, {args.threads} intra-op threads, "
              f"{args.rounds} rounds per size\n")
        print(f"{'image':>14} {'program':>8} {'MP/s':>7} {'seconds':>8} {'peak MiB':>9} "
              f"{'tile':>5}")
        for mp in (float(v) for v in args.megapixels.split(",")):
            w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
            h = int(round(mp * 1e6 / w))
            image = os.path.join(tmp, f"in-{w}x{h}.png")
            run([python, os.path.join(ROOT, "tests", "worker", "make_big_png.py"), image,
                 str(w), str(h)])
            ours, peer = [], []
            for r in range(args.rounds):
                order = ("peaknas", "peer") if r % 2 == 0 else ("peer", "peaknas")
                for who in order:
                    if who == "peaknas":
                        text, rss = run_measured(
                            [worker, "denoise", "--model", model, "--in", image, "--out",
                             os.path.join(tmp, "ours.png"), "--budget", args.budget,
                             "--threads", str(args.threads)])
                        report = json.loads(text)
                        tile, overlap = report["tile"], report["overlap"]
                        ours.append((report["seconds"], rss))
                    else:  # round 0 runs peaknas first: its tile is known here
                        text, rss = run_measured(
                            [python, os.path.join(ROOT, "bench", "denoise_peer.py"), model,
                             image, os.path.join(tmp, "peer.png"), str(tile), str(overlap),
                             "4", str(args.threads)])
                        peer.append((json.loads(text)["seconds"], rss))
            megapixels = w * h / 1e6
            label = f"{w}x{h}"
            for name, runs in (("peaknas", ours), ("peer", peer)):
                seconds = statistics.median(s for s, _ in runs)
                peak = max(k for _, k in runs) / 1024
                print(f"{label:>14} {name:>8} {megapixels / seconds:7.2f} {seconds:8.1f} "
                      f"{peak:9.0f} {tile:5d}")
            ratio = statistics.median(s for s, _ in peer) / statistics.median(s for s, _ in ours)
            spread = [p[0] / o[0] for o, p in zip(ours, peer)]
            print(f"{label:>14} peaknas/peer throughput {ratio:.2f}x (per round "
                  f"{min(spread):.2f}-{max(spread):.2f}x); outputs differ by "
                  f"{mean_abs_difference(os.path.join(tmp, 'ours.png'), os.path.join(tmp, 'peer.png')):.3f} "
                  f"on average (of 255)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
