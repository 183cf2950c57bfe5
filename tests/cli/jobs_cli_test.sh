#!/usr/bin/env bash
# Runs the built `peaknas` service subcommands (submit, jobs, status, watch, frontier, trials,
# cancel, export, workers) as real processes against a real `peaknas-server` on 127.0.0.1 (port 0, a
# temporary SQLite file), one named case per call. Registered with CTest by cli/CMakeLists.txt,
# one test a case.
#
#   jobs_cli_test.sh PEAKNAS PEAKNAS_SERVER PEAKNAS_WORKER EXAMPLES_DIR CASE
#
# Error cases check the contract of DESIGN.md ("Command line"): nothing on stdout, exactly one
# line on stderr, "peaknas CMD: <message>", exit status 1 (rejected input, gRPC errors) or 2
# (usage). The server is killed on every exit path. JSON cases need Python 3 ($PYTHON, else
# python3); without one they exit 77, which CTest reports as skipped.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/cli_test_lib.sh"

cli_test_args "PEAKNAS PEAKNAS_SERVER PEAKNAS_WORKER EXAMPLES_DIR CASE" 5 "$@"
peaknas=$1
server=$2
worker=$3
spec="$4/job-small.json"  # in EXAMPLES_DIR
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)  # scripts/make-test-ca

# The server start_server started and a worker a case started, killed on every exit.
server_pid=
worker_pid=
stop_server() {
  stop_process "$worker_pid"
  stop_process "$server_pid"
}
cli_test_workdir stop_server
trap 'exit 130' INT TERM
program=$peaknas
log_files=("$work/server.err")

# Starts peaknas-server on 127.0.0.1:0 (with ARGS) and sets $addr from its first stdout line.
start_server() {
  start_coordinator "$server" "$work/peaknas.db" "$work/artifacts" "$@"
}

# start_worker NAME WORKER_ARGS...: starts `peaknas-worker serve` named NAME on an empty
# dataset folder with WORKER_ARGS, and waits until `peaknas workers` (with the CLI arguments in
# the array client_args) lists it; $out then holds that listing.
client_args=()
start_worker() {
  local name=$1 i
  shift
  mkdir -p "$work/data"
  "$worker" serve --coordinator "$addr" --data "syn=$work/data" --name "$name" --lease-wait 1 \
    "$@" >"$work/worker.out" 2>"$work/worker.err" &
  worker_pid=$!
  log_files+=("$work/worker.err")
  for ((i = 0; i < 300; i++)); do
    run workers --coordinator "$addr" "${client_args[@]}"
    grep -q "$name" "$out" && return 0
    kill -0 "$worker_pid" 2>/dev/null || fail "peaknas-worker exited"
    sleep 0.1
  done
  fail "worker $name was not listed within 30 s"
}

# expect_ok ARGS...: exit 0, nothing on stderr.
expect_ok() {
  run "$@"
  [[ $status -eq 0 ]] || fail "expected exit status 0, got $status: peaknas $*"
  [[ ! -s "$err" ]] || fail "expected nothing on stderr: peaknas $*"
}

# expect_error CODE CMD REGEX ARGS...: exit CODE, nothing on stdout, one stderr line starting
# "peaknas CMD: " and matching REGEX.
expect_error() {
  local code=$1 cmd=$2
  shift 2
  expect_one_line_error "$code" "peaknas $cmd: " "$@"
}

# Submits the example spec; sets $job.
submit_example() {
  expect_ok submit "$spec" --coordinator "$addr"
  job=$(cat "$out")
  [[ $job =~ ^j-[0-9]+$ ]] || fail "submit printed '$job', expected one job id"
}

# A copy of the example spec with sed expression $1 applied, at $work/spec.json.
edited_spec() {
  sed -e "$1" "$spec" >"$work/spec.json"
  cmp -s "$spec" "$work/spec.json" && fail "sed '$1' changed nothing"
}

case "$case_name" in
  submit)
    start_server
    submit_example
    [[ $(wc -l <"$out") -eq 1 ]] || fail "submit printed more than one line"
    ;;
  jobs)
    start_server
    submit_example
    expect_ok jobs --coordinator "$addr"
    stdout_has '^ID +NAME +STATE'
    stdout_has "^$job +small-random +(PENDING|RUNNING) +0/4"
    ;;
  status)
    start_server
    submit_example
    expect_ok status "$job" --coordinator "$addr"
    stdout_has "^job +$job\$"
    stdout_has '^state +PENDING$'
    stdout_has '^strategy +RANDOM$'
    stdout_has '^trials +0/4 done \(pending [0-9]+, running 0, succeeded 0'
    stdout_has '^frontier +0 points, version 0, hypervolume 0\.0000$'
    ;;
  env_coordinator)
    start_server
    submit_example
    PEAKNAS_COORDINATOR=$addr run status "$job"
    [[ $status -eq 0 ]] || fail "status with \$PEAKNAS_COORDINATOR exited $status"
    stdout_has "^job +$job\$"
    ;;
  trials)
    start_server
    submit_example
    expect_ok trials "$job" --coordinator "$addr"
    stdout_has '^TRIAL +STATE +INFER_PEAK'
    stdout_has '^t-[0-9]+ +PENDING '
    stdout_has '^t-[0-9]+ +REJECTED .*predicted inference peak .* > budget 64\.00 MiB'
    ;;
  trials_csv)
    start_server
    submit_example
    expect_ok trials "$job" --coordinator "$addr" --format csv
    stdout_has '^trial,state,predicted_inference_peak_bytes,'
    stdout_has '^t-[0-9]+,REJECTED,[0-9]+,'
    ;;
  trials_json)
    start_server
    submit_example
    expect_ok trials "$job" --coordinator "$addr" --format json
    check_json '
assert isinstance(d, list) and d, d
states = {t["state"] for t in d}
assert "PENDING" in states and "REJECTED" in states, states
for t in d:
    assert t["arch"]["levels"] in (2, 3, 4), t
    assert len(t["arch_hash"]) == 16, t
    if t["state"] == "REJECTED":
        assert t["reason"] and t["predicted_inference_peak_bytes"] > 64 * 2**20, t
    else:
        assert t["predicted_inference_peak_bytes"] <= 64 * 2**20, t
'
    ;;
  frontier_table)
    start_server
    submit_example
    expect_ok frontier "$job" --coordinator "$addr"
    stdout_has "^job $job: 0 points, version 0"
    stdout_has '^TRIAL +PSNR +GAIN +PEAK'
    ;;
  frontier_svg)
    start_server
    submit_example
    expect_ok frontier "$job" --coordinator "$addr" --format svg
    [[ $(head -c 4 "$out") == "<svg" ]] || fail "expected an SVG document"
    grep -q '</svg>' "$out" || fail "the SVG is not closed"
    grep -q 'class="budget"' "$out" || fail "no budget line"
    ;;
  frontier_csv)
    start_server
    submit_example
    expect_ok frontier "$job" --coordinator "$addr" --format csv
    [[ $(cat "$out") == "trial,psnr,peak_bytes,latency_100mp_s,arch_hash,arch,parent,role,measured_latency_100mp_s,measured_on" ]] ||
      fail "expected the CSV header alone"
    ;;
  frontier_json)
    start_server
    submit_example
    expect_ok frontier "$job" --coordinator "$addr" --format json
    check_json 'assert d == [], d'
    ;;
  cancel)
    start_server
    submit_example
    expect_ok cancel "$job" --coordinator "$addr"
    [[ $(cat "$out") == "$job CANCELLED" ]] || fail "cancel printed '$(cat "$out")'"
    expect_ok status "$job" --coordinator "$addr"
    stdout_has '^state +CANCELLED$'
    stdout_has 'cancelled [1-9]'
    expect_ok cancel "$job" --coordinator "$addr"  # idempotent
    ;;
  watch_live)
    # On a terminal (script(1) gives it one): one progress line redrawn in place, then a newline.
    command -v script >/dev/null 2>&1 || {
      echo "SKIP [$case_name]: no script(1) to give watch a terminal"
      exit 77
    }
    start_server
    submit_example
    "$peaknas" cancel "$job" --coordinator "$addr" >/dev/null 2>&1 || fail "cancel failed"
    script -qec "'$peaknas' watch $job --coordinator $addr" /dev/null >"$out" 2>"$err"
    status=$?
    [[ $status -eq 1 ]] || fail "watch of a cancelled job exited $status, expected 1"
    grep -q $'\r\033\[K'"$job CANCELLED \[\.\{24\}\] 0/4 trials, [0-9]* rejected, best PSNR -" "$out" ||
      fail "no redrawn progress line for the cancelled job"
    grep -q "peaknas watch: job $job ended CANCELLED" "$out" || fail "no final error line"
    ;;

  watch_cancelled)
    start_server
    submit_example
    "$peaknas" watch "$job" --coordinator "$addr" >"$out" 2>"$err" &
    watch_pid=$!
    sleep 0.5
    "$peaknas" cancel "$job" --coordinator "$addr" >/dev/null 2>&1 || fail "cancel failed"
    for ((i = 0; i < 100; i++)); do
      kill -0 "$watch_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$watch_pid" 2>/dev/null; then
      kill -KILL "$watch_pid"
      fail "watch did not end within 10 s of the cancel"
    fi
    wait "$watch_pid"
    status=$?
    [[ $status -eq 1 ]] || fail "watch of a cancelled job exited $status, expected 1"
    stdout_has '^#[0-9]+ trial t-[0-9]+ rejected: predicted inference peak'
    stdout_has "^#[0-9]+ job $job CANCELLED"
    grep -qx "peaknas watch: job $job ended CANCELLED" "$err" || fail "unexpected stderr"
    ;;

  # --- bad input ----------------------------------------------------------------------------
  bad_parallelism)
    start_server
    edited_spec 's/"parallelism": 2/"parallelism": 0/'
    expect_error 1 submit '^peaknas submit: spec\.parallelism: 0 is not in \[1, 1024\]$' \
      submit "$work/spec.json" --coordinator "$addr"
    ;;
  bad_budget)
    start_server
    edited_spec 's/"bytes": "67108864"/"bytes": "1024"/'
    expect_error 1 submit 'spec\.budget\.bytes: ' submit "$work/spec.json" --coordinator "$addr"
    ;;
  unknown_field)
    start_server
    edited_spec 's/"seed": 7/"seed": 7, "colour": "red"/'
    expect_error 1 submit 'spec\.colour: unknown field' \
      submit "$work/spec.json" --coordinator "$addr"
    ;;
  unknown_nested_field)
    start_server
    edited_spec 's/"steps": 50/"stepz": 50/'
    expect_error 1 submit 'spec\.fidelity\.stepz: unknown field; allowed: steps, ' \
      submit "$work/spec.json" --coordinator "$addr"
    ;;
  malformed_json)
    start_server
    printf '{"name": ' >"$work/spec.json"
    expect_error 1 submit 'spec\.json": malformed JSON at byte' \
      submit "$work/spec.json" --coordinator "$addr"
    ;;
  bad_value)
    start_server
    edited_spec 's/"trials": 4/"trials": "four"/'
    expect_error 1 submit 'trials' submit "$work/spec.json" --coordinator "$addr"
    ;;
  missing_spec_file)
    expect_error 1 submit '"/nonexistent/job\.json": cannot open' \
      submit /nonexistent/job.json --coordinator 127.0.0.1:1
    ;;
  unknown_job)
    start_server
    for cmd in status frontier trials cancel watch; do
      expect_error 1 "$cmd" 'NOT_FOUND|unknown job "j-999"' "$cmd" j-999 --coordinator "$addr"
    done
    ;;
  unreachable)
    # Port 1 on loopback: nothing listens there.
    for cmd in "jobs" "status j-1" "cancel j-1" "frontier j-1"; do
      # shellcheck disable=SC2086
      expect_error 1 "${cmd%% *}" 'the coordinator at 127\.0\.0\.1:1 is not reachable' \
        $cmd --coordinator 127.0.0.1:1
    done
    expect_error 1 submit 'the coordinator at 127\.0\.0\.1:1 is not reachable' \
      submit "$spec" --coordinator 127.0.0.1:1
    ;;
  health)
    # gRPC's standard health check: SERVING from a running server, over plaintext and over
    # TLS (as the container's health check and the readiness probe ask it); a service the
    # server does not have, and a server that is not there, exit 1 with one line.
    start_server
    expect_ok health --coordinator "$addr"
    stdout_has '^SERVING$'
    expect_ok health --service peaknas.v1.JobService --coordinator "$addr"
    stdout_has '^SERVING$'
    expect_error 1 health 'does not know the service "no\.Such"' health --service no.Such \
      --coordinator "$addr"
    expect_error 1 health 'the coordinator at 127\.0\.0\.1:1 is not reachable' health \
      --coordinator 127.0.0.1:1
    stop_process "$server_pid"
    "$repo/scripts/make-test-ca" "$work/ca" >/dev/null || fail "make-test-ca"
    start_server --tls-cert "$work/ca/server.pem" --tls-key "$work/ca/server.key"
    expect_ok health --coordinator "$addr" --tls-ca "$work/ca/ca.pem"
    stdout_has '^SERVING$'
    ;;
  export_no_artifact)
    # A queued trial has no trained model yet: NOT_FOUND, one line, no file left behind.
    start_server
    submit_example
    expect_error 1 export 'has no artifact' \
      export "$job" t-2 -o "$work/model.pt" --coordinator "$addr"
    [[ ! -e "$work/model.pt" && ! -e "$work/model.pt.partial" ]] || fail "left a file behind"
    ;;
  bad_format)
    expect_error 2 frontier '--format' frontier j-1 --format xml
    ;;
  missing_job)
    expect_error 2 status 'JOB' status
    ;;
  export_missing_output)
    expect_error 2 export '-o|--output' export j-1 t-1
    ;;
  workers)
    start_server
    expect_ok workers --coordinator "$addr"
    stdout_has '^no worker online'
    expect_ok workers --all --coordinator "$addr"
    stdout_has '^no worker has registered'
    # A real worker registers and long-polls: listed online and idle.
    start_worker cli-worker
    stdout_has '^ID +NAME +DEVICE +MEMORY +DATASETS +STATE +LAST SEEN +TRIALS$'
    stdout_has '^w-1 +cli-worker +cpu +[0-9.]+ [KMGT]iB +syn +idle +[0-9]+ s ago +-$'
    kill -TERM "$worker_pid"
    wait "$worker_pid"
    worker_pid=
    expect_ok workers --all --coordinator "$addr"
    stdout_has '^w-1 +cli-worker '
    ;;
  calibration)
    # An empty coordinator: no calibration yet; JSON that `estimate --calibration` reads.
    start_server
    expect_ok calibration --coordinator "$addr"
    stdout_has '^no calibration yet'
    expect_ok calibration --coordinator "$addr" --format json --device-profile cpu
    stdout_has '^\{"calibrations":\[\]\}$'
    expect_error 2 calibration 'format' calibration --coordinator "$addr" --format csv
    ;;
  tokens)
    # Tokens made by `peaknas-server token create` on the server's database; the secret is
    # printed once and never stored.
    # dash reads every tenant's jobs; a token's tenant is otherwise its name.
    for t in root:admin:root 'dash:reader:*' rack:worker:rack; do
      IFS=: read -r name role tenant <<<"$t"
      "$server" token create --db "$work/peaknas.db" --name "$name" --role "$role" --tenant "$tenant" \
        >"$work/$name.token" 2>"$work/token.err" || fail "token create $name: $(cat "$work/token.err")"
      grep -qE '^pnk_[A-Za-z0-9_-]{43}$' "$work/$name.token" || fail "token create printed $(cat "$work/$name.token")"
    done
    "$server" token list --db "$work/peaknas.db" >"$out" 2>"$err" || fail "token list"
    stdout_has '^root +admin +root +[0-9-]+T[0-9:]+Z +-$'
    stdout_has '^dash +reader +\* '
    grep -qF "$(cut -c5- "$work/root.token")" "$out" "$work/peaknas.db" && fail "a secret is stored or listed"
    start_server
    expect_error 1 jobs 'needs a bearer token' jobs --coordinator "$addr"
    expect_ok submit "$spec" --coordinator "$addr" --token-file "$work/root.token"
    job=$(cat "$out")
    PEAKNAS_TOKEN=$(cat "$work/dash.token") expect_ok jobs --coordinator "$addr"
    stdout_has "^$job "
    expect_error 1 cancel 'role reader.* may not submit or cancel' cancel "$job" --coordinator "$addr" \
      --token-file "$work/dash.token"
    # A worker with its token registers and is listed; it may not read jobs.
    client_args=(--token-file "$work/dash.token")
    start_worker tok-worker --token-file "$work/rack.token"
    stdout_has '^w-1 +tok-worker '
    expect_error 1 jobs 'role worker.* may not read' jobs --coordinator "$addr" --token-file "$work/rack.token"
    # Revoked while the server runs: refused on the next call.
    "$server" token revoke --db "$work/peaknas.db" --name dash 2>"$work/token.err" || fail "revoke"
    expect_error 1 jobs 'unknown or revoked' jobs --coordinator "$addr" --token-file "$work/dash.token"
    expect_error 1 jobs 'cannot read' jobs --coordinator "$addr" --token-file "$work/absent.token"
    ;;
  tls)
    # A test CA (scripts/make-test-ca), and another one whose certificates must not pass.
    "$repo/scripts/make-test-ca" "$work/ca" >/dev/null || fail "make-test-ca"
    "$repo/scripts/make-test-ca" "$work/other" >/dev/null || fail "make-test-ca (other)"
    start_server --tls-cert "$work/ca/server.pem" --tls-key "$work/ca/server.key"
    expect_ok jobs --coordinator "$addr" --tls-ca "$work/ca/ca.pem"
    stdout_has '^ID +NAME +STATE '
    PEAKNAS_TLS_CA="$work/ca/ca.pem" expect_ok submit "$spec" --coordinator "$addr"
    expect_error 1 jobs 'not reachable' jobs --coordinator "$addr"  # plaintext
    expect_error 1 jobs 'certificate verify failed' jobs --coordinator "$addr" --tls-ca "$work/other/ca.pem"
    expect_error 1 jobs 'tls-cert: given without --tls-key' jobs --coordinator "$addr" \
      --tls-ca "$work/ca/ca.pem" --tls-cert "$work/ca/client.pem"
    # A worker over TLS registers.
    client_args=(--tls-ca "$work/ca/ca.pem")
    start_worker tls-worker --tls-ca "$work/ca/ca.pem"
    stdout_has '^w-1 +tls-worker '
    ;;
  https)
    # The HTTP API over TLS with the same certificate, read by Python's ssl module.
    need_python
    "$repo/scripts/make-test-ca" "$work/ca" >/dev/null || fail "make-test-ca"
    "$repo/scripts/make-test-ca" "$work/other" >/dev/null || fail "make-test-ca (other)"
    start_server --tls-cert "$work/ca/server.pem" --tls-key "$work/ca/server.key" \
      --http-listen 127.0.0.1:0
    for ((i = 0; i < 200; i++)); do
      http=$(sed -n 's|^http on https://\(.*\)/$|\1|p' "$work/server.out")
      [[ -n $http ]] && break
      sleep 0.05
    done
    [[ -n $http ]] || fail "no 'http on https://' line: $(cat "$work/server.out")"
    https_get() {  # CA PATH: prints the status, or the TLS error's name
      "$python" - "$http" "$1" "$2" <<'PY'
import http.client, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
context = ssl.create_default_context(cafile=sys.argv[2])
try:
    c = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    c.request("GET", sys.argv[3])
    print(c.getresponse().status)
except ssl.SSLError as e:
    print(type(e).__name__)
PY
    }
    [[ $(https_get "$work/ca/ca.pem" /livez) == 200 ]] || fail "GET /livez over TLS"
    [[ $(https_get "$work/ca/ca.pem" /v1/jobs) == 200 ]] || fail "GET /v1/jobs over TLS"
    [[ $(https_get "$work/other/ca.pem" /livez) == SSLCertVerificationError ]] ||
      fail "another CA's client accepted the server"
    # Plaintext HTTP to the TLS port gets no answer.
    plain=$("$python" - "$http" <<'PY'
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
try:
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("GET", "/livez")
    print(c.getresponse().status)
except Exception as e:
    print("refused")
PY
    )
    [[ $plain == refused ]] || fail "plaintext HTTP answered on the TLS port: $plain"
    ;;
  mtls)
    "$repo/scripts/make-test-ca" "$work/ca" >/dev/null || fail "make-test-ca"
    "$repo/scripts/make-test-ca" "$work/other" >/dev/null || fail "make-test-ca (other)"
    start_server --tls-cert "$work/ca/server.pem" --tls-key "$work/ca/server.key" \
      --tls-client-ca "$work/ca/ca.pem"
    expect_ok jobs --coordinator "$addr" --tls-ca "$work/ca/ca.pem" \
      --tls-cert "$work/ca/client.pem" --tls-key "$work/ca/client.key"
    expect_error 1 jobs 'not reachable' jobs --coordinator "$addr" --tls-ca "$work/ca/ca.pem"
    expect_error 1 jobs 'not reachable' jobs --coordinator "$addr" --tls-ca "$work/ca/ca.pem" \
      --tls-cert "$work/other/client.pem" --tls-key "$work/other/client.key"
    ;;
  insecure_listen)
    run_server() { "$server" "$@" --db "$work/peaknas.db" --artifacts "$work/artifacts" >"$out" 2>"$err"; status=$?; }
    run_server --listen 0.0.0.0:0
    [[ $status -eq 2 ]] || fail "a non-loopback --listen without --insecure: status $status"
    grep -q 'not a loopback address.*--insecure' "$err" || fail "no reason given: $(cat "$err")"
    run_server --listen 127.0.0.1:0 --http-listen 0.0.0.0:0
    [[ $status -eq 2 ]] || fail "a non-loopback --http-listen without --insecure: status $status"
    run_server --listen 0.0.0.0:0 --tls-cert "$work/absent.pem"
    [[ $status -eq 2 ]] || fail "a missing --tls-cert: status $status"
    run_server --tls-key "$work/peaknas.db"
    [[ $status -eq 2 ]] || fail "--tls-key alone: status $status"
    # With TLS, any address is allowed.
    "$repo/scripts/make-test-ca" "$work/ca" >/dev/null || fail "make-test-ca"
    "$server" --listen 0.0.0.0:0 --db "$work/peaknas.db" --artifacts "$work/artifacts" \
      --tls-cert "$work/ca/server.pem" --tls-key "$work/ca/server.key" >"$work/server.out" \
      2>"$work/server.err" &
    server_pid=$!
    for ((i = 0; i < 200; i++)); do
      grep -q '^listening on 0.0.0.0:' "$work/server.out" 2>/dev/null && break
      kill -0 "$server_pid" 2>/dev/null || fail "peaknas-server with TLS on 0.0.0.0 exited: $(cat "$work/server.err")"
      sleep 0.05
    done
    grep -q '^listening on 0.0.0.0:' "$work/server.out" || fail "not listening with TLS on 0.0.0.0"
    ;;
  help)
    for cmd in submit jobs status watch frontier trials cancel export workers calibration; do
      run "$cmd" --help
      [[ $status -eq 0 ]] || fail "$cmd --help exited $status"
      [[ ! -s "$err" ]] || fail "$cmd --help wrote to stderr"
      stdout_has '--coordinator'
    done
    run frontier --help
    stdout_has 'table\|csv\|json'
    run export --help
    stdout_has '--output'
    run --help
    for cmd in submit jobs status watch frontier trials cancel export workers calibration; do
      stdout_has "$cmd"
    done
    ;;

  *) unknown_case ;;
esac
exit 0
