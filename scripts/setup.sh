#!/usr/bin/env bash
# Installs what cps needs on a Debian machine, idempotently: nats-server (apt, when missing and
# running as root), the npm packages (npm ci when package-lock.json changed), and builds.
set -euo pipefail
cd "$(dirname "$0")/.."

have_nats() {
  [ -n "${CPS_NATS_SERVER:-}" ] && [ -x "${CPS_NATS_SERVER}" ] && return 0
  command -v nats-server >/dev/null 2>&1 && return 0
  [ -x /usr/sbin/nats-server ] && return 0
  return 1
}

if ! have_nats; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing nats-server (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q nats-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q nats-server >/dev/null; }
  else
    echo "setup: nats-server is missing. Install the Debian package: sudo apt-get install -y nats-server (or set CPS_NATS_SERVER)" >&2
    exit 1
  fi
fi

# --- libs/clouds: the workload account --------------------------------------------------------
# Workloads on local nodes run as this unprivileged system account (see workloadUser() in
# libs/clouds). Only root can create it; without it, workloads keep the platform's own account.
if [ "$(id -u)" = "0" ] && ! id -u cps-work >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1; then
  echo "setup: creating the workload account cps-work"
  useradd --system --no-create-home --shell /usr/sbin/nologin cps-work
fi
# --- end libs/clouds ---------------------------------------------------------------------------

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js >= 20.19 is required" >&2
  exit 1
fi

stamp=node_modules/.cps-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

echo "setup: build"
npm run --silent build

# --- libs/services: the software the built-in service types run on their nodes ---------------
# Each type declares its Debian packages (`packages` in its definition); nodes of a type whose
# software is missing fail at start, naming the package.
packages=$(node --input-type=module -e "
  const { builtinServices } = await import('./libs/services/dist/index.js');
  console.log([...new Set(builtinServices.flatMap((s) => s.packages ?? []))].join(' '));")
# host mode of the local cloud (root only): namespaces and links (iproute2), rules (nftables),
# entering a node's namespaces (util-linux)
if [ "$(id -u)" = "0" ]; then packages="$packages iproute2 nftables util-linux"; fi
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing the services' software:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # the platform runs these servers on its nodes: the packages must not start the distribution's own
    # instances (mariadb, redis) while they install; a policy of our own, removed after, says so
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    fi
    # shellcheck disable=SC2086
    apt-get install -y -q $missing >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
    if [ -n "$policy" ]; then rm -f "$policy"; fi
    # the platform runs these servers on its nodes: the distribution's own instances are not wanted
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      for p in $missing; do systemctl disable --now "$p" >/dev/null 2>&1 || true; done
    fi
  else
    echo "setup: the services' software is missing:$missing (sudo apt-get install -y$missing); their nodes will fail until it is installed" >&2
  fi
fi
# --- end libs/services -------------------------------------------------------------------------
