"""What the deploy/ tests share: a small job, free ports and a tiny dataset."""
import socket
import subprocess


def small_job(name, trials, parallelism, seed):
    """A JobSpec (protobuf JSON) of tiny U-Nets on the dataset "synthetic" that trains in
    seconds on a CPU."""
    return {
        "name": name,
        "strategy": "STRATEGY_RANDOM",
        "sampling": "SAMPLING_UNIFORM",
        "budget": {"bytes": "16777216", "mode": "BUDGET_MODE_INFERENCE", "batch": 1, "tile": 16,
                   "train_batch": 2, "patch": 16},
        "space": {"levels": {"min": 1, "max": 2}, "width": {"min": 8, "max": 16},
                  "enc_blocks": {"min": 1, "max": 1}, "dec_blocks": {"min": 1, "max": 1}},
        "trials": trials,
        "parallelism": parallelism,
        "fidelity": {"steps": 5},
        "dataset": "synthetic",
        "seed": seed,
    }


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_data(worker, out):
    """`peaknas-worker make-data` of the smallest dataset small_job trains on, into `out`."""
    subprocess.run([worker, "make-data", "--out", out, "--scenes", "2", "--pairs-per-scene", "1",
                    "--size", "32", "--val-images", "1", "--val-blocks", "2", "--block-size",
                    "16", "--threads", "1"], check=True, capture_output=True)
