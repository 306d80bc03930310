#!/usr/bin/env bash
# Makes one venv per Python the build found (BUILD/python-versions.txt), with exactly the
# app-side packages of the streaming and OpenTelemetry suites (tests/requirements-app.txt):
# BUILD/app-venvs/X.Y, made by that version's own interpreter. Idempotent: a venv is made
# again only when the requirements file or the interpreter changed. pip's cache keeps a
# fresh clone fast. Fails, naming the version, when a venv cannot be made.
# Usage: scripts/app-venvs.sh [BUILD_DIR]   (default: build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
REQ="$ROOT/tests/requirements-app.txt"
# The repository's pip (a recent one) installs into each venv (`pip --python`): the venvs
# need no pip of their own, which saves seconds per venv.
PIP="$ROOT/.venv/bin/pip"

# The pins are requirements-dev.txt's, the Python 3.10 lines (marked < "3.11") aside.
drift="$(awk -F'[=;]' '
  function key(s) { s = tolower(s); gsub(/[-_.]/, "-", s); gsub(/ /, "", s); return s }
  /^[^#]/ && NR == FNR { dev[key($1)] = $3; next }
  /^[^#]/ && !/< "3\.11"/ { v = $3; gsub(/ /, "", v); if (dev[key($1)] != v) print $1 }
' "$ROOT/requirements-dev.txt" "$REQ")"
if [ -n "$drift" ]; then
  echo "app-venvs: $REQ pins differently from requirements-dev.txt:" $drift >&2
  exit 1
fi
[ -s "$BUILD/python-versions.txt" ] || {
  echo "app-venvs: no $BUILD/python-versions.txt (run scripts/build.sh first)" >&2
  exit 1
}
while read -r ver exe; do
  venv="$BUILD/app-venvs/$ver"
  stamp="$venv/.requirements-app.txt"
  want="$(printf '# %s\n' "$exe"; cat "$REQ")"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  echo "app-venvs: Python $ver ($exe) -> $venv"
  rm -rf "$venv"
  if ! { "$exe" -m venv --without-pip "$venv" &&
    "$PIP" --python "$venv/bin/python" install -q --no-deps -r "$REQ" &&
    { out="$("$PIP" --python "$venv/bin/python" check)" || { echo "$out" >&2; false; }; }; }; then
    rm -rf "$venv"
    echo "app-venvs: FAILED to make the Python $ver venv $venv from $REQ" >&2
    exit 1
  fi
  printf '%s\n' "$want" >"$stamp"
done <"$BUILD/python-versions.txt"
