# Sourced (not run) by the wrk benchmarks of `azfunc start` serving examples/hello
# (runner-limits.sh, runner-vs-uwsgi.sh): the repository root as working directory, the
# project's venv, the hello URL and the helpers below. The sourcing script sets `port`.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
URL_PATH="/api/hello?name=bench"
export VIRTUAL_ENV="$ROOT/.venv"

# Returns once the server on $port answers the hello request (at most 20 s).
wait_up() {
  for _ in $(seq 100); do
    [ "$(curl -s "http://127.0.0.1:$port$URL_PATH")" = "Hello, bench!" ] && return 0
    sleep 0.2
  done
  echo "server did not come up" >&2; return 1
}

# Requests per second of one wrk run against $port: wrk_rps SECONDS CONNECTIONS.
# WRK_PATH=/nothing loads another path (a 404 the runner answers without Python: the cost
# of its HTTP front alone).
wrk_rps() {
  wrk -t1 -c"$2" -d"$1s" "http://127.0.0.1:$port${WRK_PATH:-$URL_PATH}" |
    awk '/Requests\/sec/ {print $2}'
}

# The median of the numbers on stdin (separated by spaces or newlines).
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
