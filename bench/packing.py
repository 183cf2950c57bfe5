#!/usr/bin/python3
"""Packing benchmark: trials per hour of a worker that packs trials against one at a time.

One coordinator, one machine, the same job (same seed, hence the same architectures, steps
and data) run to its end by one `peaknas-worker serve` in each configuration:

  sequential-1t   --threads 1                            one trial at a time, one thread
  sequential-Nt   --threads N (N = the machine's cores)  one trial at a time, every core
  packed          --threads 1 --max-concurrent N         up to N trials at once, packed by
                                                         their calibrated device peaks

A calibration job runs first (one trial at a time: a device profile's first trials run
alone), so that packing has a fitted calibration. The configurations then take turns for
--rounds rounds, so that drift in the machine's speed reaches all of them alike. Reported per
configuration: trials per hour (median over the rounds, and the range), and the ratio of
packed to each sequential configuration, round by round. Writes results.json into --out.
Run it from the repository root after building the release preset:

    /usr/bin/python3 bench/packing.py --out bench-out/packing

Defaults: 8 trials of 100 steps per job (levels 1-3, widths 8-64, 1-2 blocks; 256x256
inference tiles, training batch 8 of 64x64 patches), 2 rounds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def job_spec(name, trials, steps, seed):
    return {
        "name": name,
        "strategy": "STRATEGY_RANDOM",
        "sampling": "SAMPLING_UNIFORM",
        "budget": {"bytes": str(8 << 30), "mode": "BUDGET_MODE_INFERENCE", "batch": 1,
                   "tile": 256, "train_batch": 8, "patch": 64},
        "space": {"levels": {"min": 1, "max": 3}, "width": {"min": 8, "max": 64},
                  "enc_blocks": {"min": 1, "max": 2}, "dec_blocks": {"min": 1, "max": 2}},
        "trials": trials,
        "parallelism": trials,
        "fidelity": {"steps": steps},
        "dataset": "synthetic",
        "device_profile": "cpu",
        "seed": seed,
    }


class Cluster:
    """A peaknas-server on 127.0.0.1 and the CLI to talk to it."""

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.log = open(os.path.join(work, "server.log"), "w")
        self.server = subprocess.Popen(
            [args.server, "--listen", "127.0.0.1:0", "--db", os.path.join(work, "db.sqlite"),
             "--artifacts", os.path.join(work, "art"), "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.server.stdout.readline()
        if not line.startswith("listening on "):
            sys.exit("peaknas-server did not start: " + line)
        self.address = line.split()[-1]

    def cli(self, *argv):
        return subprocess.run([self.args.peaknas, *argv, "--coordinator", self.address],
                              check=True, stdout=subprocess.PIPE, text=True).stdout

    def run_job(self, spec, worker_flags, name):
        """Runs `spec` with one worker started with `worker_flags`; (seconds, trials done)."""
        path = os.path.join(self.work, name + ".json")
        with open(path, "w") as f:
            json.dump(spec, f)
        log = open(os.path.join(self.work, name + ".worker.log"), "w")
        worker = subprocess.Popen(
            [self.args.worker, "serve", "--coordinator", self.address, "--data",
             "synthetic=" + self.args.data, "--latency-runs", "1", "--no-latency-100mp",
             "--lease-wait", "5",
             "--name", name, *worker_flags],
            stdout=log, stderr=log)
        start = time.monotonic()
        job = self.cli("submit", path).strip()
        self.cli("watch", job)
        seconds = time.monotonic() - start
        worker.terminate()
        worker.wait()
        trials = json.loads(self.cli("trials", job, "--format", "json"))
        states = [t.get("state") for t in trials]
        done = sum(s in ("SUCCEEDED", "TRIAL_STATE_SUCCEEDED") for s in states)
        if done != spec["trials"]:
            sys.exit(f"{name}: job {job} ended with trials {states}; see {log.name}")
        return seconds, done

    def close(self):
        self.server.terminate()
        self.server.wait()


def main():
    build = os.path.join(ROOT, "build", "release")
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "bench-out", "packing"))
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--concurrent", type=int, default=cores, help="packed: --max-concurrent")
    p.add_argument("--peaknas", default=os.path.join(build, "cli", "peaknas"))
    p.add_argument("--server", default=os.path.join(build, "server", "peaknas-server"))
    p.add_argument("--worker", default=os.path.join(build, "worker", "peaknas-worker"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    args.data = os.path.join(args.out, "data")
    if not os.path.isdir(args.data):
        subprocess.run([args.worker, "make-data", "--out", args.data, "--seed", "1"], check=True,
                       stdout=subprocess.DEVNULL)
    configs = {
        "sequential-1t": ["--threads", "1"],
        f"sequential-{cores}t": ["--threads", str(cores)],
        "packed": ["--threads", "1", "--max-concurrent", str(args.concurrent)],
    }
    work = tempfile.mkdtemp(prefix="peaknas-packing-bench-")
    cluster = Cluster(args, work)
    try:
        print("calibration job ...", file=sys.stderr, flush=True)
        cluster.run_job(job_spec("calibrate", 6, 1, 11), ["--threads", "1"], "calibrate")
        per_hour = {name: [] for name in configs}
        for r in range(args.rounds):
            for name, flags in configs.items():
                seconds, done = cluster.run_job(job_spec("bench", args.trials, args.steps, 7),
                                                flags, f"{name}-round{r}")
                per_hour[name].append(3600.0 * done / seconds)
                print(f"round {r}: {name}: {done} trials in {seconds:.1f} s, "
                      f"{per_hour[name][-1]:.1f} trials/h", file=sys.stderr, flush=True)
    finally:
        cluster.close()
    print(f"\n{args.trials} trials of {args.steps} steps per job, {args.rounds} rounds, "
          f"{cores} cores\n")
    print(f"{'worker':<16} {'trials/h (median)':>18} {'range':>16} {'packed / this':>20}")
    results = {"trials": args.trials, "steps": args.steps, "rounds": args.rounds,
               "cores": cores, "concurrent": args.concurrent, "per_hour": per_hour,
               "ratios": {}}
    for name, values in per_hour.items():
        ratios = [p / s for p, s in zip(per_hour["packed"], values)]
        results["ratios"][name] = ratios
        print(f"{name:<16} {statistics.median(values):>18.1f} "
              f"{min(values):>7.1f}-{max(values):<8.1f} "
              f"{min(ratios):>9.2f}-{max(ratios):<.2f}x")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
