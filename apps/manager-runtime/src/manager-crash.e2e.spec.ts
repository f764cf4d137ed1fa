import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  subjects,
  type Bus,
  createManagerNode,
  addNodes,
  getServiceInfo,
  listNodes,
  shutdownService,
  startupService,
} from '@cps/bus';
import { isRunning } from '@cps/platform';
import { eventually, TestHost } from '@cps/testing';

const root = process.cwd();
const at = subjects.manager('a1', 's1');
const MANAGER_NODE = 'mgr-s1';

describe('kill -9 of the manager process during add_nodes', () => {
  let host: TestHost;
  let director: Bus;
  const info = () => director.request(at, getServiceInfo, {}, { timeoutMs: 2_000, retries: 2 });
  const until = async (state: string, ms = 40_000) => {
    const r = await eventually(
      () => info().catch(() => ({ state: 'unreachable' }) as const),
      (i) => i.state === state,
      ms,
    );
    expect(r.state).toBe(state);
  };
  const agents = async () => (await host.cloud.list()).filter((n) => n.kind === 'agent');

  beforeAll(async () => {
    host = await TestHost.start({
      agentEntry: join(root, 'apps', 'agent-runtime', 'dist', 'main.js'),
      managerEntry: join(root, 'apps', 'manager-runtime', 'dist', 'main.js'),
      managerEnv: { CPS_HEARTBEAT_TIMEOUT_MS: '5000', CPS_READY_TIMEOUT_MS: '30000' },
      stopGraceMs: 2_000,
    });
    director = host.bus;
    // the supervisor's part: ask the Provisioner for the service's manager process
    await director.request(
      subjects.managerProvisioner('a1', 's1'),
      createManagerNode,
      { nodeId: MANAGER_NODE, serviceType: 'helloworld' },
      { requestId: 'start-manager', timeoutMs: 30_000 },
    );
    await eventually(
      () => info().catch(() => undefined),
      (i) => i !== undefined,
      20_000,
    );
    await director.request(at, startupService, {});
    await until('RUNNING');
  });
  afterAll(async () => host?.cleanup());

  it('comes back consistent: every requested node exists exactly once, none orphaned', async () => {
    const manager = (await host.cloud.get(MANAGER_NODE))!;
    await director.request(at, addNodes, { nodes: { node: 3 } });
    process.kill(Number(manager.instanceId), 'SIGKILL');
    await eventually(
      async () => isRunning(Number(manager.instanceId)),
      (alive) => !alive,
      5_000,
    );

    // the supervisor's part: the reconciler finds the manager missing and starts it again
    const report = await host.provisioner.reconcile();
    expect(report.restarted).toContain(MANAGER_NODE);
    await until('RUNNING');

    const nodes = (await director.request(at, listNodes, {})).nodes.filter((n) => n.state !== 'removed');
    expect(nodes.filter((n) => n.state === 'running')).toHaveLength(4);
    const live = await agents();
    expect(live.map((n) => n.nodeId).sort()).toEqual(nodes.map((n) => n.nodeId).sort());
    expect(live.every((n) => n.state === 'running')).toBe(true);
    expect(new Set(live.map((n) => n.instanceId)).size).toBe(live.length);
    const records = host.provisioner.list().filter((r) => r.kind === 'agent' && r.status === 'provisioned');
    expect(records.map((r) => r.nodeId).sort()).toEqual(live.map((n) => n.nodeId).sort());
  });

  it('shuts down cleanly afterwards: no agent left', async () => {
    await director.request(at, shutdownService, {});
    await until('STOPPED');
    await eventually(agents, (a) => a.length === 0, 15_000);
    expect(await agents()).toEqual([]);
  });
});
