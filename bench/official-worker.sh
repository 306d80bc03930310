#!/usr/bin/env bash
# Sets up the official Python worker 4.x from a checkout of its public source,
# for azfunc-bench to run next to azfunc-worker. Nothing of it is committed:
# everything goes to bench/.official/ (git-ignored).
#   bench/official-worker.sh CHECKOUT     (a clone of azure-functions-python-worker 4.x)
# Then the worker command is:   bench/.official/run
set -euo pipefail
src="${1:?usage: $0 CHECKOUT (a clone of the official worker 4.x)}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/.official"
py="${PYTHON:-python3.11}"
[[ -d "$src/azure_functions_worker" ]] || { echo "$src has no azure_functions_worker/" >&2; exit 2; }

rm -rf "$out/azure_functions_worker" "$out/protos-build"
mkdir -p "$out"
cp -r "$src/azure_functions_worker" "$out/"
echo "worker version: $(sed -n "s/^VERSION = '\(.*\)'/\1/p" "$out/azure_functions_worker/version.py")"

# The venv, with the worker's pinned runtime dependencies (its pyproject.toml).
[[ -x "$out/venv/bin/python" ]] || "$py" -m venv "$out/venv"
"$out/venv/bin/pip" install -q 'grpcio~=1.59.0' 'grpcio-tools~=1.59.0' 'protobuf~=4.25.3' \
    'python-dateutil~=2.9.0' azure-functions azurefunctions-extensions-base

# Generated protos: protoc over the .proto files the checkout carries (their
# imports are relative to the proto directory), then the generated imports
# made absolute (azure_functions_worker.protos...), where the worker looks.
protos="$out/azure_functions_worker/protos"
gen="$out/protos-build"
mkdir -p "$gen"
for p in shared/NullableTypes.proto identity/ClaimsIdentityRpc.proto FunctionRpc.proto; do
    "$out/venv/bin/python" -m grpc_tools.protoc -I "$protos/_src/src/proto" \
        --python_out="$gen" --grpc_python_out="$gen" "$protos/_src/src/proto/$p"
done
find "$gen" -name '*.py' -exec sed -i -E \
    -e 's/^import ([A-Za-z_]+_pb2)/from azure_functions_worker.protos import \1/' \
    -e 's/^from (shared|identity) import/from azure_functions_worker.protos.\1 import/' {} +
cp -r "$gen/." "$protos/"
rm -rf "$gen"

# The command azfunc-bench starts (PYTHONPATH: the copied package).
cat > "$out/run" <<RUN
#!/bin/sh
PYTHONPATH="$out" exec "$out/venv/bin/python" -m azure_functions_worker "\$@"
RUN
chmod +x "$out/run"
echo "official worker ready: $out/run"
