#!/usr/bin/env bash
# Do the runner's limits, deadlines and supervisor cost anything on the hello load?
# wrk against two `azfunc start` binaries serving examples/hello, runs interleaved:
# BASE (a build from before them) and NEW (this tree's build).
#   BASE=/path/to/old/bin/azfunc bench/runner-limits.sh [RUNS] [SECONDS] [CONNECTIONS]
# Prints every run and the medians; the figures go to bench/README.md by hand.
set -euo pipefail
. "$(dirname "$0")/wrk-common.sh"
runs="${1:-5}" secs="${2:-5}" conns="${3:-32}"
BASE="${BASE:?set BASE to the azfunc binary to compare with}"
NEW="${NEW:-build/bin/azfunc}"
port=7392

declare -A res bin=([base]="$BASE" [new]="$NEW")
for ((i = 0; i < runs; i++)); do
  for s in base new; do
    "${bin[$s]}" start examples/hello --port $port >/dev/null 2>&1 &
    pid=$!
    wait_up
    rps=$(wrk_rps "$secs" "$conns")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    res[$s]+="$rps "
    echo "run $i $s $rps"
  done
done
for s in base new; do
  echo "$s median $(echo "${res[$s]}" | median) (runs: ${res[$s]})"
done
