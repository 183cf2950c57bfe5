#!/usr/bin/env bash
# Runs the built `peaknas-worker` as a real process, one named case per call, and checks its
# exit status, stdout and stderr. Registered with CTest by worker/CMakeLists.txt, one test a
# case (worker.cli.<case>).
#
#   worker_cli_test.sh PEAKNAS_WORKER CASE
#
# Error cases check the contract of DESIGN.md ("Command line"): a non-zero exit status, nothing
# on stdout, and exactly one line on stderr, "peaknas-worker <subcommand>: <message naming the
# problem>". JSON checks and the TorchScript load use $PYTHON (Debian's /usr/bin/python3, which
# has torch); without it the case fails and says so.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/cli_test_lib.sh"

cli_test_args "PEAKNAS_WORKER CASE" 2 "$@"
worker=$1
python=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cli_test_workdir
program=$worker

# expect_error SUBCOMMAND REGEX ARGS...: one stderr line "peaknas-worker SUBCOMMAND: ..."
# matching REGEX, exit 1-127.
expect_error() {
  local sub=$1
  shift
  expect_one_line_error nonzero "peaknas-worker $sub: " "$@"
}

expect_ok() {
  run "$@"
  [[ $status -eq 0 ]] || fail "expected exit status 0, got $status"
  [[ -s "$out" ]] || fail "expected output on stdout"
}

# need_python: fails the case (the lib's would skip it) unless $python is there.
need_python() {
  [[ -x "$python" ]] || fail "no Python interpreter at $python (Debian's python3 with python3-torch; scripts/bootstrap installs it)"
}

# A tiny dataset: 1 scene x 2 pairs of 64x64, 2 x 2 validation blocks of 32x32.
make_tiny_data() {
  "$worker" make-data --out "$work/data" --scenes 1 --size 64 --val-images 2 --val-blocks 2 \
    --block-size 32 --seed 9 >"$work/make-data.out" 2>"$work/make-data.err" ||
    { cat "$work/make-data.err" >&2; fail "make-data failed"; }
}

# A 3-level model trained a few steps (exported), and a 160x160 noisy image: $image.
# A model of $1 (default: $three) trained two steps, in $work/model.pt; $image: a 160x160 PNG.
make_denoise_model() {
  "$worker" make-data --out "$work/data" --scenes 1 --size 160 --val-images 1 --val-blocks 2 \
    --block-size 32 --seed 9 >"$work/make-data.out" 2>"$work/make-data.err" ||
    { cat "$work/make-data.err" >&2; fail "make-data failed"; }
  "$worker" once --arch "${1:-$three}" --data "$work/data" --steps 2 --train-batch 2 --patch 32 \
    --tile 32 --latency-runs 1 --export "$work/model.pt" >"$work/once.out" 2>"$work/once.err" ||
    { cat "$work/once.err" >&2; fail "once --export failed"; }
  local images=("$work"/data/Data/*/NOISY_SRGB_010.PNG)
  image=${images[0]}
}

tiny='{"levels": 2, "widths": [8, 16], "enc_blocks": [1, 1], "dec_blocks": [1], "skip": "add", "upsample": "bilinear", "downsample": "maxpool", "activation": "lrelu"}'
three='{"levels": 3, "widths": [8, 16, 32], "enc_blocks": [1, 1, 1], "dec_blocks": [1, 1], "skip": "concat", "upsample": "transposed", "downsample": "strided", "activation": "relu"}'

# What every report of `once` is: one line of JSON, one object with these keys and values.
readonly once_keys='
lines = text.splitlines()
assert len(lines) == 1, "expected one line of JSON on stdout, got %d" % len(lines)
assert isinstance(d, dict), "not one JSON object"
def is_int(v): return isinstance(v, int) and not isinstance(v, bool)
def is_num(v): return is_int(v) or isinstance(v, float)
keys = ["arch", "arch_hash", "device", "device_profile", "precision", "steps", "train_batch",
        "patch", "batch", "tile", "final_loss", "psnr", "ssim", "noisy_psnr", "noisy_ssim",
        "psnr_gain", "params", "macs", "predicted_inference_peak_bytes",
        "measured_inference_peak_bytes", "process_inference_peak_bytes",
        "predicted_train_peak_bytes", "measured_train_peak_bytes", "process_train_peak_bytes",
        "inference_ratio", "train_ratio", "latency_ms_per_tile", "latency_ms_per_mp",
        "predicted_latency_ms_per_tile", "train_steps_per_s", "train_seconds", "eval_seconds",
        "latency_100mp_s", "intra_op_threads", "framework", "export"]
missing = [k for k in keys if k not in d]
assert not missing, "missing keys: %s" % missing
for k in ["params", "macs", "steps", "train_batch", "patch", "batch", "tile",
          "predicted_inference_peak_bytes", "measured_inference_peak_bytes",
          "process_inference_peak_bytes", "predicted_train_peak_bytes",
          "measured_train_peak_bytes", "process_train_peak_bytes"]:
    assert is_int(d[k]) and d[k] > 0, (k, d[k])
for k in ["final_loss", "psnr", "ssim", "noisy_psnr", "noisy_ssim", "psnr_gain", "inference_ratio",
          "train_ratio", "latency_ms_per_tile", "latency_ms_per_mp",
          "predicted_latency_ms_per_tile", "train_steps_per_s", "train_seconds", "eval_seconds"]:
    assert is_num(d[k]) and math.isfinite(d[k]), (k, d[k])
# The cost model is an upper bound on what the allocator saw (fp32 on the CPU).
assert d["measured_inference_peak_bytes"] <= d["predicted_inference_peak_bytes"], d
assert d["measured_train_peak_bytes"] <= d["predicted_train_peak_bytes"], d
assert abs(d["inference_ratio"] - d["predicted_inference_peak_bytes"] / d["measured_inference_peak_bytes"]) < 1e-9, d
assert abs(d["train_ratio"] - d["predicted_train_peak_bytes"] / d["measured_train_peak_bytes"]) < 1e-9, d
assert d["inference_ratio"] >= 1 and d["train_ratio"] >= 1, d
# The training step holds weights, gradients and Adam state: more than one inference pass here.
assert d["measured_train_peak_bytes"] > 4 * d["params"] * 4, d
assert abs(d["psnr_gain"] - (d["psnr"] - d["noisy_psnr"])) < 1e-9, d
assert abs(d["latency_100mp_s"] - d["latency_ms_per_mp"] / 10) < 1e-9, d
assert d["intra_op_threads"] == d["threads"] and d["threads"] >= 1, d
assert 5 < d["noisy_psnr"] < 60 and 0 < d["noisy_ssim"] <= 1, d
assert d["process_inference_peak_bytes"] >= d["measured_inference_peak_bytes"], d
# Each process peak covers its pass alone (heap trimmed, high-water mark reset before it).
assert d["process_train_peak_bytes"] >= d["measured_train_peak_bytes"], d
assert d["framework"].startswith("libtorch "), d
assert isinstance(d["arch"], dict) and isinstance(d["arch_hash"], str) and len(d["arch_hash"]) == 16
assert d["device"] == "cpu" and d["device_profile"] == "cpu" and d["precision"] == "fp32", d
'

case "$case_name" in
  # --- make-data ----------------------------------------------------------------------------
  make_data_layout)
    expect_ok make-data --out "$work/data" --scenes 2 --pairs-per-scene 2 --size 64 \
      --val-images 2 --val-blocks 3 --block-size 32 --seed 5
    grep -q "^wrote $work/data: 2 scenes x 2 pairs of 64x64, 2 x 3 validation blocks of 32x32" \
      "$out" || fail "unexpected summary"
    grep -q '^make-data: scenes 2/2$' "$err" || fail "no progress lines on stderr"
    for scene in 0001_SYN 0002_SYN; do
      for k in 010 011; do
        for kind in NOISY GT; do
          f="$work/data/Data/$scene/${kind}_SRGB_$k.PNG"
          [[ -s "$f" ]] || fail "missing $f"
          head -c 8 "$f" | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a' || fail "$f is not a PNG"
        done
      done
    done
    for mat in ValidationNoisyBlocksSrgb ValidationGtBlocksSrgb; do
      f="$work/data/$mat.mat"
      [[ -s "$f" ]] || fail "missing $f"
      head -c 19 "$f" | grep -q '^MATLAB 5.0 MAT-file' || fail "$f is not a MAT v5 file"
    done
    [[ -s "$work/data/peaknas-data.json" ]] || fail "missing the manifest"
    # The same flags give the same bytes; rewriting an earlier output is allowed.
    cp "$work/data/ValidationNoisyBlocksSrgb.mat" "$work/first.mat"
    expect_ok make-data --out "$work/data" --scenes 2 --pairs-per-scene 2 --size 64 \
      --val-images 2 --val-blocks 3 --block-size 32 --seed 5 --threads 1
    cmp -s "$work/first.mat" "$work/data/ValidationNoisyBlocksSrgb.mat" ||
      fail "same seed, different validation blocks"
    ;;
  make_data_bad_flag)
    expect_error make-data 'size: 8 is not in \[16, 16384\]' make-data --out "$work/data" --size 8 ;;
  make_data_refuses_foreign_dir)
    mkdir -p "$work/photos" && echo keep >"$work/photos/notes.txt"
    expect_error make-data "$work/photos" make-data --out "$work/photos"
    ;;

  # --- once ---------------------------------------------------------------------------------
  once_json)
    make_tiny_data
    expect_ok once --arch "$tiny" --data "$work/data" --steps 4 --train-batch 2 --patch 32 \
      --tile 64 --progress-every 2 --latency-runs 2 --seed 3
    check_json "$once_keys"'
assert d["steps"] == 4 and d["train_batch"] == 2 and d["patch"] == 32, d
assert d["batch"] == 1 and d["tile"] == 64 and d["export"] is None, d
assert d["arch"]["skip"] == "add" and d["arch"]["widths"] == [8, 16], d["arch"]
assert d["eval_blocks"] == 4, d
'
    grep -q '^once: step 4/4 ' "$err" || fail "no final progress line on stderr"
    grep -q '^once: evaluate: 4 validation blocks of 32x32' "$err" || fail "no evaluate stage"
    grep -q "^once: data: $work/data: 2 training pairs, 4 validation blocks of 32x32" "$err" ||
      fail "no data stage"
    ;;
  once_export)
    make_tiny_data
    expect_ok once --arch "$three" --data "$work/data" --steps 2 --train-batch 2 --patch 32 \
      --tile 32 --latency-runs 1 --export "$work/model.pt"
    check_json "$once_keys"'
assert d["export"] == sys.argv[3], (d["export"], sys.argv[3])
' "$work/model.pt"
    [[ -s "$work/model.pt" ]] || fail "no TorchScript file"
    need_python
    "$python" -c '
import json, sys, torch
d = json.loads(open(sys.argv[1]).read())
m = torch.jit.load(sys.argv[2])
assert json.loads(m.architecture) == d["arch"], (m.architecture, d["arch"])
assert sum(p.numel() for p in m.parameters()) == d["params"]
with torch.no_grad():
    y = m(torch.rand(1, 3, 32, 32))
assert tuple(y.shape) == (1, 3, 32, 32), y.shape
' "$out" "$work/model.pt" 2>"$work/python" || {
      cat "$work/python" >&2
      fail "the exported model does not load in PyTorch"
    }
    ;;
  once_missing_data)
    expect_error once 'data "/nonexistent/peaknas-data": no such directory' once --arch "$tiny" \
      --data /nonexistent/peaknas-data ;;
  once_not_a_dataset)
    expect_error once "$work/Data: no such directory \\(expected Data/" once --arch "$tiny" --data "$work" ;;
  once_patch_larger_than_images)
    make_tiny_data
    expect_error once 'is smaller than the patch 128x128' once --arch "$tiny" --data "$work/data" \
      --patch 128 ;;
  once_blocks_not_multiple)
    "$worker" make-data --out "$work/data" --scenes 1 --size 64 --val-images 1 --val-blocks 1 \
      --block-size 30 >/dev/null 2>&1 || fail "make-data failed"
    expect_error once "data \"$work/data\": validation blocks of 30x30 cannot be evaluated by a 3-level U-Net \\(the side must be a multiple of 4\\)" \
      once --arch "$three" --data "$work/data" --patch 32 ;;
  once_invalid_arch)
    expect_error once 'arch: widths\[0\]: 12 is not a multiple of 8' once \
      --arch "${tiny/\[8, 16\]/[12, 16]}" --data "$work" ;;
  once_patch_not_multiple)
    expect_error once 'patch: 30 is not a multiple of 4' once --arch "$three" --data "$work" \
      --patch 30 ;;
  once_unknown_device)
    expect_error once 'device: "tpu" is not one of cpu, cuda, cuda:N' once --arch "$tiny" \
      --data "$work" --device tpu ;;
  once_cuda_unavailable)
    # A CPU-only build says CUDA is missing; a CUDA build that no GPU 99 exists.
    expect_error once 'device: "cuda:99": (CUDA is not available|this machine has [0-9]+ CUDA)' \
      once --arch "$tiny" --data "$work" --device cuda:99 ;;
  once_bad_precision)
    expect_error once "precision: 'fp8' is not one of fp32, bf16, fp16" once --arch "$tiny" \
      --data "$work" --precision fp8 ;;
  once_missing_arch) expect_error once '--arch is required' once --data "$work" ;;
  once_export_dir_missing)
    expect_error once 'export "/nonexistent/dir/m.pt": directory /nonexistent/dir does not exist' \
      once --arch "$tiny" --data "$work" --export /nonexistent/dir/m.pt ;;

  # --- help and usage -----------------------------------------------------------------------
  denoise_tiled_equals_whole)
    # A trained model applied to a 160x160 image: with a budget that forces tiles, the output
    # is byte for byte the whole-image output.
    make_denoise_model
    expect_ok denoise --model "$work/model.pt" --in "$image" --out "$work/whole.png" --budget 2GiB
    check_json '
assert d["tile"] == 160 and d["width"] == 160 and d["height"] == 160, d
assert d["overlap"] > 0 and d["overlap"] % 4 == 0, d
'
    expect_ok denoise --model "$work/model.pt" --in "$image" --out "$work/tiled.png" --budget 8MiB
    check_json '
assert d["tile"] < 160 and d["tile"] % 4 == 0, d
assert d["predicted_window_peak_bytes"] + d["image_buffer_bytes"] <= d["budget_bytes"], d
'
    grep -q 'tiles 4/4 (100%)' "$err" || fail "no progress on stderr"
    cmp -s "$work/whole.png" "$work/tiled.png" || fail "tiled output differs from the whole image's"
    # Without the overlap the tiles show seams.
    expect_ok denoise --model "$work/model.pt" --in "$image" --out "$work/seams.png" --budget 2GiB \
      --tile 40 --overlap 0
    cmp -s "$work/whole.png" "$work/seams.png" && fail "a tiling without overlap changed nothing"
    ;;
  denoise_calibrated_budget)
    # With a device calibration the budget is the whole process's: a calibration that puts the
    # process at 200 MiB + 1.05 x the window's peak (with a 1.05 margin) leaves, of 215 MiB, room for
    # a smaller tile than 215 MiB of network alone would, and the process stays within it.
    make_denoise_model
    printf '%s\n' '{"deviceProfile": "cpu", "framework": "test", "inference": {"samples": 8,
      "overheadBytes": 209715200, "slope": 1.05, "margin": 1.05, "quantile": 0.99}}' \
      >"$work/calibration.json"
    expect_ok denoise --model "$work/model.pt" --in "$image" --out "$work/a.png" --budget 215MiB \
      --calibration "$work/calibration.json"
    check_json '
assert 0 < d["tile"] < 160, d
assert d["predicted_process_peak_bytes"] <= d["budget_bytes"], d
assert 0 < d["process_peak_bytes"] <= d["budget_bytes"], d
'
    expect_ok denoise --model "$work/model.pt" --in "$image" --out "$work/b.png" --budget 215MiB
    check_json 'assert d["tile"] == 160, d'
    cmp -s "$work/a.png" "$work/b.png" || fail "the calibrated tiling changed the output"
    expect_error denoise 'no calibration for device profile "cpu"' denoise --model "$work/model.pt" \
      --in "$image" --out "$work/x.png" --budget 1GiB --calibration <(echo '{"deviceProfile": "h100"}')
    ;;
  denoise_bad_input)
    make_denoise_model
    expect_error denoise 'budget: 1MiB does not hold' denoise --model "$work/model.pt" --in "$image" \
      --out "$work/x.png" --budget 1MiB
    expect_error denoise 'tile: 30 is not a multiple of 4' denoise --model "$work/model.pt" \
      --in "$image" --out "$work/x.png" --budget 1GiB --tile 30
    expect_error denoise 'tile: .* over the budget' denoise --model "$work/model.pt" \
      --in "$image" --out "$work/x.png" --budget 5MiB --tile 160
    expect_error denoise 'overlap: "some" is not auto' denoise --model "$work/model.pt" \
      --in "$image" --out "$work/x.png" --budget 1GiB --overlap some
    expect_error denoise 'no such model file' denoise --model "$work/absent.pt" --in "$image" \
      --out "$work/x.png" --budget 1GiB
    ;;
  denoise_formats)
    # 16-bit PNG in, 16-bit TIFF out (the depth follows the input), 8 bits on request; the
    # tiled 16-bit result equals the whole-image one; a JPEG is read too.
    make_denoise_model
    need_python
    "$python" "$here/make_big_png.py" "$work/in16.png" 150 130 --bits 16 || fail "cannot make the image"
    expect_ok denoise --model "$work/model.pt" --in "$work/in16.png" --out "$work/whole.tif" --budget 2GiB
    check_json 'assert d["in_format"] == "PNG" and d["in_bits"] == 16 and d["out_bits"] == 16, d'
    expect_ok denoise --model "$work/model.pt" --in "$work/in16.png" --out "$work/tiled.tif" \
      --budget 2GiB --tile 32
    check_json 'assert d["tiles"] == 25 and d["out_bits"] == 16, d'
    # 16 bits resolve float rounding: tiled and whole agree to one step of 65535.
    "$python" "$here/compare_tiffs.py" "$work/whole.tif" "$work/tiled.tif" 150 130 ||
      fail "the TIFFs are not 150x130 RGB16 that agree"
    expect_ok denoise --model "$work/model.pt" --in "$work/in16.png" --out "$work/out8.png" \
      --budget 2GiB --bits 8
    check_json 'assert d["out_bits"] == 8, d'
    [[ $(head -c 25 "$work/out8.png" | tail -c 1 | od -An -tu1 | tr -d ' ') == 8 ]] ||
      fail "the PNG is not 8-bit"
    expect_error denoise 'not a PNG, TIFF or JPEG image' denoise --model "$work/model.pt" \
      --in "$work/data/ValidationNoisyBlocksSrgb.mat" --out "$work/x.png" --budget 2GiB
    expect_error denoise 'the extension must be .png, .tif or .tiff' denoise \
      --model "$work/model.pt" --in "$image" --out "$work/x.jpg" --budget 2GiB
    expect_error denoise 'bits: "12" is not auto, 8 or 16' denoise --model "$work/model.pt" \
      --in "$image" --out "$work/x.png" --budget 2GiB --bits 12
    [[ ! -e "$work/x.png" && ! -e "$work/x.png.part" ]] || fail "a failed run left an image behind"
    ;;
  denoise_channels_last)
    # A network without transposed convolutions runs channels-last by default: within a
    # whole-process budget that forces tiles (its own footprint measured first, as for 100 MP),
    # and with the contiguous layout's output to one step of 65535.
    make_denoise_model "$tiny"
    need_python
    "$python" "$here/make_big_png.py" "$work/in.png" 1200 900 || fail "cannot make the image"
    expect_ok denoise --model "$work/model.pt" --in "$image" --out "$work/small.png" --budget 1GiB \
      --threads 2
    check_json 'assert d["layout"] == "channels-last", d'
    overhead=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["process_peak_bytes"])' "$out")
    printf '{"deviceProfile": "cpu", "framework": "test", "inference": {"samples": 8,
      "overheadBytes": %s, "slope": 1.0, "margin": 1.05, "quantile": 0.99}}\n' "$overhead" \
      >"$work/calibration.json"
    budget="$((overhead / 1048576 + 40))MiB"
    expect_ok denoise --model "$work/model.pt" --in "$work/in.png" --out "$work/last.tif" \
      --bits 16 --budget "$budget" --calibration "$work/calibration.json" --threads 2
    check_json '
assert d["layout"] == "channels-last" and d["tiles"] > 4, d
assert 0 < d["predicted_process_peak_bytes"] <= d["budget_bytes"], d
assert 0 < d["process_peak_bytes"] <= d["budget_bytes"], d
'
    tile=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["tile"])' "$out")
    expect_ok denoise --model "$work/model.pt" --in "$work/in.png" --out "$work/nchw.tif" \
      --bits 16 --budget 1GiB --tile "$tile" --layout contiguous --threads 2
    check_json 'assert d["layout"] == "contiguous", d'
    "$python" "$here/compare_tiffs.py" "$work/last.tif" "$work/nchw.tif" 1200 900 ||
      fail "the layouts' outputs differ"
    expect_error denoise 'layout: "nhwc" is not auto, channels-last or contiguous' denoise \
      --model "$work/model.pt" --in "$image" --out "$work/x.png" --budget 1GiB --layout nhwc
    ;;
  denoise_100mp)
    # A 10000 x 10000 image (generated here: 286 MiB of 8-bit samples, 1.1 GiB in float) through
    # a trained model, read and written in bands, within a whole-process budget smaller than
    # the image's 8-bit samples. The process's own footprint (LibTorch, the weights, the codecs)
    # is measured first on a small image and given as a calibration's overhead, so the budget
    # covers everything the OS sees; the measured peak must stay under it.
    make_denoise_model
    need_python
    "$python" "$here/make_big_png.py" "$work/big.png" 10000 10000 || fail "cannot make the image"
    expect_ok denoise --model "$work/model.pt" --in "$image" --out "$work/small.png" --budget 1GiB \
      --threads 2
    overhead=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["process_peak_bytes"])' "$out")
    printf '{"deviceProfile": "cpu", "framework": "test", "inference": {"samples": 8,
      "overheadBytes": %s, "slope": 1.0, "margin": 1.05, "quantile": 0.99}}\n' "$overhead" \
      >"$work/calibration.json"
    expect_ok denoise --model "$work/model.pt" --in "$work/big.png" --out "$work/big-out.png" \
      --budget 256MiB --calibration "$work/calibration.json" --threads 2
    check_json '
assert d["width"] == 10000 and d["height"] == 10000, d
assert d["budget_bytes"] < 10000 * 10000 * 3, d
assert d["tiles"] > 1 and d["extra_rows"] == 0, d
assert 0 < d["predicted_process_peak_bytes"] <= d["budget_bytes"], d
assert 0 < d["process_peak_bytes"] <= d["budget_bytes"], d
print("100 MP: tile %d, %.1f s, %.2f MP/s, process peak %.1f MiB (predicted %.1f) of %.0f MiB" % (
    d["tile"], d["seconds"], d["megapixels_per_second"], d["process_peak_bytes"] / 2**20,
    d["predicted_process_peak_bytes"] / 2**20, d["budget_bytes"] / 2**20))
'
    # The output is whole: 10000 rows of 30000 bytes behind their filter bytes.
    "$python" - "$work/big-out.png" <<'PY' || fail "the output PNG is not 10000x10000"
import struct, sys, zlib
f = open(sys.argv[1], "rb")
assert f.read(8) == b"\x89PNG\r\n\x1a\n"
d, size, header = zlib.decompressobj(), 0, None
while True:
    n, kind = struct.unpack(">I4s", f.read(8))
    data = f.read(n)
    f.read(4)
    if kind == b"IHDR":
        header = struct.unpack(">IIBB", data[:10])
    elif kind == b"IDAT":
        size += len(d.decompress(data, 0))
    elif kind == b"IEND":
        break
size += len(d.flush())
assert header == (10000, 10000, 8, 2), header
assert size == 10000 * (1 + 30000), size
PY
    ;;
  help)
    run --help
    [[ $status -eq 0 ]] || fail "--help exited $status"
    if ! grep -q 'once' "$out" || ! grep -q 'make-data' "$out"; then
      fail "help does not list the subcommands"
    fi
    ;;
  once_help)
    run once --help
    [[ $status -eq 0 ]] || fail "--help exited $status"
    [[ ! -s "$err" ]] || fail "--help wrote to stderr"
    for want in '--arch' '--data' 'N=200' 'B=8' 'P=64' 'B=1' 'T=256' '--device' '=cpu' \
      '--export' 'S=0' 'fp32|bf16|fp16=fp32' 'RATE=0.001' '--eval-batch' '--threads' \
      'measured_inference_peak_bytes' 'latency_ms_per_mp'; do
      grep -qF -- "$want" "$out" || fail "help does not mention $want"
    done
    ;;
  make_data_help)
    run make-data --help
    [[ $status -eq 0 ]] || fail "--help exited $status"
    for want in '--out' '--from' 'N=8' '--pairs-per-scene' 'PIXELS=256' '--val-images' \
      '--val-blocks' 'PIXELS=64' 'S=0' 'ValidationNoisyBlocksSrgb.mat'; do
      grep -qF -- "$want" "$out" || fail "help does not mention $want"
    done
    ;;
  unknown_subcommand)
    run frobnicate
    [[ $status -eq 2 ]] || fail "expected exit status 2, got $status"
    [[ $(wc -l <"$err") -eq 1 ]] || fail "expected exactly one line on stderr"
    grep -qE '^peaknas-worker: unknown subcommand "frobnicate"; one of: once, make-data' "$err" ||
      fail "stderr does not name the subcommands"
    ;;
  unknown_flag) expect_error once '--frobnicate' once --arch "$tiny" --data "$work" --frobnicate ;;

  *) unknown_case ;;
esac
exit 0
