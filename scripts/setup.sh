#!/usr/bin/env bash
# Installs everything libazfunc needs on a Debian 12 machine. Idempotent: it
# installs only what is missing, and recreates nothing that is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PACKAGES=(
  build-essential cmake pkg-config git clang clang-format llvm libclang-rt-14-dev
  protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
  libnghttp2-dev libssl-dev libcjson-dev libmicrohttpd-dev
  python3 python3-dev python3-venv python3-pip libpython3-dev
  libevent-dev
  # llhttp (Node.js's HTTP/1.1 parser) as C sources: the HTTP front of azfunc start
  node-llhttp
  # the storage client of azfunc start (src/storage): HTTP and XML
  libcurl4-openssl-dev libxml2-dev
  # bench/ only: load generator, the servers compared there
  wrk uwsgi uwsgi-plugin-python3 libh2o-evloop-dev
)

# Node.js runs Azurite, the storage emulator. Debian's nodejs and npm, unless a node
# and an npm are already installed (another distribution's nodejs carries its own npm);
# the pinned Azurite's dependencies want Node.js 20 or later.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Python environment: Debian's interpreter, because the embedded adapter
# links the same libpython3.11.
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
stamp="$VENV/.requirements-dev.txt"
if ! cmp -s "$ROOT/requirements-dev.txt" "$stamp"; then
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$ROOT/requirements-dev.txt"
  cp "$ROOT/requirements-dev.txt" "$stamp"
fi

# Azurite, pinned in tools/azurite/package-lock.json, into tools/azurite/node_modules
# (git-ignored). Reinstalled only when the lock file changes.
AZURITE="$ROOT/tools/azurite"
if ! cmp -s "$AZURITE/package-lock.json" "$AZURITE/node_modules/.azf-installed-lock.json"; then
  echo "setup: installing Azurite into tools/azurite"
  (cd "$AZURITE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$AZURITE/package-lock.json" "$AZURITE/node_modules/.azf-installed-lock.json"
fi
