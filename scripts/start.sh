#!/usr/bin/env bash
# The main job: set up, build, and serve the bundled example app with `azfunc start`
# on http://127.0.0.1:7071 (try: curl "http://127.0.0.1:7071/api/hello?name=user").
#   scripts/start.sh [azfunc start options, e.g. --port 8080 or --python 3.12]
# The example has no venv: the Python is picked by azfunc start's rule (python3 on PATH)
# and azure-functions comes from the copy bundled with libazfunc.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
scripts/build.sh release
exec build/bin/azfunc start examples/hello "$@"
