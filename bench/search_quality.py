#!/usr/bin/python3
"""Search-quality benchmark: which strategy finds better models for the same compute.

Every strategy searches the same space, on the same generated dataset, under the same inference
budget, with (at most) the same total training steps, for several seeds:

  pruning            peaknas run --strategy pruning (a chain node counts its ancestors' steps)
  evolution          peaknas run --strategy evolution (stratified draws and children sized to
                     the front's widest gap, the default)
  evolution-uniform  peaknas run --strategy evolution --sampling uniform
  evolution-inherit  peaknas run --strategy evolution --inherit (children that only narrow
                     their parent's widths start from its weights)
  random             peaknas run --strategy random (stratified draws)
  random-uniform     peaknas run --strategy random --sampling uniform (the classic baseline)
  scaling            peaknas run --strategy scaling --no-inherit (uniform shrinking of a base
                     U-Net, every point trained from scratch)
  scaling-inherit    peaknas run --strategy scaling --inherit (the default: the sweep from its
                     largest point down, each point starting from the nearest larger one of the
                     same depth)
  optuna-nsga2       Optuna's NSGA-II treating training as a black box: each trial runs
                     `peaknas-worker once` with the same steps and learns whether it fitted the
                     budget only after training (constraints_func); bench/optuna_search_peer.py

Reported per strategy (mean and range over the seeds):
  hypervolume   the coordinator's normalized figure (PSNR gain over the noisy input x
                (1 - peak / budget) x (1 - latency / reference)), against the job's fixed
                reference; for Optuna computed the same way with the same reference, and for
                peaknas recomputed here from the stored trials as a check;
  best PSNR     within the budget;
  over budget   trained trials whose peak exceeds the budget (pruning's flagged ancestors are
                counted apart: they are part of its method, never frontier points);
  steps         total training steps spent;
  wall          seconds.

It writes results.json (every figure of every run) and fronts.svg (PSNR against peak as a
fraction of the budget, the Pareto staircase of each strategy for the first seed) into --out,
and prints a table. Run it from the repository root after building the release preset:

    /usr/bin/python3 bench/search_quality.py --out bench-out/search-quality

Defaults: 3 seeds; levels 1-3, widths 8-64, blocks 1-2; a 48 MiB inference budget at 256x256
tiles; 200 steps per trial and 8 trials' worth of steps (1600) per run; 2 local workers.
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

STRATEGIES = ["pruning", "evolution", "evolution-uniform", "evolution-inherit", "random",
              "random-uniform", "scaling", "scaling-inherit", "optuna-nsga2"]


def parse_size(text):
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 1000, "mb": 1000 ** 2,
             "gb": 1000 ** 3}
    t = text.strip().lower()
    for unit, factor in units.items():
        if t.endswith(unit):
            return int(float(t[:-len(unit)]) * factor)
    return int(t)


def hypervolume(points, reference):
    """Normalized 3-D hypervolume, as server/frontier.cc computes it.

    points: (psnr, peak_bytes, latency_s); reference: (psnr, peak_bytes, latency_s).
    """
    rp, rb, rl = reference
    gains = []
    for psnr, peak, lat in points:
        g = (psnr - rp, rb - peak, rl - lat)
        if g[0] > 0 and g[1] > 0 and g[2] > 0:
            gains.append(g)
    gains.sort(key=lambda g: -g[2])
    volume, slice_ = 0.0, []
    for i, g in enumerate(gains):
        slice_.append((g[0], g[1]))
        next_c = gains[i + 1][2] if i + 1 < len(gains) else 0.0
        height = g[2] - next_c
        if height <= 0:
            continue
        area, max_b = 0.0, 0.0
        for a, b in sorted(slice_, reverse=True):
            if b > max_b:
                area += a * (b - max_b)
                max_b = b
        volume += area * height
    return volume / (rb * rl)


def front_2d(points):
    """The (peak, psnr) Pareto staircase: peak ascending, PSNR strictly increasing."""
    out = []
    for peak, psnr in sorted(points, key=lambda p: (p[0], -p[1])):
        if not out or psnr > out[-1][1]:
            out.append((peak, psnr))
    return out


def run_peaknas(args, strategy, seed, run_dir):
    name, _, variant = strategy.partition("-")
    trials = args.total_steps // args.steps
    cmd = [args.peaknas, "run", "--strategy", name, "--seed", str(seed),
           "--trials", str(trials if name != "pruning" else 1000),
           "--workers", str(args.workers), "--steps", str(args.steps), "--tile", str(args.tile),
           "--max-width", str(args.max_width), "--max-levels", str(args.max_levels),
           "--budget", str(args.budget), "--data", args.data,
           "--db", os.path.join(run_dir, "r.db"), "--json",
           "--server-bin", args.server, "--worker-bin", args.worker]
    if variant == "uniform":
        cmd += ["--sampling", "uniform"]
    elif variant == "inherit":
        cmd += ["--inherit"]
    elif name in ("scaling", "evolution"):
        cmd += ["--no-inherit"]  # the from-scratch baselines, whatever the strategy's default
    if name == "pruning":
        cmd += ["--max-steps", str(args.total_steps)]
    start = time.monotonic()
    with open(os.path.join(run_dir, "run.err"), "w") as err:
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=err, text=True)
    wall = time.monotonic() - start
    json.loads(out.stdout)  # the frontier, as printed; read again from the database below
    db = sqlite3.connect(os.path.join(run_dir, "r.db"))
    (spec_json,) = db.execute("SELECT spec FROM jobs").fetchone()
    spec = json.loads(spec_json)
    reference_latency = float(spec["hypervolume_reference_latency_s"])
    rows = db.execute(
        "SELECT t.id, t.state, t.predicted_inference_peak_bytes, t.lineage, t.over_budget, "
        "m.psnr, m.noisy_psnr, m.latency_100mp_s, t.architecture FROM trials t "
        "LEFT JOIN metrics m ON m.trial_id = t.id").fetchall()
    snapshot = db.execute("SELECT hypervolume FROM frontier_snapshots "
                          "ORDER BY version DESC LIMIT 1").fetchone()
    trained = []
    steps = 0
    for tid, state, peak, lineage, over, psnr, noisy, lat, arch in rows:
        if state != "succeeded":
            continue
        own = json.loads(lineage).get("steps", args.steps) if lineage else args.steps
        inherited = bool(lineage) and bool(json.loads(lineage).get("parent_trial_id"))
        steps += own
        trained.append({"trial": tid, "peak": peak, "psnr": psnr, "noisy": noisy,
                        "latency": lat, "ancestor": bool(over), "inherited": inherited,
                        "arch": json.loads(arch)})
    return {"wall_s": wall, "steps": steps, "trained": trained,
            "hypervolume_coordinator": snapshot[0] if snapshot else 0.0,
            "reference_latency_s": reference_latency}


def run_optuna(args, seed, run_dir, reference_latency):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "optuna_search_peer.py"),
           "--worker", args.worker, "--peaknas", args.peaknas, "--data", args.data,
           "--budget", str(args.budget), "--tile", str(args.tile), "--steps", str(args.steps),
           "--trials", str(args.total_steps // args.steps), "--jobs", str(args.workers),
           "--max-levels", str(args.max_levels), "--max-width", str(args.max_width),
           "--seed", str(seed), "--out", os.path.join(run_dir, "trials.json")]
    start = time.monotonic()
    with open(os.path.join(run_dir, "run.err"), "w") as err:
        subprocess.run(cmd, check=True, stdout=err, stderr=err)
    wall = time.monotonic() - start
    with open(os.path.join(run_dir, "trials.json")) as f:
        trials = json.load(f)
    trained = [{"trial": t["number"], "peak": t["peak"], "psnr": t["psnr"], "noisy": t["noisy"],
                "latency": t["latency_100mp_s"], "ancestor": False, "arch": t["arch"]}
               for t in trials]
    return {"wall_s": wall, "steps": args.steps * len(trials), "trained": trained,
            "hypervolume_coordinator": None, "reference_latency_s": reference_latency}


def summarize(result, budget):
    trained = result["trained"]
    noisy = max((t["noisy"] for t in trained), default=0.0)
    eligible = [t for t in trained if not t["ancestor"] and t["peak"] <= budget]
    points = [(t["psnr"], t["peak"], t["latency"]) for t in eligible]
    result["hypervolume"] = hypervolume(points, (noisy, budget, result["reference_latency_s"]))
    result["best_psnr"] = max((t["psnr"] for t in eligible), default=None)
    result["best_gain_db"] = (result["best_psnr"] - noisy) if eligible else None
    result["over_budget"] = sum(1 for t in trained if t["peak"] > budget and not t["ancestor"])
    result["ancestors"] = sum(1 for t in trained if t["ancestor"])
    result["inherited"] = sum(1 for t in trained if t.get("inherited"))
    result["trained_count"] = len(trained)
    result["front"] = front_2d([(t["peak"] / budget, t["psnr"]) for t in eligible])
    return result


def at_or_above(front_a, front_b):
    """At each peak fraction where front_a has a point: is a's best PSNR at or below that peak at
    least b's? Returns (how many, of how many)."""
    def best(front, x):
        values = [psnr for peak, psnr in front if peak <= x + 1e-12]
        return max(values) if values else float("-inf")
    xs = [peak for peak, _ in front_a]
    return sum(1 for x in xs if best(front_a, x) >= best(front_b, x)), len(xs)


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    return f"{mean:.3f} [{min(values):.3f}, {max(values):.3f}]"


# A hue per strategy, lighter for its uniform-sampling variant, dashed for its inheriting one.
COLORS = {"pruning": "#d62728", "evolution": "#1f77b4", "evolution-uniform": "#9ecae1",
          "evolution-inherit": "#1f77b4", "random": "#2ca02c", "random-uniform": "#a1d99b",
          "scaling": "#ff7f0e", "scaling-inherit": "#8c2d04", "optuna-nsga2": "#7f7f7f"}
DASHED = {"evolution-inherit"}


def write_svg(path, results, seed, budget_text):
    w, h, left, right, top, bottom = 800, 480, 70, 230, 30, 60
    order = [s for s in STRATEGIES if s in results] + [s for s in results if s not in STRATEGIES]
    fronts = {s: results[s][seed]["front"] for s in order if seed in results[s]}
    ys = [p for f in fronts.values() for _, p in f]
    if not ys:
        return
    y0, y1 = min(ys) - 0.2, max(ys) + 0.2

    def X(x):
        return left + x * (w - left - right)

    def Y(y):
        return top + (y1 - y) / (y1 - y0) * (h - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2 - 60}" y="18" font-size="14">PSNR vs peak memory, seed {seed}</text>']
    for i in range(6):
        x = i / 5
        out.append(f'<line x1="{X(x)}" y1="{top}" x2="{X(x)}" y2="{h - bottom}" stroke="#eee"/>')
        out.append(f'<text x="{X(x) - 10}" y="{h - bottom + 16}">{x:.1f}</text>')
    for i in range(6):
        y = y0 + i * (y1 - y0) / 5
        out.append(f'<line x1="{left}" y1="{Y(y)}" x2="{w - right}" y2="{Y(y)}" stroke="#eee"/>')
        out.append(f'<text x="{left - 45}" y="{Y(y) + 4}">{y:.2f}</text>')
    out.append(f'<text x="{left + 120}" y="{h - 15}">predicted inference peak / budget '
               f'({budget_text})</text>')
    out.append(f'<text x="15" y="{top + 200}" transform="rotate(-90 15 {top + 200})">'
               f'PSNR (dB)</text>')
    for k, (strategy, front) in enumerate(fronts.items()):
        color = COLORS.get(strategy, "black")
        dash = ' stroke-dasharray="6 4"' if strategy in DASHED else ""
        if front:
            d = []
            for i, (x, y) in enumerate(front):
                if i > 0:
                    d.append(f"L{X(x):.1f},{Y(front[i - 1][1]):.1f}")
                d.append(("M" if i == 0 else "L") + f"{X(x):.1f},{Y(y):.1f}")
            d.append(f"L{X(1.0):.1f},{Y(front[-1][1]):.1f}")
            out.append(f'<path d="{" ".join(d)}" fill="none" stroke="{color}" '
                       f'stroke-width="2"{dash}/>')
            for x, y in front:
                out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + 20 * k
        out.append(f'<line x1="{w - right + 15}" y1="{ly}" x2="{w - right + 40}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="3"{dash}/>')
        hv = results[strategy][seed]["hypervolume"]
        out.append(f'<text x="{w - right + 45}" y="{ly + 4}">{strategy} (HV {hv:.2f})</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    build = os.path.join(ROOT, "build", "release")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "bench-out", "search-quality"))
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--merge", action="store_true",
                   help="keep the runs of results.json in --out that this call does not redo")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: print the table and draw the figure from results.json")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--budget", default="48MiB")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--max-levels", type=int, default=3)
    p.add_argument("--max-width", type=int, default=64)
    p.add_argument("--steps", type=int, default=200, help="training steps per trial")
    p.add_argument("--total-steps", type=int, default=1600, help="training steps per run")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--peaknas", default=os.path.join(build, "cli", "peaknas"))
    p.add_argument("--server", default=os.path.join(build, "server", "peaknas-server"))
    p.add_argument("--worker", default=os.path.join(build, "worker", "peaknas-worker"))
    args = p.parse_args()
    args.budget_bytes = parse_size(args.budget)
    args.budget = args.budget_bytes
    os.makedirs(args.out, exist_ok=True)
    args.data = os.path.join(args.out, "data")
    if not os.path.isdir(args.data):
        subprocess.run([args.worker, "make-data", "--out", args.data, "--seed", "1"], check=True,
                       stdout=subprocess.DEVNULL)
    strategies = [s for s in args.strategies.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.report_only:
        strategies, args.merge = [], True
    results = {s: {} for s in strategies}
    reference = {}
    # peaknas runs first: Optuna's hypervolume uses the same fixed reference as the jobs.
    for seed in seeds:
        for strategy in sorted(strategies, key=lambda s: s == "optuna-nsga2"):
            run_dir = os.path.join(args.out, f"{strategy}-seed{seed}")
            os.makedirs(run_dir, exist_ok=True)
            for stale in ("r.db", "r.db-wal", "r.db-shm"):
                if os.path.exists(os.path.join(run_dir, stale)):
                    os.remove(os.path.join(run_dir, stale))
            print(f"seed {seed}: {strategy} ...", file=sys.stderr, flush=True)
            if strategy == "optuna-nsga2":
                r = run_optuna(args, seed, run_dir, reference.get(seed))
            else:
                r = run_peaknas(args, strategy, seed, run_dir)
                reference[seed] = r["reference_latency_s"]
            results[strategy][seed] = summarize(r, args.budget_bytes)
            s = results[strategy][seed]
            print(f"  hypervolume {s['hypervolume']:.4f} (coordinator "
                  f"{s['hypervolume_coordinator']}), best PSNR {s['best_psnr']}, "
                  f"over budget {s['over_budget']}, steps {s['steps']}, "
                  f"{s['wall_s']:.0f} s", file=sys.stderr, flush=True)
    if args.merge and os.path.exists(os.path.join(args.out, "results.json")):
        with open(os.path.join(args.out, "results.json")) as f:
            old = json.load(f)["results"]
        for strategy, runs in old.items():
            if strategy not in results:
                results[strategy] = {int(k): v for k, v in runs.items()}
        strategies = [s for s in STRATEGIES if s in results]
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": {k: v for k, v in vars(args).items()}, "results": results}, f,
                  indent=1)
    write_svg(os.path.join(args.out, "fronts.svg"), results, seeds[0],
              f"{args.budget_bytes / 2 ** 20:g} MiB")
    header = f"{'strategy':<18} {'hypervolume':<26} {'best gain dB':<26} " \
             f"{'over budget':<12} {'ancestors':<10} {'inherited':<10} {'steps':<12} " \
             f"{'wall s':<8}"
    print(header)
    for strategy in strategies:
        runs = [results[strategy][s] for s in seeds]
        print(f"{strategy:<18} {spread([r['hypervolume'] for r in runs]):<26} "
              f"{spread([r['best_gain_db'] for r in runs]):<26} "
              f"{sum(r['over_budget'] for r in runs):<12} "
              f"{sum(r['ancestors'] for r in runs):<10} "
              f"{sum(r.get('inherited', 0) for r in runs)}/{sum(r.get('trained_count', 0) for r in runs):<7} "
              f"{min(r['steps'] for r in runs)}-{max(r['steps'] for r in runs):<7} "
              f"{sum(r['wall_s'] for r in runs) / len(runs):<8.0f}")
    if "pruning" in results and "scaling" in results:
        for seed in seeds:
            if seed in results["pruning"] and seed in results["scaling"]:
                k, n = at_or_above(results["pruning"][seed]["front"],
                                   results["scaling"][seed]["front"])
                print(f"seed {seed}: pruning's front at or above scaling's at {k} of its {n} "
                      f"points' peak fractions")


if __name__ == "__main__":
    main()
