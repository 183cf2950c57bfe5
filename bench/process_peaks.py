#!/usr/bin/python3
"""What the operating system sees beside what the allocator counts: for random U-Nets of the
search family, `peaknas-worker once` (one trial in a fresh process, one intra-op thread) reports
the cost model's predicted allocator peaks, the measured allocator peaks, and each pass's process
peak (the resident-set high-water mark during that pass alone, large blocks mapped, less the
input data: worker/measure.h). This prints them side by side, then per pass the device
calibration of search/calibration.h fitted on all runs, and fitted on half of them with its
calibrated / measured ratios on the other half (architectures the fit never saw).

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


T99 = [31.821, 6.965, 4.541, 3.747, 3.365, 3.143, 2.998, 2.896, 2.821, 2.764, 2.718, 2.681,
       2.650, 2.624, 2.602, 2.583, 2.567, 2.552, 2.539, 2.528, 2.518, 2.508, 2.500, 2.492, 2.485,
       2.479, 2.473, 2.467, 2.462, 2.457]


def t99(df):
    if df <= 30:
        return T99[df - 1]
    z = 2.326348
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df)


def fit(points):
    """search/calibration.cc's fit (below 100 points): least squares of y = a + b x on relative
    residuals, and as margin the one-sided 0.99 normal prediction bound of the measured / line
    ratios, at least their largest. Returns (a, b, margin, min ratio, max ratio)."""
    s = sx = sy = sxx = sxy = 0.0
    for x, y in points:
        w = 1 / (y * y)
        s, sx, sy, sxx, sxy = s + w, sx + w * x, sy + w * y, sxx + w * x * x, sxy + w * x * y
    slope = (s * sxy - sx * sy) / (s * sxx - sx * sx)
    overhead = (sy - slope * sx) / s
    ratios = [y / (overhead + slope * x) for x, y in points]
    n = len(ratios)
    mean = sum(ratios) / n
    sd = (sum((r - mean) ** 2 for r in ratios) / (n - 1)) ** 0.5
    bound = mean + t99(n - 1) * sd * (1 + 1 / n) ** 0.5
    return overhead, slope, max(1.0, max(ratios), bound), min(ratios), max(ratios)


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
              f"{'measured':>9} {'process':>8}")
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
                  f"{r['process_train_peak_bytes'] / MIB:>8.1f}", flush=True)
    for name, predicted, process in [
            ("inference", "predicted_inference_peak_bytes", "process_inference_peak_bytes"),
            ("training step", "predicted_train_peak_bytes", "process_train_peak_bytes")]:
        points = [(r[predicted] / MIB, r[process] / MIB) for r in rows if r[process] > 0]
        if len(points) < 8:
            continue
        overhead, slope, margin, lo, hi = fit(points)
        print(f"{name}: process peak ~ {overhead:.1f} MiB + {slope:.3f} x predicted allocator "
              f"peak over {len(points)} runs; measured / line in [{lo:.3f}, {hi:.3f}]")
        # Held out: fitted on the even runs, predicting the odd ones.
        overhead, slope, margin, _, _ = fit(points[::2])
        # Plus 1 MiB, the measurement's resolution (search::kCalibrationResolutionBytes).
        ratios = [(margin * (overhead + slope * x) + 1) / y for x, y in points[1::2]]
        print(f"  fitted on {len(points[::2])} runs, on the {len(ratios)} others: calibrated / "
              f"measured in [{min(ratios):.3f}, {max(ratios):.3f}]")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
