#!/usr/bin/env bash
# Sets up everything and runs every test suite, fastest feedback first:
#   1. format and lint: clang-format, shell and Python syntax
#   2. release build (-Werror): ctest (unit, ABI, fuzz-corpus replay) and the pytest suites;
#      the Python adapter corpus and the invocation suites again on every Python 3.10-3.13
#      the build found, and there the HTTP streaming and OpenTelemetry suites, each Python
#      with a venv of the apps' packages (scripts/app-venvs.sh) (the pytest suites include
#      tests/deploy: the installed worker directory launched as the host launches it, on
#      every Python); then the Python and Go bindings against the library installed into a
#      prefix
#   3. ASan+UBSan (with float-cast-overflow) build: the same suites again
#   4. ThreadSanitizer build: only the concurrency tests (worker, driver, registry, session,
#      bench soak and terminate)
#   5. libFuzzer build (clang): every fuzz target replays its corpus, then runs a fixed
#      number of inputs from a fixed seed (scripts/fuzz.sh ci): the same inputs every run
# Each stage prints its wall time. The gate is deterministic: open-ended fuzzing is
# scripts/fuzz.sh campaign, outside CI. It does not depend on the terminal, the signal
# dispositions or the working directory it is started with (`nohup scripts/test.sh &` works).
# Environment: AZF_SKIP_FUZZ=1, AZF_SKIP_ASAN=1, AZF_SKIP_TSAN=1, AZF_FUZZ_RUNS=N (inputs per
# fuzz target instead of the per-target defaults of scripts/fuzz.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stage_name=""
stage_start=0
total_start="$(date +%s)"
end_stage() {
  [ -n "$stage_name" ] &&
    printf '==== %s: %ds ====\n' "$stage_name" "$(($(date +%s) - stage_start))"
  stage_name=""
}
step() {
  end_stage
  stage_name="$*"
  stage_start="$(date +%s)"
  printf '\n==== %s ====\n' "$*"
}
on_exit() {
  local rc=$?
  end_stage
  if [ "$rc" -ne 0 ]; then
    echo "FAILED (exit $rc) after $(($(date +%s) - total_start))s"
  fi
}
trap on_exit EXIT

step setup
scripts/setup.sh

step "format and lint"
files=$(git ls-files -- '*.c' '*.h' | grep -v '^bindings/go/.*_cgo' || true)
if [ -n "$files" ]; then
  # shellcheck disable=SC2086
  clang-format --dry-run --Werror $files
fi
for s in $(git ls-files -- '*.sh' .ci/run); do bash -n "$s"; done
# Python syntax (tests/apps holds apps that are broken on purpose).
git ls-files -z -- '*.py' ':!tests/apps' | PYTHONDONTWRITEBYTECODE=1 xargs -0 .venv/bin/python -c '
import ast, sys
for path in sys.argv[1:]:
    ast.parse(open(path, "rb").read(), path)'

run_suites() {
  local dir="$1"
  ctest --test-dir "$dir" --output-on-failure -j "$(nproc)"
  AZF_BUILD_DIR="$dir" .venv/bin/python -m pytest -q -p no:cacheprovider
}

# The tests that exercise threads in the library (kept short: CI time): the driver,
# session, registry and worker unit tests, and azfunc-worker with Python under the
# bench's 10^4 soak and terminate-drain scenarios.
TSAN_TESTS='^(unit\.test_(driver|worker|registry|session)|bench\.soak|bench\.fault\.terminate)$'

step "release build"
scripts/build.sh release
step "release tests"
run_suites build
step "every Python found: adapter corpus, invocation, HTTP streaming and OpenTelemetry suites"
# One run per CPython the build made an adapter for (build/python-versions.txt), each
# with libazfunc's bundled azure-functions (AZF_TEST_PYTHON): the adapter corpus and the
# invocation suites with no venv; the HTTP streaming and OpenTelemetry suites with that
# Python's venv of the apps' packages (scripts/app-venvs.sh: build/app-venvs/X.Y, pinned in
# tests/requirements-app.txt; AZF_TEST_VENV), where they never skip: a skip fails the stage.
scripts/app-venvs.sh build
ran=""
while read -r ver exe; do
  printf -- '--- Python %s (%s)\n' "$ver" "$exe"
  AZF_TEST_PYTHON="$ver" ctest --test-dir build --output-on-failure -j "$(nproc)" \
    -R '^python\.(app|invoke)\.'
  AZF_TEST_PYTHON="$ver" AZF_BUILD_DIR=build .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/host/test_invocations.py tests/host/test_bindings.py
  log="build/app-venvs/$ver.pytest.log"
  AZF_TEST_PYTHON="$ver" AZF_TEST_VENV="$ROOT/build/app-venvs/$ver" AZF_BUILD_DIR=build \
    .venv/bin/python -m pytest -q -p no:cacheprovider -rs tests/host/test_http_stream.py \
    tests/host/test_telemetry.py tests/runner/test_runner_stream.py </dev/null 2>&1 | tee "$log"
  if tail -n 1 "$log" | grep -q skipped; then
    echo "FAILED: the HTTP streaming and OpenTelemetry suites skipped tests on Python $ver" >&2
    exit 1
  fi
  ran="$ran $ver"
done < build/python-versions.txt
echo "Python versions tested:$ran"
echo "HTTP streaming and OpenTelemetry suites ran on Python:$ran"
step "Python binding (installed into a temporary prefix, fresh venv)"
bindings/python/test.sh build
step "Go binding (installed prefix, pkg-config)"
bindings/go/test.sh build

if [ "${AZF_SKIP_ASAN:-0}" != 1 ]; then
  step "ASan+UBSan build"
  scripts/build.sh asan
  step "ASan+UBSan tests"
  # use_sigaltstack=0: gcc 12's ASan reports a stack-buffer-overflow in its own
  # sigaltstack call when a Python pool thread exits (seen in python.invoke.* and the
  # worker), a report about the runtime, not the library.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:use_sigaltstack=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_suites build-asan
fi

if [ "${AZF_SKIP_TSAN:-0}" != 1 ]; then
  step "ThreadSanitizer build"
  # azfunc-worker starts Python: the adapter plugin for the build's Python is needed too.
  pyver="$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  scripts/build.sh tsan test_driver test_worker test_registry test_session azfunc-worker \
    azfunc-bench "azfunc-python$pyver"
  step "ThreadSanitizer: concurrency tests"
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir build-tsan --output-on-failure -j "$(nproc)" -R "$TSAN_TESTS"
fi

if [ "${AZF_SKIP_FUZZ:-0}" != 1 ]; then
  step "libFuzzer build"
  scripts/build.sh fuzz
  step "fuzz: corpus replay + fixed-seed runs"
  scripts/fuzz.sh ci
fi

end_stage
echo "all test suites passed in $(($(date +%s) - total_start))s"
