#!/usr/bin/env bash
# Runs shellcheck (settings: .shellcheckrc) on every shell script the repository tracks: files
# named *.sh or *.sbatch, and files whose first line starts a shell (#!/usr/bin/env bash,
# #!/bin/sh, ...).
#
#   tests/meta/check_shell.sh SOURCE_DIR [SHELLCHECK]
#
# Exit status: 0 when every script is clean; 1 with shellcheck's findings, or when no script
# was found (so that the check cannot pass without checking anything).
set -euo pipefail
source_dir=$1
shellcheck=${2:-shellcheck}
cd "$source_dir"

scripts=()
while IFS= read -r -d '' file; do
  [[ -f $file ]] || continue
  if [[ $file == *.sh || $file == *.sbatch ]]; then
    scripts+=("$file")
    continue
  fi
  first=$(head -c 64 "$file" | tr -d '\0' | head -n 1)
  if [[ $first =~ ^#!(/usr/bin/env\ (ba)?sh|/bin/(ba)?sh|/usr/bin/(ba)?sh) ]]; then
    scripts+=("$file")
  fi
done < <(git ls-files -z 2>/dev/null || find . -path ./build -prune -o -type f -print0)

if ((${#scripts[@]} == 0)); then
  echo "check_shell: no shell scripts found under $source_dir" >&2
  exit 1
fi
"$shellcheck" "${scripts[@]}"
echo "check_shell: ${#scripts[@]} scripts clean"
