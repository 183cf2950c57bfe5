#!/usr/bin/python3
"""The Optuna peer of bench/coordinator_bench.cc: Optuna's ask -> tell loop on SQLite storage.

One study in a fresh SQLite file (RDBStorage, sqlite:///PATH), random sampler, a search space
like the coordinator's U-Net family (a few suggest_int / suggest_categorical parameters), and a
trivial objective: every trial is told a fixed value at once. This is the loop an Optuna-based
coordinator runs per trial, with its storage committed to SQLite on every ask and tell.

Run it with Debian's interpreter (/usr/bin/python3, which has python3-optuna 3.1):

    /usr/bin/python3 bench/optuna_peer.py --db /tmp/optuna.db --seconds 10 --warmup 20

Prints one JSON object: {"trials": N, "seconds": S, "trials_per_s": R, "optuna": VERSION}, where
N trials are the ones completed in the timed window (after --warmup untimed trials).
"""

import argparse
import json
import logging
import os
import sys
import time

import optuna


def one_trial(study):
    trial = study.ask()
    levels = trial.suggest_int("levels", 2, 5)
    trial.suggest_int("width", 8, 64, step=8)
    trial.suggest_int("enc_blocks", 1, 3)
    trial.suggest_int("dec_blocks", 1, 3)
    trial.suggest_categorical("skip", ["concat", "add"])
    trial.suggest_categorical("upsample", ["transposed", "bilinear", "pixelshuffle"])
    trial.suggest_categorical("downsample", ["strided", "maxpool"])
    del levels
    study.tell(trial, 30.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file (removed first if present)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed window")
    parser.add_argument("--trials", type=int, default=0,
                        help="stop the timed window after this many trials (0 = no limit)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed trials first")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    if os.path.exists(args.db):
        os.remove(args.db)
    storage = optuna.storages.RDBStorage(url=f"sqlite:///{args.db}")
    study = optuna.create_study(storage=storage, study_name="bench", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=args.seed))
    for _ in range(args.warmup):
        one_trial(study)

    done = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    while True:
        one_trial(study)
        done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= args.seconds or (args.trials and done >= args.trials):
            break
    cpu = time.process_time() - cpu_start
    json.dump({"trials": done, "seconds": elapsed, "trials_per_s": done / elapsed,
               "cpu_seconds": cpu, "optuna": optuna.__version__}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
