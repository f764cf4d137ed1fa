import { readdirSync, readFileSync } from 'node:fs';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ProcStat {
  readonly state: string;
  readonly pgrp: number;
  /** Clock ticks after boot: with the pid, it names one process for good (pids are reused). */
  readonly startTime: string;
}

/** `/proc/<pid>/stat`, or undefined when the process is gone or there is no procfs. */
export const procStat = (pid: number): ProcStat | undefined => {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  return { state: f[0] ?? '', pgrp: Number(f[2]), startTime: f[19] ?? '' };
};

const signalable = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * True while the process `pid` started at `startTime` runs. A zombie counts as gone (PID 1 of a
 * container may never reap it), and so does a reused pid (another start time).
 */
export const isAlive = (pid: number, startTime?: string): boolean => {
  if (!Number.isInteger(pid) || pid <= 0 || !signalable(pid)) return false;
  const stat = procStat(pid);
  if (stat === undefined) return !hasProcfs();
  return stat.state !== 'Z' && (startTime === undefined || stat.startTime === startTime);
};

let procfs: boolean | undefined;
const hasProcfs = (): boolean => (procfs ??= procStat(process.pid) !== undefined);

/** Live (non-zombie) members of process group `pgid`. */
const liveMembers = (pgid: number): number[] => {
  if (!hasProcfs()) return signalable(-pgid) ? [pgid] : [];
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s !== undefined && s.pgrp === pgid && s.state !== 'Z') members.push(Number(entry));
  }
  return members;
};

const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group emptied meanwhile, or a member is not ours to signal
  }
};

const waitEmpty = async (pgid: number, ms: number): Promise<boolean> => {
  const deadline = Date.now() + ms;
  for (;;) {
    if (liveMembers(pgid).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
};

/**
 * Stops the process group led by `pgid` (a detached child leads its own group): SIGTERM, then
 * SIGKILL after `graceMs`. The group outlives its leader, but while it has members the kernel
 * does not hand its id out again: so when another process now holds the pid (another start
 * time), the group is gone and nothing is signalled.
 */
export const stopGroup = async (
  pgid: number,
  startTime: string | undefined,
  graceMs: number,
): Promise<void> => {
  const holder = procStat(pgid);
  if (holder !== undefined && startTime !== undefined && holder.startTime !== startTime) return;
  if (liveMembers(pgid).length === 0) return;
  signalGroup(pgid, 'SIGTERM');
  if (await waitEmpty(pgid, graceMs)) return;
  signalGroup(pgid, 'SIGKILL');
  await waitEmpty(pgid, 2_000);
};
