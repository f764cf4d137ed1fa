#!/usr/bin/env bash
# Every test tier, against real nats-server processes: set up what is missing, type-check, lint, then
# unit, integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# specs and benchmarks too (the build compiles the sources only)
npx tsc -p tsconfig.json
npm run --silent lint
npm run --silent format:check
npm run --silent test:unit
npm run --silent test:int
npm run --silent test:e2e
