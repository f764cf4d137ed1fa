import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  subjects,
  type Bus,
  addNodes,
  callMethod,
  getServiceInfo,
  listNodes,
  startupService,
} from '@cps/bus';
import { allowedStates, genericService } from '@cps/services';
import { eventually, TestHost } from '@cps/testing';
import type { ManagerRuntime } from './runtime/manager-runtime.js';
import { startManager, stopManager } from './manager.spec-helpers.js';

const AGENT = join(process.cwd(), 'apps', 'agent-runtime', 'dist', 'main.js');
const at = subjects.manager('a1', 'f1');

describe("a plugin's questions to all its nodes", () => {
  let host: TestHost;
  let manager: ManagerRuntime;
  let director: Bus;
  const status = async () =>
    (
      (
        await director.request(
          at,
          callMethod,
          { method: 'get_script_status', args: {} },
          { timeoutMs: 20_000 },
        )
      ).result as { nodes: Record<string, Record<string, string>> }
    ).nodes;

  beforeAll(async () => {
    host = await TestHost.start({ agentEntry: AGENT, stopGraceMs: 2_000 });
    manager = await startManager(host, {
      service: genericService,
      appId: 'a1',
      serviceId: 'f1',
      // a frozen agent stays a running node for the whole test
      heartbeatTimeoutMs: 60_000,
      readyTimeoutMs: 20_000,
    });
    director = host.bus;
    await director.request(at, startupService, {});
    await eventually(
      () => director.request(at, getServiceInfo, {}),
      (i) => i.state === 'RUNNING',
      30_000,
    );
  });
  afterAll(async () => {
    await stopManager(manager);
    await host?.cleanup();
  });

  it('may be asked while nodes are being added, when they only read', async () => {
    expect(allowedStates(genericService.manager.methods['get_script_status'])).toContain('ADAPTING');
    await director.request(at, addNodes, { nodes: { node: 1 } });
    expect((await director.request(at, getServiceInfo, {})).state).toBe('ADAPTING');
    expect(Object.keys(await status()).length).toBeGreaterThanOrEqual(1);
    await eventually(
      async () => (await director.request(at, listNodes, {})).nodes.filter((n) => n.state === 'running'),
      (ns) => ns.length === 2,
      30_000,
    );
  });

  it('answers for every node when one does not answer: that one is unreachable', async () => {
    const [frozen, live] = await host.cloud.list().then((ns) => ns.filter((n) => n.kind === 'agent'));
    process.kill(Number(frozen!.instanceId), 'SIGSTOP');
    try {
      const nodes = await status();
      expect(nodes[frozen!.nodeId]).toMatchObject({ init: 'unreachable', run: 'unreachable' });
      expect(nodes[live!.nodeId]).toMatchObject({ run: 'not_started' });
    } finally {
      process.kill(Number(frozen!.instanceId), 'SIGCONT');
    }
  });
});
