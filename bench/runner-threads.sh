#!/usr/bin/env bash
# Where `azfunc start`'s CPU goes, thread by thread: serves examples/hello, loads it with
# wrk for SECONDS, and prints each thread of the app process that ran meanwhile, with its
# CPU time, its time waiting for a CPU and its voluntary and involuntary context switches
# (/proc/<pid>/task/*/schedstat and status, before and after the load).
#   bench/runner-threads.sh [SECONDS] [CONNECTIONS]
# PYTHON_THREADPOOL_THREAD_COUNT and AZFUNC (another azfunc executable) pass through.
set -euo pipefail
. "$(dirname "$0")/wrk-common.sh"
secs="${1:-5}" conns="${2:-32}"
AZFUNC="${AZFUNC:-build/bin/azfunc}"
port=7393
"$AZFUNC" start examples/hello --port $port >/dev/null 2>&1 &
sup=$!
trap 'kill $sup 2>/dev/null; wait $sup 2>/dev/null || true' EXIT
wait_up
app="$(pgrep -P $sup | head -1)"  # the app process under the supervisor
app="${app:-$sup}"
snap() {  # tid comm cpu_ns wait_ns voluntary involuntary
  for t in /proc/"$app"/task/*; do
    read -r cpu wait _ <"$t/schedstat"
    echo "${t##*/} $(tr ' ' _ <"$t/comm") $cpu $wait" \
      "$(awk '/^(non)?voluntary_ctxt_switches/ {printf "%s ", $2}' "$t/status")"
  done | sort
}
before="$(snap)"
echo "requests/s: $(wrk_rps "$secs" "$conns")"
after="$(snap)"
join -a2 -e0 -o 0,1.3,1.4,1.5,1.6,2.2,2.3,2.4,2.5,2.6 <(echo "$before") <(echo "$after") |
  awk '$7 - $2 > 0 {printf "thread %-8s %-16s cpu %7.1f ms  waited for a cpu %6.1f ms  switches %6d voluntary %6d involuntary\n",
                    $1, $6, ($7 - $2) / 1e6, ($8 - $3) / 1e6, $9 - $4, $10 - $5}'
