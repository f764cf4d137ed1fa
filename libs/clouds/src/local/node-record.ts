import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, ID_PATTERN } from '@cps/core';
import type { PortRange } from '../node-environment.js';
import type { NodeKind } from '../types.js';

export type { PortRange };

/** What `<node>/node.json` holds: enough to find, judge and stop the node's process later. */
export interface NodeRecord {
  readonly nodeId: string;
  readonly kind: NodeKind;
  readonly appId: string;
  readonly serviceId: string;
  readonly role?: string;
  readonly pid: number;
  /** From `/proc/<pid>/stat`: tells the node's process from a later one given the same pid. */
  readonly startTime?: string;
  readonly command: readonly string[];
  /** The node's cgroup, when the cloud confines nodes in cgroups (see NodeCgroups). */
  readonly cgroup?: string;
  readonly ports: PortRange;
  /** Host mode: the node's network and host numbers (see the host address plan). */
  readonly network?: { readonly network: number; readonly host: number };
  readonly createdAt: string;
}

const RECORD = 'node.json';

const isRecord = (v: unknown): v is NodeRecord => {
  const r = v as Partial<NodeRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.nodeId === 'string' &&
    Number.isInteger(r.pid) &&
    typeof r.ports?.from === 'number' &&
    typeof r.ports.to === 'number'
  );
};

export const readRecord = (nodeDir: string): NodeRecord | undefined => {
  try {
    const r: unknown = JSON.parse(readFileSync(join(nodeDir, RECORD), 'utf8'));
    return isRecord(r) ? r : undefined;
  } catch {
    return undefined;
  }
};

/** Replaces the record in one rename, so a reader never sees half of it. */
export const writeRecord = (nodeDir: string, record: NodeRecord): void => {
  const tmp = join(nodeDir, `${RECORD}.tmp`);
  writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, join(nodeDir, RECORD));
};

/** Every record under `nodesDir`, in node id order (entries that are not node ids are skipped). */
export const readRecords = (nodesDir: string): NodeRecord[] => {
  let entries: string[];
  try {
    entries = readdirSync(nodesDir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => ID_PATTERN.test(e))
    .sort()
    .flatMap((e) => readRecord(join(nodesDir, e)) ?? []);
};

const overlaps = (a: PortRange, b: PortRange): boolean => a.from <= b.to && b.from <= a.to;

const holdsAny = (range: PortRange, busy: ReadonlySet<number>): boolean => {
  for (let p = range.from; p <= range.to; p++) if (busy.has(p)) return true;
  return false;
};

/**
 * The lowest `size`-port range from `base` (in steps of `size`) that overlaps none of `held` and
 * holds none of the `busy` ports (those the machine uses already, see `listeningPorts`).
 */
export const freeRange = (
  held: readonly PortRange[],
  base: number,
  size: number,
  busy: ReadonlySet<number> = new Set(),
): PortRange => {
  for (let from = base; from + size - 1 <= 65_535; from += size) {
    const range = { from, to: from + size - 1 };
    if (!held.some((h) => overlaps(h, range)) && !holdsAny(range, busy)) return range;
  }
  throw new CpsError('unavailable', `no free range of ${size} ports from ${base}`);
};
