#!/usr/bin/env bash
# The platform's main job: set up what is missing, bring the local platform up (nats-server and the
# director, supervised), deploy the sample application, and show what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node tools/cli/bin/cps.js up "$@"
node tools/cli/bin/cps.js deploy examples/generic-hello.json --if-missing
node tools/cli/bin/cps.js app list
