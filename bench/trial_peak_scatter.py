#!/usr/bin/python3
"""Run-to-run scatter of a whole trial process's resident peak on CPU.

The same trial (architecture, seed, data, one step, one intra-op thread) is run --runs times
as `peaknas-worker once`, each in a fresh process, and its resident-set high-water mark is read
the way a packed worker's watch reads it (/proc/PID/status VmHWM, here every 2 ms; the child
resets it before each measured pass, so the running maximum is kept). Then the same again with
address-space randomization off for the child (`setarch -R`), which shows where the scatter
comes from: glibc places the same sequence of allocations at other offsets when the addresses
of earlier small blocks differ, and the 64-byte aligned 8 MiB activations of the training step
then leave a different number of holes resident.

  cmake --build --preset release --target peaknas-worker
  /usr/bin/python3 bench/trial_peak_scatter.py --runs 12

Prints, per setting, the peaks in MiB (min, median, max) and how many runs gave each value.
"""
import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = ('{"activation":"lrelu","dec_blocks":[],"downsample":"maxpool","enc_blocks":[2],'
        '"levels":1,"skip":"add","upsample":"pixelshuffle","widths":[64]}')


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_once(worker, data, prefix):
    argv = prefix + [worker, "once", "--arch", ARCH, "--data", data, "--steps", "1",
                     "--latency-runs", "1", "--threads", "1", "--seed", "7"]
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while child.poll() is None:
        peak = max(peak, vm_hwm_kib(child.pid))
        time.sleep(0.002)
    _, err = child.communicate()
    if child.returncode != 0:
        sys.exit(f"once failed ({child.returncode}): {err.decode()[-2000:]}")
    return peak / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=12, help="runs per setting (default 12)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    args = parser.parse_args()
    worker = os.path.join(args.build, "worker", "peaknas-worker")
    with tempfile.TemporaryDirectory(prefix="peaknas-scatter-") as work:
        data = os.path.join(work, "data")
        subprocess.run([worker, "make-data", "--out", data, "--scenes", "2", "--pairs-per-scene", "1",
                        "--size", "96", "--val-images", "1", "--val-blocks", "2",
                        "--block-size", "32"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        for name, prefix in (("randomized addresses (default)", []),
                             ("setarch -R (no randomization)", ["setarch", "-R"])):
            peaks = [run_once(worker, data, prefix) for _ in range(args.runs)]
            counts = collections.Counter(round(p) for p in peaks)
            print(f"{name}: {args.runs} runs, peak MiB min {min(peaks):.0f}, median "
                  f"{statistics.median(peaks):.0f}, max {max(peaks):.0f}; "
                  + ", ".join(f"{v} MiB x{n}" for v, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
