import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import {
  subjects,
  type Bus,
  addNodes,
  callMethod,
  getHistory,
  getLogs,
  getServiceInfo,
  listNodes,
  removeNodes,
  shutdownService,
  startupService,
} from '@cps/bus';
import { isRunning } from '@cps/platform';
import { helloworldService } from '@cps/services';
import { eventually, TestHost } from '@cps/testing';
import type { ManagerRuntime } from './runtime/manager-runtime.js';
import { startManager, stopManager } from './manager.spec-helpers.js';

const AGENT = join(process.cwd(), 'apps', 'agent-runtime', 'dist', 'main.js');
const at = subjects.manager('a1', 's1');

describe('a helloworld service driven as the director will: real agents on the local cloud', () => {
  let host: TestHost;
  let manager: ManagerRuntime;
  let director: Bus;

  const info = () => director.request(at, getServiceInfo, {});
  const until = async (state: string, ms = 30_000) => {
    const r = await eventually(info, (i) => i.state === state, ms);
    expect(r.state).toBe(state);
    return r;
  };
  const running = async () =>
    (await director.request(at, listNodes, {})).nodes.filter((n) => n.state === 'running');

  beforeAll(async () => {
    host = await TestHost.start({ agentEntry: AGENT, stopGraceMs: 2_000 });
    manager = await startManager(host, {
      service: helloworldService,
      appId: 'a1',
      serviceId: 's1',
      heartbeatTimeoutMs: 3_000,
      readyTimeoutMs: 20_000,
    });
    director = host.bus;
  });
  afterAll(async () => {
    await stopManager(manager);
    await host?.cleanup();
  });

  it('starts: INIT -> PROLOGUE -> RUNNING with one real agent answering its method', async () => {
    expect((await info()).state).toBe('INIT');
    const op = await director.request(at, startupService, {});
    expect(op.operationId).toMatch(/^op-/);
    await until('RUNNING');
    const r = await director.request(at, callMethod, { method: 'get_helloworld', args: {} });
    const { messages } = r.result as { messages: { nodeId: string; message: string }[] };
    expect(messages).toHaveLength(1);
    expect(messages[0]?.message).toBe(`Hello from ${messages[0]?.nodeId}`);
  });

  it('adds nodes through ADAPTING; they heartbeat with metrics', async () => {
    await director.request(at, addNodes, { nodes: { node: 2 } });
    await until('RUNNING');
    const nodes = await running();
    expect(nodes).toHaveLength(3);
    expect(nodes.every((n) => n.lastHeartbeat && (n.metrics?.memTotalBytes ?? 0) > 0)).toBe(true);
    expect((await host.cloud.list()).filter((n) => n.state === 'running')).toHaveLength(3);
    const own = await director.request(at, getLogs, {});
    expect(own.text).toMatch(/info NodeReady/);
    expect(own.text).toMatch(/info OperationCompleted/);
  });

  it('refuses bad input with codes and paths', async () => {
    await expect(director.request(at, addNodes, { nodes: { web: 1 } })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.nodes.web',
    );
    await expect(
      director.request(at, callMethod, { method: 'get_helloworld', args: { extra: 1 } }),
    ).resolves.toBeDefined();
    await expect(director.request(at, callMethod, { method: 'nope', args: {} })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'not_found'),
    );
    await expect(director.request(at, startupService, {})).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'conflict') && /RUNNING/.test(e.message),
    );
  });

  it('detects an agent killed with -9 within timeout + 1 s and replaces it', async () => {
    const victim = (await host.cloud.list()).find((n) => n.state === 'running')!;
    const t0 = Date.now();
    process.kill(Number(victim.instanceId), 'SIGKILL');
    const failed = await eventually(
      () => director.request(at, listNodes, {}),
      (r) => r.nodes.some((n) => n.nodeId === victim.nodeId && n.state !== 'running'),
      10_000,
    );
    const detectedMs = Date.now() - t0;
    expect(failed.nodes.find((n) => n.nodeId === victim.nodeId)?.state).not.toBe('running');
    expect(detectedMs).toBeLessThan(3_000 + 1_500);
    const healed = await eventually(
      running,
      (ns) => ns.length === 3 && !ns.some((n) => n.nodeId === victim.nodeId),
      30_000,
    );
    expect(healed).toHaveLength(3);
    await until('RUNNING');
    await eventually(
      () => host.cloud.list(),
      (ns) => !ns.some((n) => n.nodeId === victim.nodeId),
      10_000,
    );
    expect((await host.cloud.list()).map((n) => n.nodeId)).not.toContain(victim.nodeId);
  });

  it('removes nodes, shuts down, and leaves nothing running; a stopped service starts again', async () => {
    await director.request(at, removeNodes, { nodes: { node: 1 } });
    await until('RUNNING');
    expect(await running()).toHaveLength(2);
    const pids = (await host.cloud.list()).map((n) => Number(n.instanceId));
    await director.request(at, shutdownService, {});
    await until('STOPPED');
    await eventually(
      () => host.cloud.list(),
      (ns) => ns.length === 0,
      10_000,
    );
    expect(await host.cloud.list()).toEqual([]);
    expect(pids.filter((p) => isRunning(p))).toEqual([]);
    await expect(director.request(at, addNodes, { nodes: { node: 1 } })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'conflict') && /STOPPED/.test(e.message),
    );
    await director.request(at, startupService, {});
    await until('RUNNING');
    expect(await running()).toHaveLength(1);
    const h = await director.request(at, getHistory, {});
    expect(h.history.map((x) => x.to)).toEqual([
      'PROLOGUE',
      'RUNNING',
      'ADAPTING',
      'RUNNING',
      'ADAPTING',
      'RUNNING',
      'ADAPTING',
      'RUNNING',
      'EPILOGUE',
      'STOPPED',
      'PROLOGUE',
      'RUNNING',
    ]);
    expect(h.operations.filter((o) => o.event === 'OperationStarted')).toHaveLength(6);
  });
});
