# What the command-line test drivers share (tests/cli/*.sh, tests/worker/*.sh). Source it after
# setting:
#   case_name  the case being run, for messages
#   out, err   the files that take the program's stdout and stderr
#   program    the program `run` starts
# and, optionally, the array log_files: more files (glob patterns, expanded when `fail` runs)
# whose tails `fail` prints.
# shellcheck shell=bash

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

log_files=()
