#!/usr/bin/env bash
# The platform's main job: set up what is missing, bring the local platform up (nats-server and the
# director, supervised), deploy the sample application, and show what runs and how to look at it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cps() { node tools/cli/bin/cps.js "$@"; }
cps up "$@"
cps deploy examples/generic-hello.json --if-missing
cps app info generic-hello
cps service nodes hello --app generic-hello
status=$(cps --json status)
url=$(printf '%s' "$status" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).directorUrl??""))')
home=$(printf '%s' "$status" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).home??""))')
cat <<MSG

The sample application runs. To look at it (cps is node tools/cli/bin/cps.js):
  cps app info generic-hello                    the application and its service
  cps service nodes hello --app generic-hello   its nodes and their addresses (host mode: each its own)
  cps events --app generic-hello --follow       what happens, live (Ctrl-C ends it)
  cps deploy examples/generic-scripts/manifest.json   an application with code from a local directory
  curl --cacert ${home:-\$CPS_HOME}/ca.pem ${url}/healthz
MSG
