#!/usr/bin/env bash
# Measures the hello servers of bench/http-servers with wrk on loopback, in one session:
# every library RUNS times, interleaved, median requests/s printed.
#   bench/http-servers/compare.sh [RUNS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-5}" secs="${2:-5}" port=7890
make -s
declare -A res
for ((i = 0; i < runs; i++)); do
  for s in hello_mhd hello_evhttp hello_h2o; do
    ./$s $port & pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    rps=$(wrk -t1 -c64 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    kill $pid; wait $pid 2>/dev/null || true
    res[$s]+="$rps "
  done
done
for s in hello_mhd hello_evhttp hello_h2o; do
  med=$(echo ${res[$s]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$s runs: ${res[$s]} median: $med"
done
