import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasErrorCode } from '@cps/core';
import {
  subjects,
  type Bus,
  agentLogs,
  callMethod,
  configureAgent,
  HeartbeatSchema,
  type Heartbeat,
} from '@cps/bus';
import { workloadUser } from '@cps/clouds';
import { freePort } from '@cps/platform';
import { agentMethod, defineService, type ServiceDefinition } from '@cps/services';
import { eventually, TestNats } from '@cps/testing';
import { ProcessSupervisor } from '../processes/index.js';
import { AgentRuntime, DATA_DIR } from './agent-runtime.js';

const root = process.getuid?.() === 0;

/**
 * A plugin that records what the runtime made it do, and runs one workload that listens on its
 * first port only after `DELAY` ms (so readiness has to wait for it) and says so when it gets SIGHUP.
 */
const seen: string[] = [];
const LISTENER = `
process.on('SIGHUP', () => console.log('reloaded'));
setTimeout(() => require('node:net').createServer().listen(Number(process.argv[1]), process.argv[2]), Number(process.argv[3]));
`;
const probe = (packages: string[] = []) =>
  defineService({
    type: 'probe',
    description: 'records the runtime’s calls',
    roles: ['node'],
    defaultRoles: { node: 1 },
    configSchema: z.object({}),
    manifestKeys: z.object({}),
    packages,
    manager: { methods: {} },
    agent: {
      methods: {
        whoami: agentMethod({
          description: 'runs id -u as the workload user',
          args: z.object({}),
          result: z.object({ uid: z.string(), code: z.number().nullable() }),
          handle: async (ctx) => {
            const r = await ctx.exec('id', ['-u']);
            return { uid: r.stdout.trim(), code: r.code };
          },
        }),
        reload: agentMethod({
          description: 'SIGHUP to the listener',
          args: z.object({}),
          result: z.object({}),
          handle: async (ctx) => {
            await ctx.signal('listener', 'SIGHUP');
            return {};
          },
        }),
      },
      onConfigure: async (ctx, config) => {
        seen.push(`configure ${JSON.stringify(config.settings)}`);
      },
      onStart: async (ctx) => {
        seen.push(`start ${JSON.stringify(ctx.config?.settings)}`);
        const delay = (ctx.config?.settings['delay'] as number | undefined) ?? 0;
        await ctx.startWorkload({
          name: 'listener',
          command: process.execPath,
          args: ['-e', LISTENER, String(ctx.ports.from), ctx.address, String(delay)],
          ready: { tcp: ctx.ports.from },
        });
      },
      onStop: async () => {
        seen.push('stop');
      },
    },
  });

describe('the agent runtime: configuration, readiness, durable data, one-off commands', () => {
  let nats: TestNats;
  let manager: Bus;
  const beats: Heartbeat[] = [];
  const nodeDir = mkdtempSync(join(tmpdir(), 'cps-agent-int-'));
  const agents: AgentRuntime[] = [];
  const at = subjects.agent('a1', 's1', 'n1');
  const config = (settings: Record<string, unknown>) => ({ settings, nodes: [], links: {} });
  const lastBeat = async () => beats.at(-1);

  let port = 0;
  const buses = new Map<AgentRuntime, Awaited<ReturnType<TestNats['bus']>>>();
  /** Stops an agent and closes its connection: it answers nothing more for the node. */
  const retire = async (agent: AgentRuntime): Promise<void> => {
    await agent.stop();
    await buses.get(agent)?.close();
  };
  const startAgent = async (
    packages: string[] = [],
    checkNode?: ServiceDefinition['checkNode'],
  ): Promise<AgentRuntime> => {
    const bus = await nats.bus({ role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1', nodeId: 'n1' });
    const user = workloadUser();
    const agent = new AgentRuntime({
      bus,
      service: checkNode ? { ...probe(packages), checkNode } : probe(packages),
      appId: 'a1',
      serviceId: 's1',
      nodeId: 'n1',
      role: 'node',
      nodeDir,
      address: '127.0.0.1',
      ports: { from: port, to: port },
      supervisor: new ProcessSupervisor({ logDir: join(nodeDir, 'logs') }),
      heartbeatMs: 100,
      ...(user && root ? { workloadUser: user } : {}),
    });
    agents.push(agent);
    buses.set(agent, bus);
    await agent.start();
    return agent;
  };

  beforeAll(async () => {
    nats = await TestNats.start();
    port = await freePort();
    manager = await nats.bus({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    manager.connection.subscribe(`${subjects.fromNode('a1', 's1', 'n1')}.heartbeat`, {
      callback: (err, m) => {
        if (!err) beats.push(HeartbeatSchema.parse(m.json()));
      },
    });
    await manager.flush();
  });
  afterAll(async () => {
    for (const a of agents) await a.stop().catch(() => undefined);
    await nats?.cleanup();
    rmSync(nodeDir, { recursive: true, force: true });
  });

  it('starts nothing before its first configuration, then configures, starts, and is ready once the probe answers', async () => {
    const agent = await startAgent();
    const first = await eventually(lastBeat, (b) => b !== undefined);
    expect(first?.boot).toMatch(/\w{8}/);
    expect(seen).toEqual([]);
    expect((await lastBeat())?.ready).toBe(false);

    const pushed = manager.request(at, configureAgent, config({ delay: 800 }), { timeoutMs: 10_000 });
    expect(await pushed).toEqual({ applied: true });
    expect(seen).toEqual(['configure {"delay":800}', 'start {"delay":800}']);
    // the workload does not listen yet: not ready
    expect((await lastBeat())?.ready).toBe(false);
    const ready = await eventually(lastBeat, (b) => b?.ready === true, 5_000);
    expect(ready?.boot).toBe(first?.boot);

    // the agent made its work directory (its cloud made none, as on an IaaS instance), the workload user's
    const work = statSync(join(nodeDir, 'work'));
    expect(work.mode & 0o777).toBe(0o700);
    if (root) expect(work.uid).toBe(workloadUser()?.uid);
    // the data directory is the workload user's
    const data = statSync(join(nodeDir, 'work', DATA_DIR));
    expect(data.isDirectory()).toBe(true);
    if (root) expect(data.uid).toBe(workloadUser()?.uid);

    // one-off commands run as the workload user; a signal reaches the workload
    const who = (await manager.request(at, callMethod, { method: 'whoami', args: {} })).result as {
      uid: string;
      code: number;
    };
    expect(who.code).toBe(0);
    expect(who.uid).toBe(String(root ? workloadUser()?.uid : process.getuid?.()));
    await manager.request(at, callMethod, { method: 'reload', args: {} });
    await eventually(
      async () => (await manager.request(at, agentLogs, { workload: 'listener' })).text,
      (t) => t.includes('reloaded'),
    );

    // a second push: onConfigure again, no second start
    await manager.request(at, configureAgent, config({ delay: 800, generation: 2 }), { timeoutMs: 10_000 });
    expect(seen.slice(2)).toEqual(['configure {"delay":800,"generation":2}']);
    await retire(agent);
    expect(seen.at(-1)).toBe('stop');
  });

  it('after a restart, starts from the configuration it kept, under a new boot id, before any push', async () => {
    const before = (await lastBeat())?.boot;
    seen.length = 0;
    beats.length = 0;
    const agent = await startAgent();
    expect(seen).toEqual(['configure {"delay":800,"generation":2}', 'start {"delay":800,"generation":2}']);
    const b = await eventually(lastBeat, (x) => x !== undefined);
    expect(b?.boot).not.toBe(before);
    await retire(agent);
  });

  it('says which software is missing: every heartbeat carries it, a configuration is refused', async () => {
    seen.length = 0;
    beats.length = 0;
    const agent = await startAgent(['cps-no-such-package']);
    // two beats: the previous test's agent (the same node) may have one still on its way
    const b = await eventually(lastBeat, (x) => x !== undefined && beats.length >= 2);
    expect(b?.fatal).toMatch(/software missing on this node: cps-no-such-package/);
    expect(b?.ready).toBe(false);
    await expect(manager.request(at, configureAgent, config({}))).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'unavailable'),
    );
    expect(seen).toEqual([]);
    await retire(agent);
  });

  it('fails at once on a node its type says it cannot run on, with the type’s reason', async () => {
    seen.length = 0;
    beats.length = 0;
    const agent = await startAgent([], (node) =>
      node.address.startsWith('127.') ? 'needs an address of its own' : undefined,
    );
    const b = await eventually(lastBeat, (x) => x !== undefined && beats.length >= 2);
    expect(b?.fatal).toBe('this node cannot run probe: needs an address of its own');
    await expect(manager.request(at, configureAgent, config({}))).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'unavailable'),
    );
    expect(seen).toEqual([]);
    await retire(agent);
  });

  it('fails at once when told to mount volumes where it cannot (a loopback address), saying why', async () => {
    seen.length = 0;
    beats.length = 0;
    const agent = await startAgent();
    // it starts from the configuration it kept; the one with volumes reaches no hook
    const before = [...seen];
    const told = { ...config({}), volumes: [{ link: 'files', volume: 'shared', mount: 'shared' }] };
    await expect(manager.request(at, configureAgent, told)).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'unavailable'),
    );
    const b = await eventually(lastBeat, (x) => x?.fatal !== undefined);
    expect(b?.fatal).toMatch(/^this node cannot mount volumes: .*host mode/);
    expect(b?.ready).toBe(false);
    expect(seen).toEqual(before);
    await retire(agent);
  });
});
