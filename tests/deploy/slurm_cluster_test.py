#!/usr/bin/python3
"""Runs deploy/slurm's scripts on a real one-node Slurm cluster on this machine.

  slurm_cluster_test.py --repo DIR --server PEAKNAS_SERVER --worker PEAKNAS_WORKER --cli PEAKNAS

Starts Debian's munged, slurmctld and slurmd on 127.0.0.1 (a private configuration, state and
sockets in a temporary directory; free ports), then, through sbatch:

  1. deploy/slurm/coordinator.sbatch: the coordinator publishes its address;
  2. deploy/slurm/workers.sbatch as a job array of two tasks (on cpu): both register;
  3. a job submitted with the CLI runs to success on them;
  4. scancel, as Slurm stops jobs at a time limit or on preemption: every Slurm job ends, each
     worker says it stopped after SIGTERM, and the coordinator stops and removes its address.

Exit status: 0 when all hold; 1 otherwise, with the daemons' and jobs' logs; 77 (skipped) when
Slurm or munge is not installed, or without root (slurmd starts jobs as their user).
"""
import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from common import free_port, make_data, small_job


class Failure(Exception):
    pass


def wait_for(what, condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise Failure(f"{what}: not within {seconds} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--repo", "--server", "--worker", "--cli"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    tools = {t: shutil.which(t) for t in ("munged", "slurmctld", "slurmd", "sbatch", "squeue",
                                          "scancel", "sinfo")}
    missing = [t for t, path in tools.items() if path is None]
    if missing:
        print(f"slurm_cluster_test: {', '.join(missing)} not found (Debian's slurm-wlm and munge);"
              " skipped")
        return 77
    if os.geteuid() != 0:
        print("slurm_cluster_test: not root: slurmd cannot start jobs; skipped")
        return 77

    top = tempfile.mkdtemp(prefix="peaknas-slurm-cluster-")
    daemons = []
    logs = []
    try:
        run_test(args, tools, top, daemons, logs)
        print("slurm_cluster_test: on a one-node Slurm cluster, coordinator.sbatch and a "
              "workers.sbatch array ran a job to success and stopped cleanly on scancel")
        return 0
    except (Failure, subprocess.CalledProcessError) as e:
        print(f"slurm_cluster_test: {e}")
        for path in logs + sorted(glob.glob(os.path.join(top, "peaknas", "*.log"))):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    print(f"--- {path}, last lines:\n" + "".join(f.readlines()[-25:]))
        return 1
    finally:
        for p in reversed(daemons):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(top, ignore_errors=True)


def run_test(args, tools, top, daemons, logs):
    host = socket.gethostname().split(".")[0]
    for d in ("munge", "state", "spool", "log", "peaknas/bin", "peaknas/data"):
        os.makedirs(os.path.join(top, d), exist_ok=True)
    os.chmod(os.path.join(top, "munge"), 0o700)
    munge_socket = os.path.join(top, "munge", "munge.socket")
    key = os.path.join(top, "munge", "munge.key")
    with open(key, "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(key, 0o400)
    conf = os.path.join(top, "slurm.conf")
    ctld_port, d_port = free_port(), free_port()
    with open(conf, "w") as f:
        f.write(f"""ClusterName=peaknastest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={top}/state
SlurmdSpoolDir={top}/spool
SlurmctldPidFile={top}/slurmctld.pid
SlurmdPidFile={top}/slurmd.pid
SlurmctldLogFile={top}/log/slurmctld.log
SlurmdLogFile={top}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
KillWait=60
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs=4 RealMemory=8000 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    logs += [os.path.join(top, "log", n) for n in ("munged.log", "slurmctld.log", "slurmd.log")]
    env = dict(os.environ, SLURM_CONF=conf)

    def daemon(argv):
        out = open(os.path.join(top, "log", os.path.basename(argv[0]) + ".out"), "w")
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        daemons.append(p)
        return p

    daemon([tools["munged"], "--foreground", "--force", f"--socket={munge_socket}",
            f"--key-file={key}", f"--log-file={top}/log/munged.log",
            f"--pid-file={top}/munge/munged.pid", f"--seed-file={top}/munge/munged.seed"])
    wait_for("munged's socket", lambda: os.path.exists(munge_socket), 30)
    daemon([tools["slurmctld"], "-D", "-f", conf])
    daemon([tools["slurmd"], "-D", "-f", conf])

    def node_idle():
        out = subprocess.run([tools["sinfo"], "-h", "-o", "%T"], env=env, capture_output=True,
                             text=True)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    wait_for("the Slurm node to be idle", node_idle, 60)

    # peaknas on the "shared" directory.
    state = os.path.join(top, "peaknas")
    for name, path in (("peaknas-server", args.server), ("peaknas-worker", args.worker)):
        os.symlink(os.path.abspath(path), os.path.join(state, "bin", name))
    data = os.path.join(state, "data", "synthetic")
    make_data(args.worker, data)
    port = free_port()
    env.update(PEAKNAS_STATE=state, PEAKNAS_BIN=os.path.join(state, "bin"),
               PEAKNAS_HOST="127.0.0.1", PEAKNAS_PORT=str(port),
               PEAKNAS_HTTP_PORT=str(free_port()), PEAKNAS_DATA=f"synthetic={data}",
               PEAKNAS_DEVICE="cpu")
    slurm = os.path.join(args.repo, "deploy", "slurm")

    def sbatch(script, *flags):
        out = subprocess.run([tools["sbatch"], "--parsable", *flags, os.path.join(slurm, script)],
                             env=env, cwd=args.repo, capture_output=True, text=True)
        if out.returncode != 0:
            raise Failure(f"sbatch {script} failed: {out.stderr.strip()}")
        return out.stdout.strip().split(";")[0]

    coordinator = sbatch("coordinator.sbatch", "--cpus-per-task=1", "--mem=1G",
                         f"--output={state}/coordinator-%j.log")
    address_file = os.path.join(state, "coordinator.address")
    wait_for("the coordinator's address file", lambda: os.path.exists(address_file), 90)
    address = open(address_file).read().strip()
    if address != f"127.0.0.1:{port}":
        raise Failure(f"the address file says {address!r}, not 127.0.0.1:{port}")
    workers = sbatch("workers.sbatch", "--array=0-1", "--gres=none", "--cpus-per-task=1",
                     "--mem=2G", f"--output={state}/worker-%A_%a.log")

    def cli(*argv, timeout=60):
        out = subprocess.run([args.cli, *argv, "--coordinator", address], capture_output=True,
                             text=True, timeout=timeout)
        if out.returncode != 0:
            raise Failure(f"peaknas {' '.join(argv)} failed: {out.stdout[-1500:]}{out.stderr}")
        return out.stdout

    names = [f"slurm-{workers}-0", f"slurm-{workers}-1"]
    wait_for("both array tasks registered",
             lambda: all(n in cli("workers") for n in names), 90)
    with open(os.path.join(state, "job.json"), "w") as f:
        json.dump(small_job("slurm-cluster", trials=4, parallelism=2, seed=11), f)
    job = cli("submit", os.path.join(state, "job.json")).strip()
    try:
        cli("watch", job, timeout=300)  # status 0: the job succeeded
    except subprocess.TimeoutExpired:
        raise Failure(f"job {job} did not end within 300 s")

    for slurm_job in (workers, coordinator):
        subprocess.run([tools["scancel"], slurm_job], env=env, check=True)

    def queue_empty():
        out = subprocess.run([tools["squeue"], "-h"], env=env, capture_output=True, text=True)
        return out.returncode == 0 and not out.stdout.strip()

    wait_for("every Slurm job to end after scancel", queue_empty, 120)
    # Each job step's slurmstepd keeps a socket in the spool directory until it has exited.
    wait_for("the job steps' slurmstepd to exit",
             lambda: not glob.glob(os.path.join(top, "spool", f"{host}_*")), 60)
    for i in (0, 1):
        with open(os.path.join(state, f"worker-{workers}_{i}.log")) as f:
            if "peaknas-worker serve: stopped" not in f.read():
                raise Failure(f"array task {i} did not stop cleanly after SIGTERM")
    with open(os.path.join(state, f"coordinator-{coordinator}.log")) as f:
        if "] stopped" not in f.read():
            raise Failure("the coordinator did not stop cleanly after SIGTERM")
    if os.path.exists(address_file):
        raise Failure("the coordinator left its address file behind")


if __name__ == "__main__":
    sys.exit(main())
