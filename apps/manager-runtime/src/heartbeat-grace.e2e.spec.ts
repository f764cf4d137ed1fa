import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subjects, type Bus, addNodes, getServiceInfo, listNodes, startupService } from '@cps/bus';
import { helloworldService } from '@cps/services';
import { eventually, TestHost } from '@cps/testing';
import type { ManagerRuntime } from './runtime/manager-runtime.js';
import { startManager, stopManager } from './manager.spec-helpers.js';

const AGENT = join(process.cwd(), 'apps', 'agent-runtime', 'dist', 'main.js');
const at = subjects.manager('a1', 's1');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('heartbeats after a restart of the platform', () => {
  let host: TestHost;
  let manager: ManagerRuntime;
  let director: Bus;
  const nodes = async () => (await director.request(at, listNodes, {}, { timeoutMs: 2_000 })).nodes;

  beforeAll(async () => {
    host = await TestHost.start({ agentEntry: AGENT, stopGraceMs: 2_000 });
    manager = await startManager(host, {
      service: helloworldService,
      appId: 'a1',
      serviceId: 's1',
      heartbeatTimeoutMs: 1_000,
      heartbeatGraceMs: 6_000,
      readyTimeoutMs: 20_000,
    });
    director = host.bus;
    await director.request(at, startupService, {});
    await eventually(
      () => director.request(at, getServiceInfo, {}),
      (i) => i.state === 'RUNNING',
      30_000,
    );
    await director.request(at, addNodes, { nodes: { node: 2 } });
    await eventually(nodes, (ns) => ns.length === 3 && ns.every((n) => n.state === 'running'), 30_000);
  });
  afterAll(async () => {
    await stopManager(manager);
    await host?.cleanup();
  });

  it('keeps nodes whose heartbeats resume within the grace after NATS comes back, and fails a silent one after it', async () => {
    const before = (await nodes()).map((n) => n.nodeId).sort();
    const agents = (await host.cloud.list()).filter((n) => n.kind === 'agent');
    const pids = agents.map((n) => Number(n.instanceId));
    // the platform goes down; the agents come back later than the manager does
    await host.nats.servers.kill(0);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      await sleep(2_000);
      await host.nats.servers.restart(0);
      await eventually(
        () => director.request(at, getServiceInfo, {}, { timeoutMs: 1_000 }).catch(() => undefined),
        (i) => i?.state === 'RUNNING',
        15_000,
      );
      // well past the heartbeat timeout, within the grace
      await sleep(2_500);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    const after = await eventually(
      nodes,
      (ns) =>
        ns.every((n) => n.state === 'running' && Date.now() - Date.parse(n.lastHeartbeat ?? '') < 1_500),
      10_000,
    );
    expect(after.map((n) => n.nodeId).sort()).toEqual(before);
    expect(after.every((n) => n.state === 'running')).toBe(true);
    expect((await director.request(at, getServiceInfo, {})).state).toBe('RUNNING');

    // past the grace, silence fails a node as before
    await sleep(4_000);
    const victim = agents[0]!;
    process.kill(Number(victim.instanceId), 'SIGKILL');
    const failed = await eventually(
      nodes,
      (ns) => ns.some((n) => n.nodeId === victim.nodeId && n.state !== 'running'),
      5_000,
    );
    expect(failed.find((n) => n.nodeId === victim.nodeId)?.state).not.toBe('running');
  });
});
