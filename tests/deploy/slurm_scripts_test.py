#!/usr/bin/python3
"""Runs deploy/slurm's batch scripts as Slurm would run them, on this machine, with the built
programs, and checks the cluster they make works end to end.

  slurm_scripts_test.py --repo DIR --server PEAKNAS_SERVER --worker PEAKNAS_WORKER --cli PEAKNAS

Without Slurm: each script runs under bash with the environment Slurm gives a job
(SLURM_JOB_ID, SLURM_ARRAY_TASK_ID, SLURM_CPUS_PER_TASK, SLURM_SUBMIT_DIR) and, for the
whole-node script, an `srun` that starts its one task. In a temporary $PEAKNAS_STATE:

  1. coordinator.sbatch starts peaknas-server and publishes its address once it is ready;
  2. workers.sbatch (an array task, on cpu) and workers-node.sbatch (srun) find it there and
     register; a small job submitted with the CLI runs to success on them;
  3. SIGTERM, as Slurm sends it at a time limit or on preemption: each worker script exits 0,
     and the coordinator script stops the server, removes the address file and exits 0.

A flag the scripts pass that a program lacks makes that program exit with a usage error, and
the test fails saying which script's log to read.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from common import free_port, make_data, small_job


def wait_for(what, condition, seconds, logs):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    fail(f"{what}: not within {seconds} s", logs)


def fail(message, logs):
    print(f"slurm_scripts_test: {message}")
    for name, path in logs.items():
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                print(f"--- {name} ({path}), last lines:\n" + "".join(f.readlines()[-30:]))
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--repo", "--server", "--worker", "--cli"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    slurm = os.path.join(args.repo, "deploy", "slurm")
    state = tempfile.mkdtemp(prefix="peaknas-slurm-")
    logs = {}
    procs = []
    try:
        # The programs in one directory ($PEAKNAS_BIN), and an srun that runs its one task.
        bin_dir = os.path.join(state, "bin")
        os.makedirs(bin_dir)
        for name, path in (("peaknas-server", args.server), ("peaknas-worker", args.worker)):
            os.symlink(os.path.abspath(path), os.path.join(bin_dir, name))
        srun = os.path.join(bin_dir, "srun")
        with open(srun, "w") as f:
            f.write('#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
        os.chmod(srun, 0o755)
        data = os.path.join(state, "data", "synthetic")
        make_data(args.worker, data)
        port, http_port = free_port(), free_port()
        env = dict(os.environ, PEAKNAS_ENV=os.path.join(slurm, "peaknas-env.sh"),
                   PEAKNAS_STATE=state, PEAKNAS_PORT=str(port),
                   PEAKNAS_HTTP_PORT=str(http_port), PEAKNAS_HOST="127.0.0.1",
                   PEAKNAS_BIN=bin_dir, PEAKNAS_DATA=f"synthetic={data}",
                   PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
                   SLURM_SUBMIT_DIR=args.repo, SLURM_CPUS_PER_TASK="1")

        def start(script, name, **extra):
            logs[name] = os.path.join(state, f"{name}.log")
            with open(logs[name], "w") as log:
                p = subprocess.Popen(["bash", os.path.join(slurm, script)],
                                     env=dict(env, **extra), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(p)
            return p

        coordinator = start("coordinator.sbatch", "coordinator", SLURM_JOB_ID="100")
        address_file = os.path.join(state, "coordinator.address")
        wait_for("the coordinator's address file", lambda: os.path.exists(address_file) or
                 coordinator.poll() is not None, 60, logs)
        if coordinator.poll() is not None:
            fail(f"coordinator.sbatch exited {coordinator.returncode}", logs)
        address = open(address_file).read().strip()
        if address != f"127.0.0.1:{port}":
            fail(f"the address file says {address!r}, not 127.0.0.1:{port}", logs)

        array = start("workers.sbatch", "array-worker", SLURM_JOB_ID="101",
                      SLURM_ARRAY_JOB_ID="101", SLURM_ARRAY_TASK_ID="3", PEAKNAS_DEVICE="cpu")
        node = start("workers-node.sbatch", "node-worker", SLURM_JOB_ID="102",
                     PEAKNAS_DEVICE="cpu")

        def cli(*argv):
            out = subprocess.run([args.cli, *argv, "--coordinator", address],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                fail(f"peaknas {' '.join(argv)} failed: {out.stderr.strip()}", logs)
            return out.stdout

        def workers_online():
            for p, name in ((array, "array-worker"), (node, "node-worker")):
                if p.poll() is not None:
                    fail(f"{name} exited {p.returncode}", logs)
            listed = cli("workers")
            return "slurm-101-3" in listed and listed.count("\n") >= 3

        wait_for("both workers registered", workers_online, 60, logs)
        job_file = os.path.join(state, "job.json")
        with open(job_file, "w") as f:
            json.dump(small_job("slurm-scripts", trials=2, parallelism=2, seed=7), f)
        job = cli("submit", job_file).strip()

        # `peaknas watch` follows the job until it ends: status 0 when it succeeded.
        try:
            watched = subprocess.run([args.cli, "watch", job, "--coordinator", address],
                                     capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            fail(f"job {job} did not end within 300 s", logs)
        if watched.returncode != 0:
            fail(f"job {job} did not succeed: {watched.stdout[-2000:]}{watched.stderr}", logs)

        # Slurm's SIGTERM: workers.sbatch asks for it in its batch shell (--signal=B:TERM),
        # which exec'd the worker; workers-node.sbatch in its job steps (--signal=TERM), the
        # processes srun started; the coordinator's in its batch shell, which passes it on.
        def children(pid):
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                return [int(c) for c in f.read().split()]

        for p, name, targets in ((array, "array-worker", [array.pid]),
                                 (node, "node-worker", children(node.pid)),
                                 (coordinator, "coordinator", [coordinator.pid])):
            if not targets:
                fail(f"{name}: no process to signal", logs)
            for pid in targets:
                os.kill(pid, signal.SIGTERM)
            try:
                code = p.wait(60)
            except subprocess.TimeoutExpired:
                fail(f"{name} did not stop within 60 s of SIGTERM", logs)
            if code != 0:
                fail(f"{name} exited {code} after SIGTERM", logs)
        if os.path.exists(address_file):
            fail("the coordinator left its address file behind", logs)
        print(f"slurm_scripts_test: coordinator.sbatch, workers.sbatch and workers-node.sbatch "
              f"ran job {job} to success and stopped cleanly on SIGTERM")
        return 0
    finally:
        # Each script's session, whether or not its shell has exited: a worker it started may
        # outlive it when the test fails.
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
