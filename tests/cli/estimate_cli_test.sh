#!/usr/bin/env bash
# Runs the built `peaknas estimate` as a real process, one named case per call, and checks its
# exit status, stdout and stderr. Registered with CTest by cli/CMakeLists.txt, one test a case.
#
#   estimate_cli_test.sh PEAKNAS EXAMPLES_DIR CASE
#
# Error cases check the contract of DESIGN.md ("Command line"): a non-zero exit status, nothing
# on stdout, and exactly one line on stderr, "peaknas estimate: <message naming the problem>".
# JSON cases need a Python 3 interpreter ($PYTHON, else python3); without one they exit 77,
# which CTest reports as skipped.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/cli_test_lib.sh"

cli_test_args "PEAKNAS EXAMPLES_DIR CASE" 3 "$@"
peaknas=$1
examples=$2
unet4="$examples/unet4.json"
unet5="$examples/unet5-add-bilinear.json"

cli_test_workdir
program=$peaknas

# expect_error REGEX ARGS...: one stderr line "peaknas estimate: ..." matching REGEX, exit 1-127.
expect_error() { expect_one_line_error nonzero "peaknas estimate: " "$@"; }

# expect_ok ARGS...: fails unless the run exits 0 with output on stdout and nothing on stderr.
expect_ok() {
  run "$@"
  [[ $status -eq 0 ]] || fail "expected exit status 0, got $status"
  [[ -s "$out" ]] || fail "expected a report on stdout"
  [[ ! -s "$err" ]] || fail "expected nothing on stderr"
}

# Keys and types every `estimate --json` object has, and those --budget adds.
readonly json_common='
assert isinstance(d, dict), "not one JSON object"
def is_int(v): return isinstance(v, int) and not isinstance(v, bool)
def is_num(v): return is_int(v) or isinstance(v, float)
for k in ["params", "macs", "activations", "memory_traffic_bytes", "inference_peak_bytes",
          "train_peak_bytes", "batch", "tile", "train_batch", "patch"]:
    assert is_int(d.get(k)) and d[k] > 0, (k, d.get(k))
assert is_num(d["latency_s"]) and d["latency_s"] > 0, d["latency_s"]
assert isinstance(d["arch"], dict) and is_int(d["arch"]["levels"]), d["arch"]
assert isinstance(d["arch_hash"], str) and len(d["arch_hash"]) == 16, d["arch_hash"]
assert d["dtype"] in ("fp32", "fp16", "bf16"), d["dtype"]
assert isinstance(d["device_profile"], str) and d["device_profile"], d["device_profile"]
for k in ["peak_location", "train_peak_location"]:
    loc = d[k]
    assert isinstance(loc["op"], str) and isinstance(loc["stage"], str), loc
    assert is_int(loc["level"]) and isinstance(loc["phase"], str), loc
for k, peak in [("breakdown", "inference_peak_bytes"), ("train_breakdown", "train_peak_bytes")]:
    b = d[k]
    parts = ["weights", "gradients", "optimizer_state", "activations", "workspace"]
    assert all(is_int(b[p]) and b[p] >= 0 for p in parts), b
    assert sum(b[p] for p in parts) == d[peak], (k, b, d[peak])
assert d["peak_location"]["phase"] == "forward", d["peak_location"]
multiple = 2 ** (d["arch"]["levels"] - 1)
'
readonly json_budget='
assert is_int(d["budget_bytes"]) and d["budget_bytes"] > 0, d["budget_bytes"]
for k in ["max_tile", "max_batch", "max_train_batch"]:
    assert is_int(d[k]) and d[k] >= 0, (k, d[k])
assert d["max_tile"] % multiple == 0, (d["max_tile"], multiple)
assert isinstance(d["fits_inference"], bool) and isinstance(d["fits_training"], bool), d
assert d["fits_inference"] == (d["inference_peak_bytes"] <= d["budget_bytes"]), d
assert d["fits_training"] == (d["train_peak_bytes"] <= d["budget_bytes"]), d
'

example_json='{"levels": 4, "widths": [32, 64, 128, 256], "enc_blocks": [1, 1, 2, 2], "dec_blocks": [1, 1, 1], "skip": "concat", "upsample": "transposed", "downsample": "strided", "activation": "relu"}'

# write_calibration FILE: a calibration list for "cpu" with an inference fit and no training fit.
write_calibration() {
  cat >"$1" <<'JSON'
{"calibrations": [{"deviceProfile": "cpu", "framework": "libtorch 1.13.0",
  "inference": {"samples": 12, "overheadBytes": 188743680, "slope": 1.25, "margin": 1.02,
                "quantile": 1, "minRatio": 0.99, "maxRatio": 1.01},
  "training": {"samples": 3, "unfitted": "3 samples; a calibration needs at least 4"},
  "updated": "2026-12-02T00:00:00Z"}]}
JSON
}

case "$case_name" in
  # --- success ------------------------------------------------------------------------------
  example_file)
    expect_ok estimate --arch "$unet4"
    stdout_has '"levels":4'
    stdout_has 'parameters +2,255,299'
    stdout_has 'inference peak at'
    stdout_has 'training peak at'
    stdout_has 'latency'
    ;;
  example_inline_json)
    expect_ok estimate --arch "  $example_json"
    stdout_has 'parameters +2,255,299'
    ;;
  same_report_from_file_and_inline)
    expect_ok estimate --arch "$unet4" --json
    cp "$out" "$work/from_file"
    expect_ok estimate --arch "$example_json" --json
    cmp -s "$out" "$work/from_file" || fail "file and inline JSON give different reports"
    ;;
  budget_text)
    expect_ok estimate --arch "$unet4" --tile 512 --budget 2GiB
    stdout_has '^budget 2\.00 GiB'
    stdout_has 'inference +fits'
    stdout_has 'max tile +[0-9]+x[0-9]+ at batch 1'
    stdout_has 'max batch +[0-9]+ at tile 512x512'
    stdout_has 'max train batch +[0-9]+ at patch 64x64'
    stdout_has '100-MP image'
    ;;
  json_keys)
    expect_ok estimate --arch "$unet4" --json
    check_json "$json_common"'
assert "max_tile" not in d and "budget_bytes" not in d, "budget keys without --budget"
assert d["batch"] == 1 and d["tile"] == 256 and d["train_batch"] == 8 and d["patch"] == 64, d
assert d["dtype"] == "fp32" and d["device_profile"] == "cpu", d
assert d["params"] == 2255299, d["params"]
'
    ;;
  json_budget)
    expect_ok estimate --arch "$unet5" --json --budget 1.5GiB --batch 2 --tile 512 \
      --train-batch 4 --patch 128 --dtype bf16 --device-profile h100
    check_json "$json_common$json_budget"'
assert d["budget_bytes"] == 1610612736, d["budget_bytes"]
assert d["max_tile"] > 0 and is_num(d["latency_100mp_s"]) and d["latency_100mp_s"] > 0, d
# The 100-MP pass is seam-free at batch 1: its window (tile + 2 x overlap) fits at least as
# large as the largest tile at batch 2, and covers 10000 pixels a side.
t, o = d["latency_100mp_tile"], d["latency_100mp_overlap"]
assert t % 16 == 0 and o % 16 == 0 and o > 0 and t + 2 * o >= d["max_tile"], d
assert d["latency_100mp_windows"] == (-(-10000 // t)) ** 2, d
assert (d["batch"], d["tile"], d["train_batch"], d["patch"]) == (2, 512, 4, 128), d
assert d["dtype"] == "bf16" and d["device_profile"] == "h100", d
'
    ;;
  json_budget_nothing_fits)
    expect_ok estimate --arch "$unet4" --json --budget 1KiB
    check_json "$json_common$json_budget"'
assert d["max_tile"] == 0 and d["max_batch"] == 0 and d["max_train_batch"] == 0, d
assert d["latency_100mp_s"] is None and "latency_100mp_tile" not in d, d
assert d["fits_inference"] is False and d["fits_training"] is False, d
'
    ;;
  help)
    run estimate --help
    [[ $status -eq 0 ]] || fail "--help exited $status"
    [[ ! -s "$err" ]] || fail "--help wrote to stderr"
    for want in '--arch' '--batch' '--tile' '--train-batch' '--patch' 'fp16' 'bf16' '--budget' \
      'GiB' '--device-profile' 'h100' '--threads' '--json' 'T=256' 'B=8' 'P=64' 'Default: cpu'; do
      grep -qF -- "$want" "$out" || fail "help does not mention $want"
    done
    ;;
  threads)
    # oneDNN's per-thread weight-gradient buffers: the training peak grows, inference does not.
    one_level='{"levels":1,"widths":[48],"enc_blocks":[1],"dec_blocks":[],"skip":"concat","upsample":"transposed","downsample":"strided","activation":"relu"}'
    expect_ok estimate --arch "$one_level" --tile 64 --json
    cp "$out" "$work/one_thread"
    expect_ok estimate --arch "$one_level" --tile 64 --threads 4 --json
    check_json "$json_common"'
import json
one = json.load(open("'"$work/one_thread"'"))
assert one["threads"] == 1 and d["threads"] == 4, (one["threads"], d["threads"])
assert d["inference_peak_bytes"] == one["inference_peak_bytes"], (d, one)
assert d["train_peak_bytes"] > one["train_peak_bytes"], (d["train_peak_bytes"], one)
'
    expect_ok estimate --arch "$one_level" --threads 4
    stdout_has '^device +cpu .*, fp32, 4 threads$'
    ;;
  root_help)
    run --help
    [[ $status -eq 0 ]] || fail "--help exited $status"
    stdout_has 'estimate'
    ;;

  # --- bad input: one line on stderr, non-zero exit -----------------------------------------
  malformed_json) expect_error 'arch: malformed JSON' estimate --arch '{"levels": 4,' ;;
  not_an_object)
    printf '[1, 2]' >"$work/list.json"
    expect_error 'arch ".*list.json": expected a JSON object' estimate --arch "$work/list.json"
    ;;
  invalid_arch_width)
    expect_error 'widths\[3\]: 250 is not a multiple of 8' estimate \
      --arch "${example_json/256]/250]}"
    ;;
  invalid_arch_unknown_field)
    expect_error 'arch: colour: unknown field' estimate --arch '{"colour": "red"}'
    ;;
  invalid_arch_file)
    printf '{"levels": 9}' >"$work/bad.json"
    expect_error "arch \".*bad.json\": levels: 9 is not in \[1, 6\]" estimate --arch "$work/bad.json"
    ;;
  calibration_json)
    # A calibration list as `peaknas calibration --format json` prints it: the device peaks
    # are margin x (overhead + slope x the allocator peak), rounded up, plus 1 MiB (the
    # measurement's resolution, search::kCalibrationResolutionBytes); training has no fit.
    write_calibration "$work/cal.json"
    expect_ok estimate --arch "$unet4" --json --calibration "$work/cal.json"
    check_json "$json_common"'
import math
want = math.ceil(1.02 * (180 * 2**20 + 1.25 * d["inference_peak_bytes"])) + 2**20
assert abs(d["device_peak_bytes"] - want) <= 1, (d["device_peak_bytes"], want)
assert d["device_train_peak_bytes"] is None, d
assert d["calibration"] == {"device_profile": "cpu", "framework": "libtorch 1.13.0",
                            "samples": 15}, d["calibration"]
'
    ;;
  calibration_text_stdin)
    write_calibration "$work/cal.json"
    run estimate --arch "$unet4" --calibration - <"$work/cal.json"
    [[ $status -eq 0 ]] || fail "exit status $status: $(cat "$err")"
    stdout_has '^  device peak +[0-9.]+ [KMG]iB +n/a \(no fit\)$'
    stdout_has '^  calibration +cpu, libtorch 1.13.0, 15 samples$'
    ;;
  calibration_missing_file) expect_error 'calibration: /nonexistent/cal.json: cannot be opened' \
    estimate --arch "$unet4" --calibration /nonexistent/cal.json ;;
  calibration_malformed)
    printf '{"calibrations": 3}' >"$work/cal.json"
    expect_error 'calibration: .*cal.json: not a calibration list' \
      estimate --arch "$unet4" --calibration "$work/cal.json"
    ;;
  calibration_other_profile)
    write_calibration "$work/cal.json"
    expect_error 'no calibration for device profile "h100" \(it has: cpu\)' \
      estimate --arch "$unet4" --device-profile h100 --calibration "$work/cal.json"
    ;;
  missing_file) expect_error 'arch "/nonexistent/arch.json": cannot open' estimate \
    --arch /nonexistent/arch.json ;;
  empty_arch) expect_error 'arch: empty' estimate --arch '' ;;
  threads_zero) expect_error 'threads: 0 is out of range; expected 1 to 1024' estimate \
    --arch "$unet4" --threads 0 ;;
  missing_arch) expect_error '--arch is required' estimate ;;
  tile_not_multiple)
    expect_error 'tile: 100 is not a multiple of 8' estimate --arch "$unet4" --tile 100 ;;
  patch_not_multiple)
    expect_error 'patch: 20 is not a multiple of 16' estimate --arch "$unet5" --patch 20 ;;
  batch_zero) expect_error 'batch: 0 is not in \[1, 4096\]' estimate --arch "$unet4" --batch 0 ;;
  train_batch_too_large)
    expect_error 'train-batch: 5000 is not in' estimate --arch "$unet4" --train-batch 5000 ;;
  batch_not_a_number) expect_error '--batch' estimate --arch "$unet4" --batch abc ;;
  budget_unknown_unit)
    expect_error 'budget: "12XB" has an unknown unit' estimate --arch "$unet4" --budget 12XB ;;
  budget_negative) expect_error 'budget: "-1MiB" is negative' estimate --arch "$unet4" \
    --budget=-1MiB ;;
  budget_not_a_number) expect_error 'budget: "abc" is not a size' estimate --arch "$unet4" \
    --budget abc ;;
  budget_overflow) expect_error 'budget: .*2\^62' estimate --arch "$unet4" --budget 99999999TiB ;;
  budget_zero) expect_error 'budget: "0" is zero' estimate --arch "$unet4" --budget 0 ;;
  unknown_dtype)
    expect_error 'dtype: "fp64" is not one of \{fp32, fp16, bf16\}' estimate --arch "$unet4" \
      --dtype fp64 ;;
  unknown_device_profile)
    expect_error 'device profile: "tpu9" is not one of \{cpu' estimate --arch "$unet4" \
      --device-profile tpu9 ;;
  unknown_flag) expect_error '--frobnicate' estimate --arch "$unet4" --frobnicate ;;
  unexpected_argument) expect_error 'extra' estimate --arch "$unet4" extra ;;
  missing_value) expect_error '--budget' estimate --arch "$unet4" --budget ;;

  # The same contract for the program itself (prefix "peaknas: ").
  no_subcommand | unknown_subcommand)
    if [[ $case_name == no_subcommand ]]; then run; else run frobnicate; fi
    [[ $status -ne 0 ]] || fail "expected a non-zero exit status"
    [[ $(wc -l <"$err") -eq 1 ]] || fail "expected exactly one line on stderr"
    grep -qE '^peaknas: .*estimate' "$err" || fail "stderr does not name the subcommands"
    ;;

  *) unknown_case ;;
esac
exit 0
