#!/usr/bin/env bash
# Every test tier, against real nats-server processes: set up what is missing, type-check, lint, then
# unit, integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the dashboard's browser tests drive Debian's Chromium
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CPS_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing chromium (Debian package) for the dashboard's browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "test: chromium is missing (sudo apt-get install -y chromium, or set CPS_CHROMIUM)" >&2
    exit 1
  fi
fi
# specs and benchmarks too (the build compiles the sources only)
npx tsc -p tsconfig.json
npx tsc -p apps/dashboard/tsconfig.json
npm run --silent lint
npm run --silent format:check
npm run --silent test:unit
npm run --silent test:int
npm run --silent test:e2e
