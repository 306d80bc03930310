#!/usr/bin/env bash
# Runs every libFuzzer target in build-fuzz/ for N seconds (default 60), starting
# from its committed seed corpus, as many at once as there are cores. New inputs go
# to a scratch corpus, not the tree; a crashing input goes to build-fuzz/artifacts/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-60}"
jobs="$(nproc)"
shopt -s nullglob
targets=()
for t in "$ROOT"/build-fuzz/tests/fuzz/fuzz_*; do
  case "$(basename "$t")" in *.*) continue ;; esac
  [ -x "$t" ] && targets+=("$t")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets built (scripts/build.sh fuzz)"; exit 0
fi

# One target: its summary and exit status go to $work/<name>.{log,rc}.
run_one() {
  local t="$1" name seeds scratch artifacts rc=0
  name="$(basename "$t")"
  seeds="$ROOT/tests/fuzz/corpus/${name#fuzz_}"
  scratch="$work/$name.corpus"
  artifacts="$ROOT/build-fuzz/artifacts/$name/"
  mkdir -p "$scratch" "$artifacts"
  "$t" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts" \
    "$scratch" "$seeds" > "$work/$name.log" 2>&1 || rc=$?
  echo "$rc" > "$work/$name.rc"
  rm -rf "$scratch"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fuzz: ${#targets[@]} targets, ${secs}s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
for t in "${targets[@]}"; do
  name="$(basename "$t")"
  rc="$(cat "$work/$name.rc" 2>/dev/null || echo 1)"
  echo "fuzz: $name: $(grep -E '^stat::number_of_executed_units' "$work/$name.log" | awk '{print $2}') executions, exit $rc"
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$work/$name.log"
    echo "fuzz: $name failed; the crashing input is in $ROOT/build-fuzz/artifacts/$name/"
    failed=1
  fi
done
exit "$failed"
