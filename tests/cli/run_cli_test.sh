#!/usr/bin/env bash
# Runs `peaknas run` end to end as a real process: it starts a real peaknas-server and a real
# peaknas-worker, generates the synthetic dataset into a temporary folder, trains two tiny
# trials (5 steps, 64x64 tiles, widths up to 16) and prints the frontier. One named case per
# call, registered with CTest by cli/CMakeLists.txt (labels cli;slow).
#
#   run_cli_test.sh PEAKNAS PEAKNAS_SERVER PEAKNAS_WORKER CASE
#
# Cases: table (exit 0, a frontier table of >= 1 point, the database named, no child left
# running), json (stdout is a JSON list of >= 1 point with the DESIGN.md keys, every peak within
# the budget; needs Python 3, $PYTHON or python3, else exit 77 = skipped), pruning (a pruning
# chain whose frontier points all fit the budget and inherited from trained trials of the job,
# read back from the SQLite file; Python too), interrupt (SIGINT
# mid-trial: exit non-zero, no child left running), bad_budget (one line
# on stderr naming --budget, exit 1 or 2, nothing started), bad_inherit (--inherit where no
# strategy inherits, and --inherit with --no-inherit: refused naming the flag, nothing started).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/cli_test_lib.sh"

cli_test_args "PEAKNAS PEAKNAS_SERVER PEAKNAS_WORKER CASE" 4 "$@"
peaknas=$1
server=$2
worker=$3
budget_bytes=16777216

# On every exit, peaknas run, where it still runs, is killed, and so is whatever it started and
# left behind (a failure of the test's subject).
run_pid=
stop_run() {
  stop_process "$run_pid"
  local pid
  for pid in $(children_of_run); do kill -KILL "$pid" 2>/dev/null; done
}
cli_test_workdir stop_run
trap 'exit 130' INT TERM
program=$peaknas
log_files=("$work/logs/*.log")

# Pids of live processes whose command line names this test's folder (the server's --db, the
# workers' --data): children peaknas run started.
children_of_run() {
  local p
  for p in /proc/[0-9]*; do
    [[ -r $p/cmdline ]] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "$work/"; then
      [[ ${p#/proc/} != "$$" ]] && echo "${p#/proc/}"
    fi
  done
}

# Runs peaknas run in the background, records the pids of its children while it runs, and
# waits for it; sets $rc and $seen_children.
run_search() {
  "$peaknas" run --trials 2 --workers 1 --steps 5 --tile 64 --max-width 16 \
    --budget "$budget_bytes" --data "$work/data" --db "$work/r.db" \
    --server-bin "$server" --worker-bin "$worker" "$@" >"$out" 2>"$err" &
  run_pid=$!
  seen_children=
  local i
  for ((i = 0; i < 1800; i++)); do  # at most 90 s
    kill -0 "$run_pid" 2>/dev/null || break
    local kids
    kids=$(ps -o pid= --ppid "$run_pid" 2>/dev/null | tr -s ' \n' ' ')
    seen_children="$seen_children $kids"
    sleep 0.05
  done
  if kill -0 "$run_pid" 2>/dev/null; then
    fail "peaknas run still running after 90 s"
  fi
  wait "$run_pid"
  rc=$?
  run_pid=
}

# No child seen while peaknas ran is still alive.
check_no_children() {
  local pid
  for pid in $seen_children; do
    if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null) != Z ]]; then
      fail "child $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)) still running"
    fi
  done
  [[ -z $(children_of_run) ]] || fail "processes left running: $(children_of_run)"
}

case $case_name in
  table)
    run_search
    [[ $rc -eq 0 ]] || fail "exit status $rc, expected 0"
    grep -q '^TRIAL  *PSNR  *GAIN  *PEAK' "$out" || fail "no frontier table"
    grep -Eq '^t-[0-9]+  ' "$out" || fail "no frontier point"
    grep -q 'SUCCEEDED' "$out" || fail "no finished trial reported"
    grep -q "database: $work/r.db" "$out" || fail "the database is not named"
    grep -Eq '^follow it over HTTP: http://127\.0\.0\.1:[0-9]+/v1/jobs/j-1 ' "$out" ||
      fail "no HTTP address of the job"
    grep -q "^frontier picture: $work/r-frontier.svg" "$out" || fail "the picture is not named"
    [[ $(head -c 4 "$work/r-frontier.svg") == "<svg" ]] || fail "no SVG beside the database"
    grep -q 'class="front"' "$work/r-frontier.svg" || fail "no frontier point in the SVG"
    [[ -s $err ]] && fail "unexpected stderr"
    [[ -n $seen_children ]] || fail "no child process seen"
    check_no_children
    ;;
  json)
    need_python
    run_search --json
    [[ $rc -eq 0 ]] || fail "exit status $rc, expected 0"
    "$python" - "$out" "$budget_bytes" <<'PY' || fail "bad JSON frontier"
import json, sys
points = json.load(open(sys.argv[1]))
budget = int(sys.argv[2])
assert isinstance(points, list) and len(points) >= 1, points
for p in points:
    for key in ("trial", "arch", "psnr", "peak_bytes", "latency_100mp_s"):
        assert key in p, (key, p)
    assert 0 < p["peak_bytes"] <= budget, p
    # The workers timed each model's 100-MP pass beside the roofline's prediction.
    assert p["latency_100mp_s"] > 0, p
    assert p["measured_latency_100mp_s"] > 0 and p["measured_on"] == "cpu", p
    assert isinstance(p["arch"], dict), p
PY
    grep -q "database: $work/r.db" "$err" || fail "the database is not named on stderr"
    check_no_children
    ;;
  pruning)
    # --strategy pruning: a chain of inheriting trials; every frontier point fits the budget,
    # inherited its weights from a trained trial of the same job, and the parents' models
    # reached the workers.
    need_python
    "$peaknas" run --strategy pruning --trials 12 --workers 2 --steps 20 --tile 64 \
      --max-width 32 --budget 1MiB --data "$work/data" --db "$work/r.db" \
      --server-bin "$server" --worker-bin "$worker" --json >"$out" 2>"$err"
    rc=$?
    seen_children=
    [[ $rc -eq 0 ]] || fail "exit status $rc, expected 0"
    "$python" - "$out" "$work/r.db" 1048576 <<'PY' || fail "pruning frontier or lineage wrong"
import json, sqlite3, sys
points = json.load(open(sys.argv[1]))
budget = int(sys.argv[3])
db = sqlite3.connect(sys.argv[2])
rows = {r[0]: r[1:] for r in db.execute(
    "SELECT id, parent_trial_id, lineage, over_budget, state FROM trials")}
assert len(rows) >= 4, rows
starts = [i for i, r in rows.items() if r[0] is None]
assert len(starts) == 1, ("one start trained from scratch", rows)
for i, (parent, lineage, over, state) in rows.items():
    if parent is not None:
        assert rows[parent][3] == "succeeded", ("parent not trained", i, parent)
        assert json.loads(lineage)["role"] in ("level", "peak", "uniform", "final"), lineage
assert points, points
for p in points:
    assert 0 < p["peak_bytes"] <= budget, p
    trial = int(p["trial"].split("-")[1])
    assert rows[trial][0] is not None, ("a frontier point that did not inherit", p)
    assert rows[trial][2] == 0, p
PY
    grep -q "fetched the model of parent trial" "$work"/logs/worker-*.log ||
      fail "no worker fetched a parent's model"
    check_no_children
    ;;
  denoise_frontier_model)
    # From `peaknas run` to a denoised image: a coordinator started again on the run's database
    # serves its frontier models; `peaknas-worker denoise --job --trial` fetches one and gives
    # the image `--model` gives with the file `peaknas export` downloads.
    need_python
    run_search --json
    [[ $rc -eq 0 ]] || fail "exit status $rc, expected 0"
    trial=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[0]["trial"])' "$out")
    start_coordinator "$server" "$work/r.db" "$work/artifacts"
    images=("$work"/data/Data/*/NOISY_SRGB_010.PNG)
    image=${images[0]}
    [[ -f $image ]] || fail "no noisy image in the run's data"
    "$worker" denoise --job j-1 --trial "$trial" --coordinator "$addr" --in "$image" \
      --out "$work/fetched.png" --budget 64MiB >"$out" 2>"$err" || fail "denoise --job failed"
    grep -q "fetched the model of job j-1 trial $trial from $addr" "$err" ||
      fail "the fetch is not reported"
    "$peaknas" export j-1 "$trial" -o "$work/model.pt" --coordinator "$addr" >"$out" 2>"$err" ||
      fail "export failed"
    "$worker" denoise --model "$work/model.pt" --in "$image" --out "$work/exported.png" \
      --budget 64MiB >"$out" 2>"$err" || fail "denoise --model failed"
    cmp -s "$work/fetched.png" "$work/exported.png" ||
      fail "the fetched model denoised differently from the exported one"
    program=$worker
    expect_one_line_error nonzero "peaknas-worker denoise: " 't-999' \
      denoise --job j-1 --trial t-999 --coordinator "$addr" --in "$image" \
      --out "$work/none.png" --budget 64MiB
    [[ -e $work/none.png ]] && fail "an output was written without a model"
    expect_one_line_error nonzero "peaknas-worker denoise: " '--model FILE, or --job J and --trial T' \
      denoise --job j-1 --in "$image" --out "$work/none.png" --budget 64MiB
    kill -TERM "$server_pid"
    wait "$server_pid"
    check_no_children
    ;;
  interrupt)
    # SIGINT once a trial runs: the job is cancelled, every child stopped, exit non-zero.
    "$peaknas" run --trials 2 --workers 1 --steps 100000 --tile 64 --max-width 16 \
      --budget "$budget_bytes" --data "$work/data" --db "$work/r.db" \
      --server-bin "$server" --worker-bin "$worker" >"$out" 2>"$err" &
    run_pid=$!
    for ((i = 0; i < 1200; i++)); do  # at most 60 s
      grep -q 'started on' "$out" && break
      kill -0 "$run_pid" 2>/dev/null || break
      sleep 0.05
    done
    grep -q 'started on' "$out" || fail "no trial started"
    seen_children=$(ps -o pid= --ppid "$run_pid" | tr -s ' \n' ' ')
    [[ -n $seen_children ]] || fail "no child process seen"
    kill -INT "$run_pid"
    for ((i = 0; i < 600; i++)); do  # at most 30 s
      kill -0 "$run_pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$run_pid" 2>/dev/null && fail "still running 30 s after SIGINT"
    wait "$run_pid"
    rc=$?
    run_pid=
    [[ $rc -ne 0 ]] || fail "exit status 0 after SIGINT"
    grep -q 'interrupted' "$err" || fail "no 'interrupted' on stderr"
    check_no_children
    ;;
  bad_budget)
    "$peaknas" run --budget 12parsecs --data "$work/data" --db "$work/r.db" >"$out" 2>"$err"
    rc=$?
    [[ $rc -eq 1 || $rc -eq 2 ]] || fail "exit status $rc, expected 1 or 2"
    [[ -s $out ]] && fail "unexpected stdout"
    [[ $(wc -l <"$err") -eq 1 ]] || fail "expected exactly one line on stderr"
    grep -q -- '--budget' "$err" || fail "the error does not name --budget"
    [[ -e $work/r.db || -e $work/data || -e $work/logs ]] && fail "something was started"
    "$peaknas" run --budget 0 --data "$work/data" --db "$work/r.db" >"$out" 2>"$err"
    rc=$?
    [[ $rc -eq 1 || $rc -eq 2 ]] || fail "budget 0: exit status $rc, expected 1 or 2"
    if [[ $(wc -l <"$err") -ne 1 ]] || ! grep -q -- '--budget' "$err"; then
      fail "budget 0: bad error"
    fi
    # Below the space's cheapest architecture: refused by the server's own validator, before
    # anything starts, in terms of the flag.
    "$peaknas" run --budget 1KiB --data "$work/data" --db "$work/r.db" >"$out" 2>"$err"
    rc=$?
    [[ $rc -eq 1 || $rc -eq 2 ]] || fail "budget 1KiB: exit status $rc, expected 1 or 2"
    [[ $(wc -l <"$err") -eq 1 ]] || fail "budget 1KiB: expected one line on stderr"
    if ! grep -q -- '--budget: 1024 (' "$err" ||
      ! grep -q 'is below the cheapest architecture' "$err"; then
      fail "budget 1KiB: the error does not say --budget is below the cheapest architecture"
    fi
    [[ -e $work/r.db || -e $work/data || -e $work/logs ]] && fail "budget 1KiB: something started"
    ;;
  bad_inherit)
    "$peaknas" run --strategy random --inherit --data "$work/data" --db "$work/r.db" \
      >"$out" 2>"$err"
    rc=$?
    [[ $rc -eq 1 || $rc -eq 2 ]] || fail "random --inherit: exit status $rc, expected 1 or 2"
    [[ $(wc -l <"$err") -eq 1 ]] || fail "random --inherit: expected one line on stderr"
    grep -q -- '--inherit: only with --strategy evolution or scaling' "$err" ||
      fail "random --inherit: the error does not say where --inherit applies"
    "$peaknas" run --strategy scaling --inherit --no-inherit --data "$work/data" \
      --db "$work/r.db" >"$out" 2>"$err"
    rc=$?
    [[ $rc -eq 1 || $rc -eq 2 ]] || fail "--inherit --no-inherit: exit status $rc"
    grep -q -- '--no-inherit' "$err" || fail "--inherit --no-inherit: not named"
    [[ -e $work/r.db || -e $work/data || -e $work/logs ]] && fail "something was started"
    ;;
  *) unknown_case ;;
esac
exit 0
