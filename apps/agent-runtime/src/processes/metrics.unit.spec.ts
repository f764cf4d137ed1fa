import { describe, expect, it } from 'vitest';
import {
  nodeCpuPercent,
  parseCpuTimes,
  parseLoadavg,
  parseMeminfo,
  parsePageSize,
  parseProcStat,
  parseStatmRss,
  processCpuPercent,
} from './proc-parsers.js';

const stat1 = `cpu  1000 0 500 8000 500 0 0 0 0 0
cpu0 500 0 250 4000 250 0 0 0 0 0
cpu1 500 0 250 4000 250 0 0 0 0 0
intr 123 0 0
ctxt 456
`;
// 1000 ticks later (500 per CPU): 250 user, 50 system, 600 idle, 100 iowait
const stat2 = `cpu  1250 0 550 8600 600 0 0 0 0 0
cpu0 625 0 275 4300 300 0 0 0 0 0
cpu1 625 0 275 4300 300 0 0 0 0 0
intr 124 0 0
`;

const meminfo = `MemTotal:       24684096 kB
MemFree:        24178088 kB
MemAvailable:   24256856 kB
Buffers:           12345 kB
HugePages_Total:       0
`;

const pidStat = (utime: number, stime: number): string =>
  `4242 (my (odd) name) S 4200 4242 4242 0 -1 4194304 102 0 0 0 ${utime} ${stime} 7 8 20 0 1 0 352940 3133440 415 18446744073709551615 0`;

describe('/proc parsers', () => {
  it('reads the cpu line and counts the CPUs', () => {
    expect(parseCpuTimes(stat1)).toEqual({ total: 10_000, idle: 8_500, cpus: 2 });
  });

  it('computes the node cpu % between two samples', () => {
    expect(nodeCpuPercent(parseCpuTimes(stat1), parseCpuTimes(stat2))).toBeCloseTo(30, 5);
    expect(nodeCpuPercent(parseCpuTimes(stat1), parseCpuTimes(stat1))).toBe(0);
  });

  it('computes a process cpu % in percent of one CPU, independent of USER_HZ', () => {
    const prev = parseCpuTimes(stat1);
    const next = parseCpuTimes(stat2);
    const a = parseProcStat(pidStat(100, 50));
    const b = parseProcStat(pidStat(300, 100));
    const ticks = b.utime + b.stime - (a.utime + a.stime);
    expect(ticks).toBe(250);
    expect(processCpuPercent(ticks, prev, next)).toBeCloseTo(50, 5);
    expect(processCpuPercent(1000, prev, next)).toBeCloseTo(200, 5);
    expect(processCpuPercent(10, prev, prev)).toBe(0);
  });

  it('parses /proc/<pid>/stat whatever the command name holds', () => {
    expect(parseProcStat(pidStat(11, 12))).toEqual({
      pid: 4242,
      comm: 'my (odd) name',
      state: 'S',
      ppid: 4200,
      pgrp: 4242,
      utime: 11,
      stime: 12,
      starttime: 352940,
    });
    expect(() => parseProcStat('garbage')).toThrow(/unparsable/);
  });

  it('turns statm resident pages into bytes', () => {
    expect(parseStatmRss('765 441 413 5 0 123 0\n', 4096)).toBe(441 * 4096);
    expect(parseStatmRss('765 441 413 5 0 123 0', 16_384)).toBe(441 * 16_384);
  });

  it('reads meminfo in bytes', () => {
    expect(parseMeminfo(meminfo)).toEqual({
      totalBytes: 24684096 * 1024,
      freeBytes: 24178088 * 1024,
      availableBytes: 24256856 * 1024,
    });
    expect(parseMeminfo('MemTotal: 2048 kB\nMemFree: 1024 kB\n')).toEqual({
      totalBytes: 2048 * 1024,
      freeBytes: 1024 * 1024,
    });
    expect(() => parseMeminfo('MemFree: 1 kB\n')).toThrow(/MemTotal/);
  });

  it('reads loadavg and the kernel page size', () => {
    expect(parseLoadavg('3.46 1.77 1.87 1/81 25043\n')).toEqual([3.46, 1.77, 1.87]);
    expect(parsePageSize('55d0-55d1 r--p 0 08:01 1 /bin/x\nSize: 4 kB\nKernelPageSize:        4 kB\n')).toBe(
      4096,
    );
    expect(parsePageSize('Size: 4 kB\n')).toBeUndefined();
  });
});
