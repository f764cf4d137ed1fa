#!/usr/bin/env bash
# The platform's main job: set up what is missing, then bring the local platform up and show it healthy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node tools/cli/bin/cps.js up "$@"
