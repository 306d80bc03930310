#!/usr/bin/env bash
# The Python binding's suite against an installed libazfunc, as a user gets it:
#   1. install the library from BUILD (default build/) into a temporary prefix;
#   2. make a fresh virtual environment from /usr/bin/python3 (no system site
#      packages) with azure-functions, pytest, grpcio-tools and protobuf pinned
#      from requirements-dev.txt;
#   3. pip install ./bindings/python, finding libazfunc only through pkg-config
#      (no LD_LIBRARY_PATH: the extension carries an RPATH to the prefix);
#   4. run bindings/python/tests and examples/pytest-app.
# Usage: bindings/python/test.sh [BUILD_DIR] [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
build="${1:-build}"
shift || true
[ -f "$build/libazfunc.so" ] || { echo "test.sh: build $build first (scripts/build.sh)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null

/usr/bin/python3 -m venv "$tmp/venv"
pins=$(grep -iE '^(azure-functions|pytest|grpcio|grpcio-tools|protobuf)==' requirements-dev.txt)
# shellcheck disable=SC2086
"$tmp/venv/bin/pip" install -q --disable-pip-version-check $pins

unset PYTHONPATH LD_LIBRARY_PATH VIRTUAL_ENV PKG_CONFIG_LIBDIR
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
rm -rf bindings/python/build bindings/python/src/azfunc.egg-info
"$tmp/venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation ./bindings/python
rm -rf bindings/python/build bindings/python/src/azfunc.egg-info
unset PKG_CONFIG_PATH

"$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider bindings/python/tests examples/pytest-app "$@"
