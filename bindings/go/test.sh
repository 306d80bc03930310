#!/usr/bin/env bash
# Tests the Go binding against an *installed* libazfunc only: installs a build tree
# (default: build) into the prefix build-go/prefix, finds it through pkg-config alone, then runs
# gofmt, go vet and go test in bindings/go (unit tests, the custom host on a Python test
# app, the Go worker through the grpcio host simulator) and builds examples/go-worker.
#   bindings/go/test.sh [BUILD_DIR]
# Environment: GO (default: go on PATH, else /usr/local/go/bin/go); GOCACHE/GOPATH are
# used when set, else kept under build-go/ (CI runs as root without HOME).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
export PATH="$(dirname "$GO"):$PATH" # go test and the tests run `go` themselves

# A fixed prefix path: Go's build cache keeps cgo link flags (-L<prefix>) per package.
TMP="$ROOT/build-go"
rm -rf "$TMP/prefix" "$TMP/go-worker"
mkdir -p "$TMP"
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
pc="$(find "$TMP/prefix" -name azfunc.pc -print -quit)"
libdir="$(dirname "$(dirname "$pc")")"
export PKG_CONFIG_PATH="$(dirname "$pc")"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "libazfunc $(pkg-config --modversion azfunc) from $(pkg-config --variable=prefix azfunc)"

# No third-party modules: never reach for the network or a newer toolchain.
export GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=1
[ -n "${GOCACHE:-}" ] || GOCACHE="$("$GO" env GOCACHE 2>/dev/null || true)"
[ -n "$GOCACHE" ] && [ "$GOCACHE" != off ] || GOCACHE="$ROOT/build-go/cache"
[ -n "${GOPATH:-}" ] || GOPATH="$("$GO" env GOPATH 2>/dev/null || true)"
[ -n "$GOPATH" ] || GOPATH="$ROOT/build-go/gopath"
export GOCACHE GOPATH
# Go does not hash headers outside the package: key the cgo build on the installed
# library's headers and binary, so a changed libazfunc is never linked from stale objects.
id="$(cat "$TMP"/prefix/include/azfunc/*.h "$libdir"/libazfunc.so | sha256sum | cut -c1-16)"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DAZFGO_LIBAZFUNC_ID=$id"

unformatted="$(gofmt -l "$ROOT/bindings/go" "$ROOT/examples/go-worker")"
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted:" "$unformatted" >&2
  exit 1
fi
cd "$ROOT/bindings/go"
"$GO" vet ./...
"$GO" test -count=1 ./...
cd "$ROOT/examples/go-worker"
"$GO" vet ./...
"$GO" build -o "$TMP/go-worker" .
echo "Go binding tests passed"
