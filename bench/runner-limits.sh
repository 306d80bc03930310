#!/usr/bin/env bash
# Do the runner's limits, deadlines and supervisor cost anything on the hello load?
# wrk against two `azfunc start` binaries serving examples/hello, runs interleaved:
# BASE (a build from before them) and NEW (this tree's build).
#   BASE=/path/to/old/bin/azfunc bench/runner-limits.sh [RUNS] [SECONDS] [CONNECTIONS]
# Prints every run and the medians; the figures go to bench/README.md by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
runs="${1:-5}" secs="${2:-5}" conns="${3:-32}"
BASE="${BASE:?set BASE to the azfunc binary to compare with}"
NEW="${NEW:-build/bin/azfunc}"
URL_PATH="/api/hello?name=bench"
port=7392
export VIRTUAL_ENV="$ROOT/.venv"

wait_up() {
  for _ in $(seq 100); do
    [ "$(curl -s "http://127.0.0.1:$port$URL_PATH")" = "Hello, bench!" ] && return 0
    sleep 0.2
  done
  echo "server did not come up" >&2; return 1
}

declare -A res bin=([base]="$BASE" [new]="$NEW")
for ((i = 0; i < runs; i++)); do
  for s in base new; do
    "${bin[$s]}" start examples/hello --port $port >/dev/null 2>&1 &
    pid=$!
    wait_up
    rps=$(wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port$URL_PATH" |
      awk '/Requests\/sec/ {print $2}')
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    res[$s]+="$rps "
    echo "run $i $s $rps"
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for s in base new; do
  echo "$s median $(echo "${res[$s]}" | median) (runs: ${res[$s]})"
done
