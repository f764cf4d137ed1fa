import { readFileSync } from 'node:fs';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One process, told apart from any later one that reuses its pid: the boot it runs in and its start
 * time (clock ticks since that boot, `/proc/<pid>/stat` field 22).
 */
export interface ProcessRecord {
  readonly pid: number;
  readonly boot: string;
  readonly start: string;
}

/** The fields of `/proc/<pid>/stat` from the state on (the command name may hold spaces). */
const statFields = (pid: number): string[] | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
};

const bootId = (): string | undefined => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** True while `pid` runs; a zombie (dead, not yet reaped by its parent or init) counts as gone. */
export const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const state = statFields(pid)?.[0];
  return state !== 'Z';
};

/** The record of the running process `pid`; undefined when it is gone or cannot be told apart. */
export const processRecord = (pid: number): ProcessRecord | undefined => {
  const start = statFields(pid)?.[19];
  const boot = bootId();
  if (!start || !boot || !isRunning(pid)) return undefined;
  return { pid, boot, start };
};

/** True while the very process of `r` runs (not another one that got its pid since). */
export const stillRuns = (r: ProcessRecord): boolean => {
  const now = processRecord(r.pid);
  return now !== undefined && now.boot === r.boot && now.start === r.start;
};

/** Resolves once the process of `r` is gone (it need not be a child of this one). */
export const whenGone = async (r: ProcessRecord, everyMs = 200): Promise<void> => {
  while (stillRuns(r)) await sleep(everyMs);
};

/** SIGTERM, then SIGKILL after `graceMs`, to the process of `r` only: a reused pid is left alone. */
export const terminate = async (r: ProcessRecord, graceMs = 10_000): Promise<void> => {
  if (!stillRuns(r)) return;
  process.kill(r.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (stillRuns(r) && Date.now() < deadline) await sleep(50);
  if (stillRuns(r)) process.kill(r.pid, 'SIGKILL');
  while (stillRuns(r)) await sleep(20);
};
