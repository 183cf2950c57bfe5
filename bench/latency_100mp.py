#!/usr/bin/python3
"""The frontier's 100-MP latency: the roofline's prediction against the worker's measurement.

  cmake --build --preset release --target peaknas peaknas-worker
  /usr/bin/python3 bench/latency_100mp.py [--budget 256MiB] [--threads 1] [--full small,mid]

For each architecture below, at one inference budget:

  * predicted: `peaknas estimate --arch A --budget B --json` gives the pass the frontier ranks
    by (a 10000x10000 image denoised seam-free at the largest tile whose window fits B:
    latency_100mp_tile, latency_100mp_overlap, latency_100mp_windows) and the roofline's seconds
    for it on the cpu profile (latency_100mp_s);
  * measured: `peaknas-worker once --latency-tile T` trains the network one step and times the
    same pass as a worker does after every trial, one window of each distinct shape times the
    windows of that shape (tiled_100mp_s);
  * for the architectures named by --full, the extrapolation is checked against the real thing:
    `peaknas-worker denoise --tile T` on a generated 10000x10000 PNG
    (tests/worker/make_big_png.py) with the same model, whose network_seconds is the time spent
    in the network over the whole image (reading and writing overlap with it and are not in it).

Everything runs in this process's machine at --threads intra-op threads, one program at a time.
Prints a Markdown table: seconds, and the ratios measured / roofline and extrapolated / full.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def arch(widths, enc, dec, skip="add", up="transposed", down="strided", act="relu"):
    return json.dumps({"levels": len(widths), "widths": widths, "enc_blocks": enc,
                       "dec_blocks": dec, "skip": skip, "upsample": up, "downsample": down,
                       "activation": act})


# From small to mid-sized, covering every upsampling and downsampling kind.
ARCHS = {
    "small": arch([8, 16, 32], [1, 1, 1], [1, 1], skip="concat"),
    "mid": arch([16, 32, 64, 128], [1, 1, 1, 2], [1, 1, 1]),
    "bilinear": arch([16, 32, 64], [2, 2, 2], [1, 1], up="bilinear", down="maxpool"),
    "shuffle": arch([16, 32, 64, 64], [1, 1, 2, 2], [1, 1, 1], up="pixelshuffle", act="lrelu"),
    "wide": arch([32, 64], [2, 2], [2], skip="concat"),
    "deep": arch([8, 16, 32, 64, 128], [1, 1, 1, 1, 1], [1, 1, 1, 1], up="bilinear"),
}


def run_json(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("failed: " + " ".join(cmd) + "\n" + done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    parser.add_argument("--budget", default="256MiB")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--full", default="small,mid",
                        help="architectures whose extrapolation is checked by a full pass")
    parser.add_argument("--only", default="", help="comma-separated subset of the architectures")
    args = parser.parse_args()
    peaknas = os.path.join(args.build, "cli", "peaknas")
    worker = os.path.join(args.build, "worker", "peaknas-worker")
    names = [n for n in ARCHS if not args.only or n in args.only.split(",")]
    full = set(args.full.split(",")) if args.full else set()
    with tempfile.TemporaryDirectory(prefix="peaknas-latency-") as work:
        data = os.path.join(work, "data")
        subprocess.run([worker, "make-data", "--out", data, "--scenes", "1", "--size", "128",
                        "--val-images", "1", "--val-blocks", "2", "--block-size", "32"],
                       check=True, capture_output=True)
        big = None
        if full & set(names):
            big = os.path.join(work, "big.png")
            subprocess.run([sys.executable, os.path.join(ROOT, "tests", "worker", "make_big_png.py"),
                            big, "10000", "10000"], check=True)
        rows = []
        for name in names:
            a = ARCHS[name]
            e = run_json([peaknas, "estimate", "--arch", a, "--budget", args.budget, "--json"])
            tile = e["latency_100mp_tile"]
            model = os.path.join(work, name + ".pt")
            m = run_json([worker, "once", "--arch", a, "--data", data, "--steps", "1",
                          "--train-batch", "2", "--patch", "32", "--tile", "64",
                          "--latency-runs", "1", "--threads", str(args.threads),
                          "--latency-tile", str(tile), "--export", model])
            row = {"name": name, "tile": tile, "overlap": e["latency_100mp_overlap"],
                   "windows": e["latency_100mp_windows"], "roofline": e["latency_100mp_s"],
                   "measured": m["tiled_100mp_s"], "full": None}
            if name in full:
                d = run_json([worker, "denoise", "--model", model, "--in", big,
                              "--out", os.path.join(work, name + ".png"), "--budget", "8GiB",
                              "--tile", str(tile), "--threads", str(args.threads)])
                row["full"] = d["network_seconds"]
                os.remove(os.path.join(work, name + ".png"))
            rows.append(row)
            print(f"{name}: {row}", file=sys.stderr, flush=True)
    print(f"budget {args.budget}, {args.threads} intra-op thread(s); seconds per 10000x10000 "
          "image\n")
    print("| network | tile + overlap | windows | roofline (cpu profile) | measured (extrapolated) "
          "| measured / roofline | full pass (network) | extrapolated / full |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        full_text = f"{r['full']:.1f}" if r["full"] else "-"
        check = f"{r['measured'] / r['full']:.3f}" if r["full"] else "-"
        print(f"| {r['name']} | {r['tile']} + {r['overlap']} | {r['windows']} "
              f"| {r['roofline']:.1f} | {r['measured']:.1f} | {r['measured'] / r['roofline']:.2f} "
              f"| {full_text} | {check} |")


if __name__ == "__main__":
    main()
