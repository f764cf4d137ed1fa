import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import {
  nodeCpuPercent,
  parseCpuTimes,
  parseLoadavg,
  parseMeminfo,
  parsePageSize,
  parseProcStat,
  parseStatmRss,
  processCpuPercent,
  type CpuTimes,
  type ProcStat,
} from './proc-parsers.js';

/** The node as a whole. */
export interface NodeMetrics {
  readonly loadavg: readonly [number, number, number];
  readonly memTotalBytes: number;
  readonly memFreeBytes: number;
  readonly memAvailableBytes?: number;
  readonly cpus: number;
  /** Busy share of all CPUs since the previous sample (0..100); absent on the first one. */
  readonly cpuPercent?: number;
}

/** CPU and memory of a set of processes. CPU is in percent of one CPU, as `top` shows it. */
export interface Usage {
  /** Since the previous sample of the same process; absent on the first one. */
  readonly cpuPercent?: number;
  readonly rssBytes: number;
}

export interface ProcessMetrics extends Usage {
  readonly pid: number;
  /** False when the process is gone or a zombie. */
  readonly running: boolean;
  /** The process group the pid leads or belongs to: a workload and everything it started. */
  readonly group: Usage & { readonly pgid: number; readonly pids: readonly number[] };
}

export interface MetricsSample {
  readonly at: Date;
  readonly node: NodeMetrics;
  readonly processes: readonly ProcessMetrics[];
}

export interface MetricsSamplerOptions {
  /** Mount point of procfs. Default `/proc`. */
  readonly procDir?: string;
  /** Bytes per page for `statm`. Default: read from `<procDir>/self/smaps`, else 4096. */
  readonly pageSize?: number;
}

interface Seen {
  readonly starttime: number;
  readonly ticks: number;
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

const readHead = (path: string, bytes: number): string | undefined => {
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(bytes);
      return buf.subarray(0, readSync(fd, buf, 0, bytes, null)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
};

const ticksOf = (s: ProcStat): number => s.utime + s.stime;
const dead = (s: ProcStat | undefined): boolean => s === undefined || s.state === 'Z' || s.state === 'X';

/**
 * Samples the node and some processes from procfs. CPU percentages are relative to the previous
 * `sample()` of the same sampler, so keep one sampler and call it at a steady interval.
 */
export class MetricsSampler {
  private readonly procDir: string;
  private readonly pageSize: number;
  private prevCpu: CpuTimes | undefined;
  private prevProcs = new Map<number, Seen>();

  constructor(options: MetricsSamplerOptions = {}) {
    this.procDir = options.procDir ?? '/proc';
    this.pageSize =
      options.pageSize ?? parsePageSize(readHead(join(this.procDir, 'self', 'smaps'), 4096) ?? '') ?? 4096;
  }

  /** The node, and each of `pids` with its process group. */
  sample(pids: readonly number[]): MetricsSample {
    const cpu = parseCpuTimes(readFileSync(join(this.procDir, 'stat'), 'utf8'));
    const mem = parseMeminfo(readFileSync(join(this.procDir, 'meminfo'), 'utf8'));
    const prevCpu = this.prevCpu;
    const node: NodeMetrics = {
      loadavg: parseLoadavg(readFileSync(join(this.procDir, 'loadavg'), 'utf8')),
      memTotalBytes: mem.totalBytes,
      memFreeBytes: mem.freeBytes,
      ...(mem.availableBytes !== undefined ? { memAvailableBytes: mem.availableBytes } : {}),
      cpus: cpu.cpus,
      ...(prevCpu ? { cpuPercent: nodeCpuPercent(prevCpu, cpu) } : {}),
    };
    const stats = this.stats(pids);
    const seen = new Map<number, Seen>();
    for (const s of stats.values()) seen.set(s.pid, { starttime: s.starttime, ticks: ticksOf(s) });
    const processes = pids.map((pid) => this.processMetrics(pid, stats, cpu));
    this.prevCpu = cpu;
    this.prevProcs = seen;
    return { at: new Date(), node, processes };
  }

  /** Stats of every live process in the groups of `pids`, plus the pids themselves. */
  private stats(pids: readonly number[]): Map<number, ProcStat> {
    const out = new Map<number, ProcStat>();
    if (pids.length === 0) return out;
    for (const pid of pids) {
      const s = this.stat(pid);
      if (s) out.set(pid, s);
    }
    const pgids = new Set([...out.values()].map((s) => s.pgrp).concat(pids));
    for (const entry of readdirSync(this.procDir)) {
      if (!/^\d+$/.test(entry) || out.has(Number(entry))) continue;
      const s = this.stat(Number(entry));
      if (s && pgids.has(s.pgrp) && !dead(s)) out.set(s.pid, s);
    }
    return out;
  }

  private stat(pid: number): ProcStat | undefined {
    const text = read(join(this.procDir, String(pid), 'stat'));
    return text === undefined ? undefined : parseProcStat(text);
  }

  private rss(pid: number): number {
    const text = read(join(this.procDir, String(pid), 'statm'));
    return text === undefined ? 0 : parseStatmRss(text, this.pageSize);
  }

  /** Ticks since the previous sample; undefined for a process not seen then (or a reused pid). */
  private delta(s: ProcStat): number | undefined {
    const prev = this.prevProcs.get(s.pid);
    return prev && prev.starttime === s.starttime ? ticksOf(s) - prev.ticks : undefined;
  }

  private processMetrics(pid: number, stats: Map<number, ProcStat>, cpu: CpuTimes): ProcessMetrics {
    const s = stats.get(pid);
    const pgid = s?.pgrp ?? pid;
    const members = [...stats.values()].filter((m) => m.pgrp === pgid && !dead(m));
    const prevCpu = this.prevCpu;
    const own = s && !dead(s) ? this.delta(s) : undefined;
    const groupSeen = members.some((m) => this.delta(m) !== undefined);
    const groupTicks = members.reduce((sum, m) => sum + (this.delta(m) ?? ticksOf(m)), 0);
    const percent = (ticks: number | undefined): { cpuPercent?: number } =>
      prevCpu && ticks !== undefined ? { cpuPercent: processCpuPercent(ticks, prevCpu, cpu) } : {};
    const rss = new Map(members.map((m) => [m.pid, this.rss(m.pid)]));
    return {
      pid,
      running: !dead(s),
      rssBytes: rss.get(pid) ?? 0,
      ...percent(own),
      group: {
        pgid,
        pids: members.map((m) => m.pid),
        rssBytes: [...rss.values()].reduce((a, b) => a + b, 0),
        ...percent(groupSeen ? groupTicks : undefined),
      },
    };
  }
}

let shared: MetricsSampler | undefined;

/**
 * Samples the node and each of `pids` (workload main processes) with its process group, from
 * `/proc`. CPU percentages are since the previous call (absent on the first): one shared sampler
 * per agent process; use `new MetricsSampler()` for an independent series.
 */
export const sampleMetrics = (pids: readonly number[]): MetricsSample =>
  (shared ??= new MetricsSampler()).sample(pids);
