#!/usr/bin/env bash
# Runs every libFuzzer target in build-fuzz/ for N seconds (default 20), starting
# from its committed seed corpus. New inputs go to a scratch corpus, not the tree.
# CI (scripts/test.sh) keeps the default: about 20 s per target, ~3 min in all.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-20}"
shopt -s nullglob
targets=("$ROOT"/build-fuzz/tests/fuzz/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets built (scripts/build.sh fuzz)"; exit 0
fi
for t in "${targets[@]}"; do
  name="$(basename "$t")"
  [ -x "$t" ] || continue
  case "$name" in *.*) continue ;; esac
  seeds="$ROOT/tests/fuzz/corpus/${name#fuzz_}"
  scratch="$(mktemp -d)"
  artifacts="$ROOT/build-fuzz/artifacts/$name/"
  mkdir -p "$artifacts"
  echo "fuzz: $name for ${secs}s"
  rc=0
  "$t" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts" \
    "$scratch" "$seeds" > "$scratch.log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY)' "$scratch.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$scratch.log"
    echo "fuzz: $name failed (exit $rc); the crashing input is in $artifacts"
    rm -rf "$scratch" "$scratch.log"
    exit 1
  fi
  rm -rf "$scratch" "$scratch.log"
done
