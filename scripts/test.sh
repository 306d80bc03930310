#!/usr/bin/env bash
# Sets up everything and runs every test suite:
#   1. release build (-Werror): ctest (unit, ABI, fuzz-corpus replay) and the pytest suites,
#      then the Python and Go bindings against the library installed into a prefix
#   2. ASan+UBSan build: the same suites again
#   3. ThreadSanitizer build: only the concurrency tests (worker, driver, registry, session,
#      bench soak and terminate)
#   4. libFuzzer build (clang): each fuzz target runs for a short time
#   5. clang-format check
# Environment: AZF_FUZZ_SECONDS (default 60 per target), AZF_SKIP_FUZZ=1, AZF_SKIP_ASAN=1,
# AZF_SKIP_TSAN=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==== %s ====\n' "$*"; }

step setup
scripts/setup.sh

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
step "Python binding (installed into a temporary prefix, fresh venv)"
bindings/python/test.sh build
step "Go binding (installed prefix, pkg-config)"
bindings/go/test.sh build

if [ "${AZF_SKIP_ASAN:-0}" != 1 ]; then
  step "ASan+UBSan build"
  scripts/build.sh asan
  step "ASan+UBSan tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suites build-asan
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
  step "short fuzz runs"
  scripts/fuzz.sh "${AZF_FUZZ_SECONDS:-60}"
fi

step "clang-format"
files=$(git ls-files -- '*.c' '*.h' | grep -v '^bindings/go/.*_cgo' || true)
if [ -n "$files" ]; then
  # shellcheck disable=SC2086
  clang-format --dry-run --Werror $files
fi
echo "all test suites passed"
