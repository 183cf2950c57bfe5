# What the command-line test drivers share (tests/cli/*.sh, tests/worker/*.sh). A driver is a
# `set -uo pipefail` script run as `DRIVER ARGS... CASE`, one named case per call, that
# dispatches CASE with a `case` statement. It sources this file first, then
#   cli_test_args USAGE COUNT "$@"   checks its arguments and sets case_name, the case being run
#   cli_test_workdir [HOOK]          makes the folder $work and the files $out and $err in it
# and sets program, the program `run` starts. Optionally it sets the array log_files: more files
# (glob patterns, expanded when `fail` runs) whose tails `fail` prints; and python, the Python
# interpreter that check_json runs ($PYTHON, else python3, unless the driver sets another).
# shellcheck shell=bash

# cli_test_args USAGE COUNT ARGS...: exits 2 with "usage: DRIVER USAGE" on stderr unless there
# are COUNT ARGS; else sets case_name to the last of them (every driver takes the case last).
cli_test_args() {
  local usage=$1 count=$2
  shift 2
  if [[ $# -ne $count ]]; then
    echo "usage: $0 $usage" >&2
    exit 2
  fi
  case_name=${!#}
}

# cli_test_workdir [HOOK]: makes a temporary folder, $work, and names the files in it that take
# the program's stdout and stderr, $out and $err. On every exit the folder is removed (read-only
# files a case left in it too); HOOK, a function of the driver, runs first, to stop what the case
# started.
cli_test_workdir() {
  cli_test_exit_hook=${1:-}
  work=$(mktemp -d)
  out="$work/stdout"
  err="$work/stderr"
  trap cli_test_cleanup EXIT
}

# cli_test_cleanup: the EXIT trap that cli_test_workdir sets (the exit status stays the
# driver's).
cli_test_cleanup() {
  [[ -z $cli_test_exit_hook ]] || "$cli_test_exit_hook"
  chmod -R u+w "$work" 2>/dev/null
  rm -rf "$work"
}

# stop_process PID: kills the driver's child PID (nothing when PID is empty) and reaps it.
stop_process() {
  [[ -n $1 ]] || return 0
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# unknown_case: the `*)` branch of a driver's case statement; says so on stderr and exits 2.
unknown_case() {
  echo "unknown case: $case_name" >&2
  exit 2
}

# fail MESSAGE: prints the case, the program's stdout and stderr and the logs; exits 1.
fail() {
  echo "FAIL [$case_name]: $*" >&2
  echo "--- stdout:" >&2
  head -c 4000 "$out" >&2
  echo "--- stderr:" >&2
  tail -c 4000 "$err" >&2
  local pattern log
  for pattern in "${log_files[@]}"; do
    for log in $pattern; do
      [[ -f $log ]] || continue
      echo "--- $log (tail):" >&2
      tail -n 20 "$log" >&2
    done
  done
  exit 1
}

# run ARGS...: runs $program ARGS; its exit status goes to $status.
run() {
  # shellcheck disable=SC2154  # $program is the driver's
  "$program" "$@" >"$out" 2>"$err"
  status=$?
}

# expect_one_line_error STATUS PREFIX REGEX ARGS...: runs ARGS and fails unless the exit status
# is STATUS ("nonzero": any status from 1 to 127, no crash), nothing is on stdout, and stderr is
# exactly one line that starts with PREFIX and matches REGEX (grep -E): the error contract of
# DESIGN.md ("Command line").
expect_one_line_error() {
  local want=$1 prefix=$2 regex=$3
  shift 3
  run "$@"
  if [[ $want == nonzero ]]; then
    [[ $status -ne 0 ]] || fail "expected a non-zero exit status, got 0"
    [[ $status -lt 128 ]] || fail "crashed with status $status"
  else
    [[ $status -eq $want ]] || fail "expected exit status $want, got $status"
  fi
  [[ ! -s "$out" ]] || fail "expected nothing on stdout"
  local lines
  lines=$(wc -l <"$err")
  [[ $lines -eq 1 ]] || fail "expected exactly one line on stderr, got $lines"
  grep -q -- "^$prefix" "$err" || fail "stderr does not start with '$prefix'"
  grep -qE -- "$regex" "$err" || fail "stderr does not match /$regex/"
}

# stdout_has REGEX: fails unless a line of the program's stdout matches REGEX (grep -E).
stdout_has() {
  grep -qE -- "$1" "$out" || fail "stdout does not match /$1/"
}

# start_coordinator SERVER DB ARTIFACTS [ARGS...]: starts peaknas-server (the binary SERVER) on
# 127.0.0.1:0 with its database and artifacts there (and ARGS), its output in $work/server.out
# and $work/server.err; sets $server_pid, and $addr from its first stdout line.
start_coordinator() {
  local bin=$1 db=$2 artifacts=$3
  shift 3
  "$bin" --listen 127.0.0.1:0 --db "$db" --artifacts "$artifacts" --shutdown-grace-seconds 1 \
    "$@" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  local i line
  for ((i = 0; i < 200; i++)); do
    line=$(head -n 1 "$work/server.out" 2>/dev/null)
    if [[ $line == "listening on "* ]]; then
      # shellcheck disable=SC2034  # read by the drivers
      addr=${line#listening on }
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || fail "peaknas-server exited before listening"
    sleep 0.05
  done
  fail "peaknas-server did not print 'listening on' within 10 s"
}

# need_python: exits 77, which CTest reports as skipped, unless $python names an interpreter. A
# driver whose cases must not be skipped defines its own after sourcing this file.
need_python() {
  command -v "$python" >/dev/null 2>&1 || {
    echo "SKIP [$case_name]: no Python interpreter ($python)"
    exit 77
  }
}

# check_json PYTHON_CODE [ARGS...]: runs PYTHON_CODE in $python (need_python first) with `text`,
# the program's stdout, `d`, that text parsed as JSON, and the modules json, math and sys in
# scope; ARGS are sys.argv[3:]. Stdout that is not JSON, or a failed assertion, fails the case.
check_json() {
  need_python
  "$python" -c '
import json, math, sys
text = open(sys.argv[1]).read()
d = json.loads(text)
exec(sys.argv[2])
' "$out" "$@" 2>"$work/python" || {
    cat "$work/python" >&2
    fail "JSON check failed"
  }
}

log_files=()
python=${PYTHON:-python3}
