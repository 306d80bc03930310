#!/usr/bin/env bash
# wrk against `azfunc start` serving examples/hello vs uWSGI (and Granian, when
# bench/.granian-venv exists) serving the same function as WSGI (bench/wsgi_hello.py),
# same machine, same session, runs interleaved.
#   bench/runner-vs-uwsgi.sh [RUNS] [SECONDS] [CONNECTIONS]
# Granian (a Rust server; not committed): python3 -m venv bench/.granian-venv &&
#   bench/.granian-venv/bin/pip install 'granian>=2.8,<3' azure-functions
# SERVERS="azfunc uwsgi-1p" picks a subset.
# Prints every run and the medians; the figures go to bench/README.md by hand.
set -euo pipefail
. "$(dirname "$0")/wrk-common.sh"
runs="${1:-5}" secs="${2:-10}" conns="${3:-32}"
AZFUNC="${AZFUNC:-build/bin/azfunc}"
port=7391

start_server() {
  case "$1" in
    azfunc) "$AZFUNC" start examples/hello --port $port >/dev/null 2>&1 & ;;
    uwsgi-1p)
      uwsgi --plugin python3 --http-socket 127.0.0.1:$port --virtualenv "$VIRTUAL_ENV" \
        --wsgi-file bench/wsgi_hello.py --master --die-on-term --processes 1 --threads 1 \
        --disable-logging \
        >/dev/null 2>&1 & ;;
    uwsgi-2p)
      uwsgi --plugin python3 --http-socket 127.0.0.1:$port --virtualenv "$VIRTUAL_ENV" \
        --wsgi-file bench/wsgi_hello.py --master --die-on-term --processes 2 --threads 1 \
        --disable-logging >/dev/null 2>&1 & ;;
    granian)
      (cd bench && exec .granian-venv/bin/granian --interface wsgi --workers 1 \
        --blocking-threads 1 --host 127.0.0.1 --port $port --no-ws wsgi_hello:application) \
        >/dev/null 2>&1 & ;;
  esac
  pid=$!
}

if [ -n "${SERVERS:-}" ]; then
  read -r -a servers <<<"$SERVERS"
else
  servers=(azfunc uwsgi-1p uwsgi-2p)
  [ -x bench/.granian-venv/bin/granian ] && servers+=(granian)
fi
declare -A res
for ((i = 0; i < runs; i++)); do
  for s in "${servers[@]}"; do
    start_server "$s"
    wait_up
    rps=$(wrk_rps "$secs" "$conns")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    # uWSGI's master may take a moment to release the port
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" || break; sleep 0.1; done
    res[$s]+="$rps "
    echo "run $i $s $rps"
  done
done
for s in "${servers[@]}"; do
  echo "$s median $(echo "${res[$s]}" | median) (runs: ${res[$s]})"
done
