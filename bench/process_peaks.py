#!/usr/bin/python3
"""What the operating system sees beside what the allocator counts: for random U-Nets of the
search family, `peaknas-worker once` (one trial in a fresh process, one intra-op thread) reports
the cost model's predicted allocator peaks, the measured allocator peaks, and the process's
resident-set high-water mark (VmHWM) right after the inference measurement and at the end of the
trial. This prints them side by side and a least-squares line of the process inference peak
against the predicted allocator peak (overhead + slope x predicted), with the worst residuals:
the data a device calibration (fixed overhead + proportional part) is fitted on.

  cmake --build --preset release --target peaknas-worker
  /usr/bin/python3 bench/process_peaks.py --archs 8 --seed 1

Data: a generated dataset (make-data, seed 0) in a temporary directory. Architectures: 1-4
levels, widths 8-128 (non-decreasing), 1-2 blocks, every kind; tiles 128, 256 or 512; 10 steps.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 2.0 ** 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", default=os.path.join(ROOT, "build/release/worker/peaknas-worker"))
    ap.add_argument("--archs", type=int, default=8, help="architectures to run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="peaknas-process-peaks-") as tmp:
        data = os.path.join(tmp, "syn")
        subprocess.run([args.worker, "make-data", "--out", data], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"{'levels':>6} {'widths':<18} {'tile':>4} | {'inference MiB: predicted':>24} "
              f"{'measured':>9} {'process':>8} | {'training MiB: predicted':>23} "
              f"{'measured':>9} {'trial process':>13}")
        for _ in range(args.archs):
            levels = rng.randint(1, 4)
            widths = sorted(rng.choice(range(8, 129, 8)) for _ in range(levels))
            arch = {"levels": levels, "widths": widths,
                    "enc_blocks": [rng.randint(1, 2) for _ in range(levels)],
                    "dec_blocks": [rng.randint(1, 2) for _ in range(levels - 1)],
                    "skip": rng.choice(["concat", "add"]),
                    "upsample": rng.choice(["transposed", "bilinear", "pixelshuffle"]),
                    "downsample": rng.choice(["strided", "maxpool"]), "activation": "relu"}
            tile = rng.choice([128, 256, 512])
            run = subprocess.run(
                [args.worker, "once", "--arch", json.dumps(arch), "--data", data, "--steps", "10",
                 "--tile", str(tile), "--train-batch", "8", "--patch", "64", "--threads", "1",
                 "--latency-runs", "1"], capture_output=True, text=True)
            if run.returncode != 0:
                print("once failed:", run.stderr.strip().splitlines()[-1:], file=sys.stderr)
                continue
            r = json.loads(run.stdout)
            r["tile"] = tile
            rows.append(r)
            print(f"{levels:>6} {str(widths):<18} {tile:>4} | "
                  f"{r['predicted_inference_peak_bytes'] / MIB:>24.1f} "
                  f"{r['measured_inference_peak_bytes'] / MIB:>9.1f} "
                  f"{r['process_inference_peak_bytes'] / MIB:>8.1f} | "
                  f"{r['predicted_train_peak_bytes'] / MIB:>23.1f} "
                  f"{r['measured_train_peak_bytes'] / MIB:>9.1f} "
                  f"{r['process_train_peak_bytes'] / MIB:>13.1f}", flush=True)
    if len(rows) >= 2:
        xs = [r["predicted_inference_peak_bytes"] / MIB for r in rows]
        ys = [r["process_inference_peak_bytes"] / MIB for r in rows]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
        overhead = my - slope * mx
        ratios = [y / (overhead + slope * x) for x, y in zip(xs, ys)]
        print(f"process inference peak ~ {overhead:.1f} MiB + {slope:.2f} x predicted allocator "
              f"peak (least squares, {n} runs); measured / fitted in "
              f"[{min(ratios):.3f}, {max(ratios):.3f}]")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
