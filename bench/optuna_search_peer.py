#!/usr/bin/python3
"""The black-box peer of bench/search_quality.py: Optuna's NSGA-II over the same U-Net space.

Each trial suggests an architecture of the space (levels, per-level widths and blocks, the four
kinds), trains and evaluates it with `peaknas-worker once` (the same trainer, data, steps and
seeds as peaknas's workers), and learns whether it fits the memory budget only after training,
from the measured inference peak (constraints_func: peak - budget <= 0 is feasible), as a user
of a general-purpose optimizer would. Objectives: PSNR (maximize) and peak bytes (minimize).
NSGA-II's population is half the trials (at least 2), so it breeds within a short run.

For the hypervolume the 100-megapixel latency of each architecture comes from
`peaknas estimate --budget` (the same estimate the coordinator uses for its frontier).

Writes a JSON list of the finished trials to --out:
  {"number", "arch", "psnr", "noisy", "peak", "latency_100mp_s", "feasible"}.
Run with Debian's interpreter (python3-optuna): /usr/bin/python3 bench/optuna_search_peer.py ...
"""

import argparse
import json
import logging
import subprocess
import threading

import optuna

SKIPS = ["concat", "add"]
UPSAMPLES = ["transposed", "bilinear", "pixelshuffle"]
DOWNSAMPLES = ["strided", "maxpool"]
ACTIVATIONS = ["relu", "lrelu"]


def suggest(trial, max_levels, max_width):
    levels = trial.suggest_int("levels", 1, max_levels)
    widths = [trial.suggest_int(f"width{i}", 8, max_width, step=8) for i in range(max_levels)]
    enc = [trial.suggest_int(f"enc{i}", 1, 2) for i in range(max_levels)]
    dec = [trial.suggest_int(f"dec{i}", 1, 2) for i in range(max_levels - 1)]
    return {
        "levels": levels, "widths": widths[:levels], "enc_blocks": enc[:levels],
        "dec_blocks": dec[:levels - 1],
        "skip": trial.suggest_categorical("skip", SKIPS),
        "upsample": trial.suggest_categorical("upsample", UPSAMPLES),
        "downsample": trial.suggest_categorical("downsample", DOWNSAMPLES),
        "activation": trial.suggest_categorical("activation", ACTIVATIONS),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", required=True)
    p.add_argument("--peaknas", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--budget", type=int, required=True, help="bytes")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--jobs", type=int, default=2, help="trials trained at once")
    p.add_argument("--max-levels", type=int, default=3)
    p.add_argument("--max-width", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    optuna.logging.set_verbosity(logging.WARNING)

    finished = []
    lock = threading.Lock()

    def objective(trial):
        arch = suggest(trial, args.max_levels, args.max_width)
        text = json.dumps(arch)
        once = subprocess.run(
            [args.worker, "once", "--arch", text, "--data", args.data, "--steps",
             str(args.steps), "--tile", str(args.tile), "--threads", "1", "--seed",
             str(args.seed * 1000 + trial.number), "--progress-every", "100000"],
            check=True, capture_output=True, text=True)
        report = json.loads(once.stdout)
        peak = report["measured_inference_peak_bytes"]
        estimate = json.loads(subprocess.run(
            [args.peaknas, "estimate", "--arch", text, "--tile", str(args.tile), "--budget",
             str(args.budget), "--json"], check=True, capture_output=True, text=True).stdout)
        trial.set_user_attr("constraint", [peak - args.budget])
        with lock:
            finished.append({"number": trial.number, "arch": arch, "psnr": report["psnr"],
                             "noisy": report["noisy_psnr"], "peak": peak,
                             "latency_100mp_s": estimate.get("latency_100mp_s", 0.0),
                             "feasible": peak <= args.budget})
        return report["psnr"], peak

    sampler = optuna.samplers.NSGAIISampler(
        population_size=max(2, args.trials // 2), seed=args.seed,
        constraints_func=lambda t: t.user_attrs["constraint"])
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=args.trials, n_jobs=args.jobs)
    with open(args.out, "w") as f:
        json.dump(sorted(finished, key=lambda t: t["number"]), f, indent=1)


if __name__ == "__main__":
    main()
