#!/bin/sh
# One-shot set-up of the compose deployment (the `init` service): creates the platform material
# once, in the named volumes mounted under /var/lib/cps. Each step is skipped when its result exists.
#
#   /var/lib/cps/d1    home of director d1: platform.json, secrets.sealed, master.key, run/
#   /var/lib/cps/d2    home of director d2, joined through a sealed join bundle
#   /var/lib/cps/nats  one directory per nats-server: server.conf, server cert and key, ca.pem
set -eu

cps() { node /app/tools/cli/bin/cps.js "$@"; }

base=/var/lib/cps
servers=nats-1,nats-2,nats-3
urls=tls://nats-1:4222,tls://nats-2:4222,tls://nats-3:4222

if [ ! -f "$base/d1/platform.json" ]; then
  cps --home "$base/d1" platform init --nats "$urls"
fi
mkdir -p -m 0700 "$base/d1/run"

if [ ! -f "$base/nats/nats-3/server.conf" ]; then
  # Per server <name> of --servers it writes <out>/<name>/: server.conf (server_name <name>, client
  # port 4222 and cluster port 6222 on 0.0.0.0, monitoring on 127.0.0.1:8222, mTLS verify: true,
  # operator mode with a full resolver, JetStream, cluster "cps" with TLS routes to the other names),
  # server-cert.pem (DNS SAN <name>: clients and routes check it), server-key.pem (0600), ca.pem.
  # The resolver and JetStream directories are <data-dir>/resolver and <data-dir>/jetstream, the
  # per-server data volume of each nats service.
  cps --home "$base/d1" platform nats-config \
    --servers "$servers" --client-port 4222 --cluster-port 6222 --monitor-port 8222 \
    --data-dir "$base/data" --out "$base/nats"
fi

if [ ! -f "$base/d2/platform.json" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # the bundle and its passphrase never leave this container
  CPS_JOIN_PASSPHRASE=$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('base64url'))")
  export CPS_JOIN_PASSPHRASE
  cps --home "$base/d1" platform export-join --out "$tmp/join.bundle"
  cps --home "$base/d2" platform join --bundle "$tmp/join.bundle" --director-id d2 --nats "$urls"
fi
mkdir -p -m 0700 "$base/d2/run"
