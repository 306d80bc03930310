#!/usr/bin/env bash
# The main job: set up, build, and run libazfunc on the bundled example.
# Until the local runner (`azfunc start`) lands, this decodes the bundled
# capture of a worker conversation into JSON lines.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
scripts/build.sh release
exec build/bin/azfunc decode examples/captures/worker-start.bin
