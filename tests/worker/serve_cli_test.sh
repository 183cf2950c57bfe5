#!/usr/bin/env bash
# `peaknas-worker serve`'s command line as a real process (no coordinator needed): help, and the
# one-line errors for bad flags. One named case per call, registered with CTest by
# worker/CMakeLists.txt (worker.serve_cli.<case>). The lease loop itself is worker/serve_test.cc.
#
#   serve_cli_test.sh PEAKNAS_WORKER CASE
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/cli_test_lib.sh"

cli_test_args "PEAKNAS_WORKER CASE" 2 "$@"
worker=$1

cli_test_workdir
program=$worker

# expect_error STATUS REGEX ARGS...: exit STATUS, one stderr line "peaknas-worker serve: ..."
# matching REGEX.
expect_error() {
  local want=$1
  shift
  expect_one_line_error "$want" "peaknas-worker serve: " "$@"
}

mkdir -p "$work/data"
case "$case_name" in
  help)
    run serve --help
    [[ $status -eq 0 ]] || fail "--help exited $status"
    [[ ! -s "$err" ]] || fail "--help wrote to stderr"
    for flag in --coordinator --data --device --name --threads --work-dir --latency-runs; do
      grep -q -- "$flag" "$out" || fail "help does not mention $flag"
    done
    ;;
  root_help_lists_serve)
    run --help
    [[ $status -eq 0 ]] || fail "--help exited $status"
    grep -q 'serve' "$out" || fail "root help does not list serve"
    ;;
  missing_coordinator) expect_error 2 'coordinator' serve --data "x=$work/data" ;;
  missing_data) expect_error 2 'data' serve --coordinator 127.0.0.1:1 ;;
  data_not_name_path) expect_error 1 'data: "nopath" is not NAME=PATH' \
    serve --coordinator 127.0.0.1:1 --data nopath ;;
  data_dir_missing) expect_error 1 'data x="[^"]*/missing": no such directory' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/missing" ;;
  data_twice) expect_error 1 'dataset "x" given twice' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --data "x=$work/data" ;;
  unknown_device) expect_error 1 'device' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --device tpu ;;
  latency_runs_zero) expect_error 1 'latency-runs: 0 is not in \[1, 1000\]' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --latency-runs 0 ;;
  negative_threads) expect_error 1 'threads' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --threads -1 ;;
  max_concurrent_zero) expect_error 1 'max-concurrent: 0 is not in \[1, 64\]' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --max-concurrent 0 ;;
  memory_not_a_size) expect_error 1 'memory' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --memory lots ;;
  reserve_above_memory) expect_error 1 'memory-reserve: 2.00 GiB leaves nothing of --memory 1.00 GiB' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --memory 1GiB --memory-reserve 2GiB ;;
  work_dir_missing) expect_error 1 'work-dir' \
    serve --coordinator 127.0.0.1:1 --data "x=$work/data" --work-dir "$work/nope" ;;
  # DESIGN.md's form, without the subcommand name, is `serve`.
  root_form) expect_error 1 'data: "nopath" is not NAME=PATH' \
    --coordinator 127.0.0.1:1 --data nopath ;;
  *) unknown_case ;;
esac
exit 0
