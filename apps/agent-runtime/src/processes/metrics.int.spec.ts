import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsSampler, sampleMetrics } from './metrics.js';
import { ProcessSupervisor } from './process-supervisor.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('sampleMetrics on the real /proc', () => {
  let dir: string | undefined;
  let supervisor: ProcessSupervisor | undefined;
  afterEach(async () => {
    await supervisor?.stopAll({ graceMs: 200 });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reports the node, and a workload with the busy child in its process group', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cps-metrics-'));
    supervisor = new ProcessSupervisor({ logDir: dir });
    const busy = `require('node:child_process').spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
                  setInterval(() => {}, 1000);`;
    const { pid } = await supervisor.start({
      name: 'busy',
      command: process.execPath,
      args: ['-e', busy],
      cwd: dir,
      env: {},
      restart: 'never',
    });
    for (let i = 0; sampleMetrics([pid as number]).processes[0]?.group.pids.length !== 2; i++) {
      if (i > 500) throw new Error('the busy child did not start');
      await sleep(20);
    }
    const sampler = new MetricsSampler();
    const first = sampler.sample([pid as number]);
    expect(first.node.cpuPercent).toBeUndefined();
    expect(first.node.memTotalBytes).toBeGreaterThan(first.node.memFreeBytes);
    expect(first.node.loadavg).toHaveLength(3);
    expect(first.processes[0]).toMatchObject({ pid, running: true, group: { pgid: pid } });
    expect(first.processes[0]?.cpuPercent).toBeUndefined();
    await sleep(700);
    const second = sampler.sample([pid as number]);
    const p = second.processes[0]!;
    expect(second.node.cpuPercent).toBeGreaterThan(0);
    expect(second.node.cpuPercent).toBeLessThanOrEqual(100);
    expect(p.group.pids).toHaveLength(2);
    expect(p.group.pids).toContain(pid);
    expect(p.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(p.group.rssBytes).toBeGreaterThan(p.rssBytes);
    expect(p.group.cpuPercent).toBeGreaterThan(10);
    expect(p.group.cpuPercent).toBeGreaterThan(p.cpuPercent as number);
    await supervisor.stop('busy');
    const after = sampleMetrics([pid as number]);
    expect(after.processes[0]).toMatchObject({ running: false, rssBytes: 0, group: { pids: [] } });
  });
});
