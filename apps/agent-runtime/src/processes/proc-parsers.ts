/** Aggregate CPU time from `/proc/stat`, in clock ticks (USER_HZ). */
export interface CpuTimes {
  /** All time of all CPUs (user + nice + system + idle + iowait + irq + softirq + steal). */
  readonly total: number;
  /** idle + iowait. */
  readonly idle: number;
  /** Number of `cpuN` lines: online CPUs. */
  readonly cpus: number;
}

/** The fields of `/proc/<pid>/stat` the metrics need; times in clock ticks. */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** R, S, D, Z (zombie), T, X, ... */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly utime: number;
  readonly stime: number;
  /** Ticks after boot: with the pid, identifies a process across samples (pids are reused). */
  readonly starttime: number;
}

export interface MemInfo {
  readonly totalBytes: number;
  readonly freeBytes: number;
  /** `MemAvailable` (free plus reclaimable), absent on old kernels. */
  readonly availableBytes?: number;
}

const num = (s: string | undefined, what: string): number => {
  const n = Number(s);
  if (s === undefined || s === '' || !Number.isFinite(n)) throw new Error(`unparsable ${what}: '${s}'`);
  return n;
};

/** `/proc/loadavg` -> the 1, 5 and 15 minute load averages. */
export const parseLoadavg = (text: string): readonly [number, number, number] => {
  const [a, b, c] = text.trim().split(/\s+/);
  return [num(a, 'loadavg'), num(b, 'loadavg'), num(c, 'loadavg')];
};

/** `/proc/meminfo` (values in kB) -> bytes. */
export const parseMeminfo = (text: string): MemInfo => {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) kb.set(m[1] as string, Number(m[2]));
  }
  const bytes = (key: string): number | undefined => {
    const v = kb.get(key);
    return v === undefined ? undefined : v * 1024;
  };
  const available = bytes('MemAvailable');
  return {
    totalBytes: num(String(bytes('MemTotal')), 'MemTotal'),
    freeBytes: num(String(bytes('MemFree')), 'MemFree'),
    ...(available !== undefined ? { availableBytes: available } : {}),
  };
};

/** The `cpu` line and the `cpuN` count of `/proc/stat`. */
export const parseCpuTimes = (text: string): CpuTimes => {
  const lines = text.split('\n');
  const cpu = lines.find((l) => l.startsWith('cpu '));
  if (!cpu) throw new Error("unparsable /proc/stat: no 'cpu' line");
  const f = cpu
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map((v) => num(v, '/proc/stat cpu'));
  const total = f.reduce((s, v) => s + v, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { total, idle, cpus: Math.max(1, lines.filter((l) => /^cpu\d+\s/.test(l)).length) };
};

/** `/proc/<pid>/stat`; the command name may hold spaces and parentheses. */
export const parseProcStat = (text: string): ProcStat => {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('unparsable /proc/<pid>/stat');
  const f = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  return {
    pid: num(text.slice(0, open).trim(), 'pid'),
    comm: text.slice(open + 1, close),
    state: f[0] ?? '?',
    ppid: num(f[1], 'ppid'),
    pgrp: num(f[2], 'pgrp'),
    utime: num(f[11], 'utime'),
    stime: num(f[12], 'stime'),
    starttime: num(f[19], 'starttime'),
  };
};

/** Resident set size from `/proc/<pid>/statm` (second field, in pages). */
export const parseStatmRss = (text: string, pageSize: number): number =>
  num(text.trim().split(/\s+/)[1], 'statm resident') * pageSize;

/** The kernel page size from the first mapping of a `smaps` file, if it says. */
export const parsePageSize = (smaps: string): number | undefined => {
  const m = /^KernelPageSize:\s+(\d+)\s+kB/m.exec(smaps);
  return m ? Number(m[1]) * 1024 : undefined;
};

/** Busy share of all CPUs between two samples, 0..100. */
export const nodeCpuPercent = (prev: CpuTimes, next: CpuTimes): number => {
  const total = next.total - prev.total;
  return total <= 0 ? 0 : (100 * (total - (next.idle - prev.idle))) / total;
};

/**
 * CPU of a process (or group) between two samples, in percent of one CPU (as `top`: up to
 * 100 × cpus): its tick delta against the elapsed ticks per CPU, so USER_HZ never matters.
 */
export const processCpuPercent = (ticks: number, prev: CpuTimes, next: CpuTimes): number => {
  const perCpu = (next.total - prev.total) / next.cpus;
  return perCpu <= 0 ? 0 : (100 * Math.max(0, ticks)) / perCpu;
};
