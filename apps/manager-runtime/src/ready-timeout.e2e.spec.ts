import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subjects, type Bus, getServiceInfo, listNodes, shutdownService, startupService } from '@cps/bus';
import { helloworldService } from '@cps/services';
import { eventually, TestHost } from '@cps/testing';
import type { ManagerRuntime } from './runtime/manager-runtime.js';
import { startManager, stopManager } from './manager.spec-helpers.js';

const at = subjects.manager('a1', 'h1');

describe('a node that never becomes ready (ConPaaS issue #16: never hang)', () => {
  let host: TestHost;
  let manager: ManagerRuntime;
  let director: Bus;
  const dir = mkdtempSync(join(tmpdir(), 'cps-mute-'));
  const mute = join(dir, 'mute-agent.mjs');

  beforeAll(async () => {
    // a node process that starts but never joins the bus
    writeFileSync(mute, 'setInterval(() => {}, 1000);\n');
    host = await TestHost.start({ agentEntry: mute, stopGraceMs: 1_000 });
    manager = await startManager(host, {
      service: helloworldService,
      appId: 'a1',
      serviceId: 'h1',
      readyTimeoutMs: 2_000,
      replaceFailedNodes: false,
    });
    director = host.bus;
  });
  afterAll(async () => {
    await stopManager(manager);
    await host?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('marks it failed after the ready timeout, releases it, ends startup in ERROR, and can still be shut down', async () => {
    const t0 = Date.now();
    await director.request(at, startupService, {});
    const info = await eventually(
      () => director.request(at, getServiceInfo, {}),
      (i) => i.state === 'ERROR',
      10_000,
    );
    expect(info.state).toBe('ERROR');
    expect(Date.now() - t0).toBeLessThan(2_000 + 2_500);
    const { nodes } = await eventually(
      () => director.request(at, listNodes, {}),
      (r) => r.nodes[0]?.state === 'removed',
      10_000,
    );
    expect(nodes[0]).toMatchObject({
      state: 'removed',
      reason: expect.stringMatching(/not ready within 2000 ms/),
    });
    await eventually(
      () => host.cloud.list(),
      (n) => n.length === 0,
      10_000,
    );
    expect(await host.cloud.list()).toEqual([]);
    await director.request(at, shutdownService, {});
    const stopped = await eventually(
      () => director.request(at, getServiceInfo, {}),
      (i) => i.state === 'STOPPED',
      10_000,
    );
    expect(stopped.state).toBe('STOPPED');
  });
});
