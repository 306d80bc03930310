#!/usr/bin/env bash
# Runs the libFuzzer targets of build-fuzz/ (scripts/build.sh fuzz), one per core at a time,
# each from its committed seed corpus. Two modes:
#
#   scripts/fuzz.sh ci
#       The deterministic CI gate (scripts/test.sh): every target replays its whole seed
#       corpus, then runs a fixed number of inputs from a fixed seed (-seed=1 -runs=N),
#       so a given tree fuzzes the same inputs on every run. N per target is in RUNS
#       below (AZF_FUZZ_RUNS overrides it for all).
#
#   scripts/fuzz.sh campaign SECONDS [TARGET...]
#       An open-ended campaign (random seed) of SECONDS per target, default 600, all targets
#       unless named (e.g. fuzz_worker). Record what it ran and found in
#       docs/reliability.md; every crash it finds becomes a corpus file
#       (tests/fuzz/corpus/<name>/regress-*) so that CI replays it from then on.
#
#   scripts/fuzz.sh executions N TARGET
#       A campaign counted in executions: one process per core, each with its own random
#       seed and scratch corpus, runs N/cores inputs of TARGET; prints the total. For long
#       campaigns use the optimised build without sanitizers (scripts/build.sh fuzz-fast,
#       then AZF_FUZZ_BUILD=build-fuzz-fast).
#
# AZF_FUZZ_BUILD names the build tree (default build-fuzz, the ASan+UBSan fuzz build).
# AZF_FUZZ_MAX_LEN caps an input's length (default 65536) in the campaign modes: a
# target's rate falls with the length (fuzz_worker: ~20,000/s per core at 4 KiB, ~2,000/s
# at 64 KiB), so a campaign counted in executions may trade length for count.
#
# New inputs go to a scratch corpus, not the tree; a crashing input goes to
# build-fuzz/artifacts/<target>/. Exit status: 0 when no target failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
case "$mode" in
  ci) shift ;;
  campaign) shift; secs="${1:-600}"; shift || true ;;
  executions) shift; total="${1:?executions N TARGET}"; shift; [ $# -eq 1 ] || { echo "usage: $0 executions N TARGET" >&2; exit 2; } ;;
  *) echo "usage: $0 ci | campaign [SECONDS] [TARGET...] | executions N TARGET" >&2; exit 2 ;;
esac
build="$ROOT/${AZF_FUZZ_BUILD:-build-fuzz}"
max_len="${AZF_FUZZ_MAX_LEN:-65536}"

# CI inputs per target after the corpus replay: sized so that the whole gate takes a few
# minutes on 2 cores in the ASan+UBSan fuzz build (each target's rate differs 100-fold).
declare -A RUNS=(
  [fuzz_frames]=200000 [fuzz_json]=300000 [fuzz_function_json]=1000000 [fuzz_route]=500000
  [fuzz_settings]=1000000 [fuzz_schedule]=1000000 [fuzz_session]=500000 [fuzz_worker]=50000
)

jobs="$(nproc)"
shopt -s nullglob
targets=()
if [ "$mode" != ci ] && [ $# -gt 0 ]; then
  for n in "$@"; do targets+=("$build/tests/fuzz/$n"); done
else
  for t in "$build"/tests/fuzz/fuzz_*; do
    case "$(basename "$t")" in *.*) continue ;; esac
    [ -x "$t" ] && targets+=("$t")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets built in $build (scripts/build.sh fuzz)" >&2
  exit 1
fi

# One target: its summary and exit status go to $work/<name>.{log,rc}.
run_one() {
  local t="$1" name seeds scratch artifacts rc=0 limit
  name="$(basename "$t")"
  seeds="$ROOT/tests/fuzz/corpus/${name#fuzz_}"
  scratch="$work/$name.corpus"
  artifacts="$build/artifacts/$name/"
  mkdir -p "$scratch" "$artifacts"
  if [ "$mode" = ci ]; then
    # -reload=0: re-reading the scratch corpus on a timer would make the run depend on speed.
    limit=(-seed=1 "-runs=${AZF_FUZZ_RUNS:-${RUNS[$name]:-100000}}" -reload=0 -timeout=30)
  else
    limit=("-max_total_time=$secs")
  fi
  "$t" "${limit[@]}" "-max_len=$([ "$mode" = ci ] && echo 65536 || echo "$max_len")" -print_final_stats=1 -artifact_prefix="$artifacts" \
    "$scratch" "$seeds" > "$work/$name.log" 2>&1 || rc=$?
  echo "$rc" > "$work/$name.rc"
  rm -rf "$scratch"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ "$mode" = executions ]; then
  t="${targets[0]}" name="$(basename "${targets[0]}")"
  [ -x "$t" ] || { echo "fuzz: $t is not built" >&2; exit 1; }
  artifacts="$build/artifacts/$name/"
  mkdir -p "$artifacts"
  echo "fuzz: $name, $total executions over $jobs processes, inputs up to $max_len bytes, random seeds ($(date -u +%FT%TZ))"
  start=$(date +%s)
  for i in $(seq 1 "$jobs"); do
    mkdir -p "$work/c$i"
    "$t" "-runs=$((total / jobs))" "-max_len=$max_len" -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$work/c$i" "$ROOT/tests/fuzz/corpus/${name#fuzz_}" \
      > "$work/p$i.log" 2>&1 &
  done
  failed=0 sum=0
  for i in $(seq 1 "$jobs"); do
    wait -n || failed=1
  done
  for i in $(seq 1 "$jobs"); do
    n="$(grep -E '^stat::number_of_executed_units:' "$work/p$i.log" | awk '{print $2}')"
    echo "fuzz: process $i: ${n:-?} executions, seed $(grep -oE 'Seed: [0-9]+' "$work/p$i.log" | head -1 | cut -d' ' -f2)," \
      "cov $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/p$i.log" | tail -1)"
    sum=$((sum + ${n:-0}))
    grep -qE '==[0-9]+==ERROR|deadly signal|ERROR: libFuzzer' "$work/p$i.log" && { tail -n 60 "$work/p$i.log"; failed=1; }
  done
  echo "fuzz: $name: $sum executions in $(($(date +%s) - start)) s, $([ "$failed" = 0 ] && echo "no crash" || echo "FAILED; inputs in $artifacts")"
  exit "$failed"
fi
if [ "$mode" = ci ]; then
  echo "fuzz: ${#targets[@]} targets, fixed seed and run counts, $jobs at a time"
else
  echo "fuzz: ${#targets[@]} targets, ${secs}s each, random seeds, $jobs at a time"
fi
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
  stat_of() { grep -E "^stat::$1:" "$work/$name.log" | awk '{print $2}'; }
  echo "fuzz: $name: $(stat_of number_of_executed_units) executions in $(stat_of average_exec_per_sec) /s," \
    "seed $(grep -oE 'Seed: [0-9]+' "$work/$name.log" | head -1 | cut -d' ' -f2), exit $rc"
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$work/$name.log"
    echo "fuzz: $name failed; the crashing input is in $build/artifacts/$name/"
    failed=1
  fi
done
exit "$failed"
