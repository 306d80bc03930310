#!/usr/bin/env bash
# The main job: set up, build, and serve the bundled example app with `azfunc start`
# on http://127.0.0.1:7071 (try: curl "http://127.0.0.1:7071/api/hello?name=user").
#   scripts/start.sh [azfunc start options, e.g. --port 8080]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
scripts/build.sh release
export VIRTUAL_ENV="$ROOT/.venv"
exec build/bin/azfunc start examples/hello "$@"
