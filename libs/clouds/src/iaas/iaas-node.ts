import { setTimeout as sleep } from 'node:timers/promises';
import { CpsError, ValidationError, type Issue } from '@cps/core';
import { IAAS_NODE_PORTS, nodeEnvironment } from '../node-environment.js';
import type { CloudNode, NodeSpec } from '../types.js';

/**
 * What the IaaS drivers (EC2, OpenNebula) share: the boot script a new instance runs, the refusal of
 * private keys in its user-data, and the wait for a launched instance to leave `pending`.
 */
export interface IaasNodeOptions {
  /**
   * The program the machine image runs to start a node, resolved against the node's `PATH`
   * (default `['cps-node']`). It starts in `$CPS_HOME/node` (`/var/lib/cps/node` by default) with
   * its contextualization files there and a clean environment: the contextualization env, `PATH`,
   * `HOME` (that directory) and the node environment (see {@link bootScript}).
   */
  readonly startCommand?: readonly string[];
  /** How long `create` waits for a launched instance to leave `pending`; default 300000 ms. */
  readonly readyTimeoutMs?: number;
  /** How often `create` looks at a pending instance; default 2000 ms. */
  readonly pollIntervalMs?: number;
}

const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const NKEY_SEED = /(?<![A-Z2-7])S[UAONCX][A-Z2-7]{56}(?![A-Z2-7])/;
const NODE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const secretIn = (value: string): string | undefined => {
  if (PEM_PRIVATE_KEY.test(value)) return 'carries a PEM private key';
  if (NKEY_SEED.test(value)) return 'carries an nkey seed';
  return undefined;
};

/**
 * Throws a ValidationError (code `validation`) naming every file or env entry that carries a PEM
 * private key or an nkey seed. IaaS user-data is readable by anyone on the instance (and by anyone
 * allowed to describe it), so a node gets a one-time enrollment token there and makes its own key.
 */
export const refuseSecrets = (spec: NodeSpec): void => {
  const issues: Issue[] = [];
  const { files, env } = spec.contextualization;
  for (const [where, entries] of [
    ['files', files],
    ['env', env],
  ] as const)
    for (const [key, value] of Object.entries(entries)) {
      const why = secretIn(value);
      if (why)
        issues.push({
          path: `$.contextualization.${where}[${JSON.stringify(key)}]`,
          code: 'secret',
          message: `${why}: user-data is readable on the instance, send an enrollment token instead`,
        });
    }
  if (issues.length > 0)
    throw new ValidationError(
      `node ${spec.nodeId}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues,
    );
};

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const base64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const dirOf = (file: string): string | undefined =>
  file.includes('/') ? file.slice(0, file.lastIndexOf('/')) : undefined;

/**
 * How the boot script finds the machine's address: the boot environment's `CPS_NODE_ADDRESS` when
 * set, else the source address of its route out, else the first address `hostname -I` names. Fails
 * the boot (nothing starts) when none is found.
 */
const findAddress = (nodeId: string): string[] => [
  'a="${CPS_NODE_ADDRESS:-}"',
  `[ -n "$a" ] || a=$(ip -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \\([^ ]*\\).*/\\1/p') || true`,
  `[ -n "$a" ] || a=$(hostname -I 2>/dev/null | cut -d ' ' -f 1) || true`,
  `[ -n "$a" ] || { echo ${quote(`cps node ${nodeId}: cannot find this machine's address, set CPS_NODE_ADDRESS`)} >&2; exit 1; }`,
  `case "$d$a" in *"'"*) echo ${quote(`cps node ${nodeId}: CPS_HOME and the address must not contain '`)} >&2; exit 1 ;; esac`,
];

/**
 * The node environment's lines as the boot script appends them to the node's env file: `$d` (the
 * node's directory) and `$a` (its address) are expanded at boot, every other value is literal.
 */
const nodeEnvironmentLines = (nodeId: string): string[] =>
  Object.entries(nodeEnvironment({ nodeId, nodeDir: '$d', address: '$a', ports: IAAS_NODE_PORTS })).map(
    ([k, v]) => {
      if (!/^[$A-Za-z0-9_.-]*$/.test(v)) throw new CpsError('internal', `${k}: cannot write ${v} at boot`);
      return `export ${k}='${v}'`;
    },
  );

/**
 * Installs the node's Debian packages before it starts (apt-get, asked again after an update of the
 * package lists); a failure does not stop the boot: the agent then says which package is missing.
 */
const installSoftware = (packages: readonly string[]): string[] => {
  if (packages.length === 0) return [];
  const list = packages.map(quote).join(' ');
  return [
    'if command -v apt-get >/dev/null 2>&1; then',
    `  DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${list} >>"$CPS_HOME/node.log" 2>&1 ||`,
    `    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${list}; } >>"$CPS_HOME/node.log" 2>&1 || true`,
    'fi',
  ];
};

/**
 * The shell script an instance runs once at boot (EC2 user-data for cloud-init, OpenNebula
 * `START_SCRIPT_BASE64`): writes the contextualization files (0600, in 0700 directories) and env,
 * then the node environment (see `nodeEnvironment`: the machine's address, found at boot, and the
 * fixed range `IAAS_NODE_PORTS`, the node being a whole machine), then starts the node detached,
 * logging to `$CPS_HOME/node.log`; the node's software is installed before it starts. Takes a spec
 * that passed validation and {@link refuseSecrets}.
 */
export const bootScript = (spec: NodeSpec, startCommand: readonly string[] = ['cps-node']): string => {
  const { files, env } = spec.contextualization;
  const envFile = Object.entries(env)
    .map(([k, v]) => `export ${k}=${quote(v)}\n`)
    .join('');
  const dirs = [...new Set(Object.keys(files).map(dirOf))].filter((d) => d !== undefined);
  return [
    '#!/bin/sh',
    `# cps node ${spec.nodeId}: writes its files and environment, then starts it`,
    'set -eu',
    'umask 077',
    'CPS_HOME="${CPS_HOME:-/var/lib/cps}"',
    'd="$CPS_HOME/node"',
    ...findAddress(spec.nodeId),
    'mkdir -p "$d"',
    ...dirs.map((dir) => `mkdir -p "$d"/${quote(dir)}`),
    ...Object.entries(files).map(
      ([file, content]) => `printf '%s' '${base64(content)}' | base64 -d > "$d"/${quote(file)}`,
    ),
    `printf '%s' '${base64(envFile)}' | base64 -d > "$CPS_HOME/node.env"`,
    'cat >>"$CPS_HOME/node.env" <<EOF',
    ...nodeEnvironmentLines(spec.nodeId),
    'EOF',
    ...installSoftware(spec.software ?? []),
    'cd "$d"',
    `env -i PATH=${NODE_PATH} HOME="$d" \\`,
    `  setsid sh -c '. "$1"; shift; exec "$@"' cps-node "$CPS_HOME/node.env" ${startCommand.map(quote).join(' ')} \\`,
    '  >>"$CPS_HOME/node.log" 2>&1 </dev/null &',
    '',
  ].join('\n');
};

/**
 * Re-reads a launched node while it is `pending`. Returns it once it left `pending` (running, or
 * stopped: the caller decides); throws `unavailable` when it ended while starting, `timeout` when
 * it is still pending after `readyTimeoutMs` (a retried create finds the same instance).
 */
export const settle = async (
  node: CloudNode,
  read: () => Promise<CloudNode | undefined>,
  o: IaasNodeOptions,
): Promise<CloudNode> => {
  const timeoutMs = o.readyTimeoutMs ?? 300_000;
  const deadline = Date.now() + timeoutMs;
  let current = node;
  while (current.state === 'pending') {
    if (Date.now() >= deadline)
      throw new CpsError(
        'timeout',
        `node ${node.nodeId}: instance ${node.instanceId} still pending after ${timeoutMs} ms`,
      );
    await sleep(o.pollIntervalMs ?? 2_000);
    current = (await read()) ?? current;
  }
  if (current.state === 'terminated')
    throw new CpsError(
      'unavailable',
      `node ${node.nodeId}: instance ${node.instanceId} ended while starting`,
    );
  return current;
};

const instanceOrder = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

/**
 * One node per node id when a cloud holds several instances for it (a lost race, a node re-created
 * while its old instance shuts down): a live one first, then the oldest, then the lowest id.
 */
export const onePerNode = (nodes: readonly CloudNode[]): CloudNode[] => {
  const rank = (n: CloudNode): number => (n.state === 'terminated' ? 1 : 0);
  const compare = (a: CloudNode, b: CloudNode): number =>
    rank(a) - rank(b) || a.createdAt.localeCompare(b.createdAt) || instanceOrder(a.instanceId, b.instanceId);
  const best = new Map<string, CloudNode>();
  for (const n of nodes) {
    const held = best.get(n.nodeId);
    if (held === undefined || compare(n, held) < 0) best.set(n.nodeId, n);
  }
  return [...best.values()];
};

/** Replaces every occurrence of the given secrets (credentials, session strings) in `text`. */
export const redact = (text: string, secrets: readonly string[]): string =>
  secrets
    .filter((s) => s.length > 0)
    .sort((a, b) => b.length - a.length)
    .reduce((t, s) => t.replaceAll(s, '***'), text);
