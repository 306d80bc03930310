#!/usr/bin/env bash
# azfunc-worker and the official Python worker 4.x side by side, in one session:
# each scenario runs on both workers, interleaved, and one table compares them.
#   bench/compare-workers.sh [ROUNDS]        (default 1; the table shows medians)
# Needs: scripts/build.sh release, and bench/official-worker.sh CHECKOUT run once.
# Scenario sizes: LAT_N, TPUT_N, TPUT_K (environment; small defaults for a shared machine).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-1}"
B="$root/build/bench/azfunc-bench"
ours="$root/build/bin/azfunc-worker"
official="$root/bench/.official/run"
[[ -x "$B" && -x "$ours" ]] || { echo "build first: scripts/build.sh release" >&2; exit 2; }
[[ -x "$official" ]] || { echo "set up the official worker: bench/official-worker.sh CHECKOUT" >&2; exit 2; }
export VIRTUAL_ENV="${VIRTUAL_ENV:-$root/.venv}"
out="$root/bench/results/compare-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out"
scenarios=(
    "latency -n ${LAT_N:-5000}"
    "throughput -n ${TPUT_N:-20000} -k ${TPUT_K:-64}"
    "async"
    "coldstart -r 5"
    "rss -n 2000"
)
for r in $(seq 1 "$rounds"); do
    for s in "${scenarios[@]}"; do
        name="${s%% *}"
        for w in ours official; do
            cmd="$ours"; [[ $w == official ]] && cmd="$official"
            # shellcheck disable=SC2086
            "$B" $s --json "$out/$name-$w-$r.json" -- $cmd >/dev/null 2>&1 ||
                echo "warning: $name on $w failed (see --worker-log)" >&2
        done
    done
done
python3 - "$out" "$rounds" <<'PY'
import json, pathlib, statistics, sys
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
rows = [("latency", "latency_us_p50", "latency p50 (µs)"),
        ("latency", "latency_us_p99", "latency p99 (µs)"),
        ("throughput", "invocations_per_s", "pipelined throughput (/s)"),
        ("async", "async_wall_ms", "async 100 × sleep(0.1) (ms)"),
        ("coldstart", "metadata_response_ms_median", "cold start to metadata (ms)"),
        ("rss", "idle_rss_mb", "idle RSS after load (MB)")]
def value(name, worker, key):
    vals = []
    for r in range(1, rounds + 1):
        f = out / f"{name}-{worker}-{r}.json"
        try:
            v = json.loads(f.read_text()).get(key)
        except (OSError, ValueError):
            v = None
        if isinstance(v, (int, float)) and v >= 0:
            vals.append(v)
    return statistics.median(vals) if vals else None
print(f"| measure | azfunc-worker | official 4.x | ratio |\n|---|---|---|---|")
for name, key, label in rows:
    a, o = value(name, "ours", key), value(name, "official", key)
    fmt = lambda v: "–" if v is None else f"{v:,.1f}"
    ratio = "–" if not a or not o else f"{o / a:.1f}× better" if name != "throughput" \
        else f"{a / o:.1f}×"
    print(f"| {label} | {fmt(a)} | {fmt(o)} | {ratio} |")
print(f"\nraw JSON: {out}")
PY
