#!/usr/bin/env bash
# Fails when a tracked C++ file (*.h, *.cc) is not formatted as .clang-format says, naming each
# file that drifts; with --fix, formats them in place instead.
#
#   check_format.sh SOURCE_DIR CLANG_FORMAT [--fix]
set -uo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 SOURCE_DIR CLANG_FORMAT [--fix]" >&2
  exit 2
fi
root=$1
clang_format=$2
cd "$root" || exit 2

mapfile -d '' files < <(git ls-files -z '*.h' '*.cc')
if [[ ${#files[@]} -eq 0 ]]; then
  echo "no C++ files found under $root (not a git checkout?)" >&2
  exit 1
fi
if [[ ${3:-} == --fix ]]; then
  "$clang_format" -i "${files[@]}"
  exit $?
fi

drifting=()
for f in "${files[@]}"; do
  if ! "$clang_format" --dry-run --Werror "$f" >/dev/null 2>&1; then drifting+=("$f"); fi
done
if [[ ${#drifting[@]} -gt 0 ]]; then
  printf '%s: not formatted as .clang-format says\n' "${drifting[@]}"
  echo "${#drifting[@]} of ${#files[@]} files drift; fix with: $0 $root $clang_format --fix"
  exit 1
fi
echo "${#files[@]} files formatted"
