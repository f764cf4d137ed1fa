import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subjects, type Bus, addNodes, getServiceInfo, listNodes, startupService } from '@cps/bus';
import { helloworldService } from '@cps/services';
import { eventually, TestHost } from '@cps/testing';
import type { ManagerRuntime } from './runtime/manager-runtime.js';
import { startManager, stopManager } from './manager.spec-helpers.js';

const AGENT = join(process.cwd(), 'apps', 'agent-runtime', 'dist', 'main.js');
const at = subjects.manager('a1', 'p1');

/**
 * A node dies while no director leads (so nobody serves the Provisioner): its replacement is asked
 * for again until a Provisioner answers, and the service does not stay ADAPTING for good.
 */
describe('a node lost while nobody serves the Provisioner', () => {
  let host: TestHost;
  let manager: ManagerRuntime;
  let director: Bus;

  const info = () => director.request(at, getServiceInfo, {});
  const running = async () =>
    (await director.request(at, listNodes, {})).nodes.filter((n) => n.state === 'running');

  beforeAll(async () => {
    host = await TestHost.start({ agentEntry: AGENT, stopGraceMs: 2_000 });
    manager = await startManager(host, {
      service: helloworldService,
      appId: 'a1',
      serviceId: 'p1',
      heartbeatTimeoutMs: 2_000,
      readyTimeoutMs: 20_000,
    });
    director = host.bus;
  });
  afterAll(async () => {
    await stopManager(manager);
    await host?.cleanup();
  });

  it('is replaced once a Provisioner serves again; the service then takes new nodes', async () => {
    await director.request(at, startupService, {});
    const up = await eventually(info, (i) => i.state === 'RUNNING', 30_000);
    expect(up.state).toBe('RUNNING');
    const [victim] = await host.cloud.list();
    await host.stopProvisioner();
    process.kill(Number(victim!.instanceId), 'SIGKILL');
    // the replacement is requested while nobody serves: the service adapts and waits
    const adapting = await eventually(
      () => director.request(at, listNodes, {}),
      (r) => r.nodes.some((n) => n.nodeId !== victim!.nodeId && n.state === 'requested'),
      15_000,
    );
    expect(adapting.nodes.some((n) => n.nodeId !== victim!.nodeId && n.state === 'requested')).toBe(true);
    await new Promise((r) => setTimeout(r, 3_000));
    await host.serveProvisioner();
    // a request sent as the Provisioner went away may wait out its own timeout (60 s) before it is
    // asked again: the replacement comes once one is answered
    const healed = await eventually(
      running,
      (ns) => ns.length === 1 && ns[0]!.nodeId !== victim!.nodeId,
      90_000,
    ).catch(async (e: unknown) => {
      console.log(JSON.stringify((await director.request(at, listNodes, {})).nodes, null, 1));
      console.log(JSON.stringify(await host.cloud.list(), null, 1));
      throw e;
    });
    expect(healed.map((n) => n.nodeId)).not.toContain(victim!.nodeId);
    const back = await eventually(info, (i) => i.state === 'RUNNING', 10_000);
    expect(back.state).toBe('RUNNING');
    await director.request(at, addNodes, { nodes: { node: 1 } });
    const grown = await eventually(running, (ns) => ns.length === 2, 30_000);
    expect(grown).toHaveLength(2);
  }, 240_000);
});
