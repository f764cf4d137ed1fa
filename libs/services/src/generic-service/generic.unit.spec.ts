import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentContext, ManagerContext, NodeView, WorkloadRequest } from '../contract/context.js';
import { genericService } from './generic.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** An agent context on a node reached at `address`, recording the workloads started. */
const agentContext = (address: string): { ctx: AgentContext; started: WorkloadRequest[] } => {
  const stateDir = mkdtempSync(join(tmpdir(), 'cps-generic-unit-'));
  dirs.push(stateDir);
  const started: WorkloadRequest[] = [];
  const ctx: AgentContext = {
    appId: 'a1',
    serviceId: 'g1',
    nodeId: 'n1',
    role: 'master',
    address,
    workDir: join(stateDir, 'work'),
    stateDir,
    ports: { from: 20_000, to: 20_019 },
    files: {
      write: async () => undefined,
      unpack: async () => ({ entries: ['init.sh'] }),
      remove: async () => undefined,
    },
    archivePath: () => join(stateDir, 'archive'),
    startWorkload: async (w) => {
      started.push(w);
    },
    workload: () => undefined,
    stopWorkload: async () => undefined,
    log: silent,
  };
  return { ctx, started };
};

const { methods } = genericService.agent;

describe('the generic service', () => {
  it("gives the scripts the node's own address as MY_IP, and the master's as MASTER_IP", async () => {
    const { ctx, started } = agentContext('192.0.2.9');
    await methods.init_agent.handle(ctx, {
      agents: [
        { nodeId: 'n1', role: 'master', address: '192.0.2.9' },
        { nodeId: 'n2', role: 'node', address: '192.0.2.10' },
      ],
      settings: {},
    });
    await methods.update_code.handle(ctx, { version: 'v1' });
    expect(started.map((w) => [w.name, w.env?.['MY_IP'], w.env?.['MASTER_IP']])).toEqual([
      ['init', '192.0.2.9', '192.0.2.9'],
    ]);
  });

  it("tells every node its peers at the addresses the manager's nodes have", async () => {
    const nodes: NodeView[] = [
      { nodeId: 'n1', role: 'master', cloud: 'ec2', state: 'running', address: '192.0.2.9' },
      {
        nodeId: 'n2',
        role: 'node',
        cloud: 'ec2',
        state: 'running',
        address: '192.0.2.10',
        ports: { from: 20_000, to: 20_019 },
      },
    ];
    const calls: { nodeId: string; args: unknown }[] = [];
    const ctx: ManagerContext = {
      appId: 'a1',
      serviceId: 'g1',
      type: 'generic',
      config: {},
      archive: () => undefined,
      sendArchive: () => Promise.reject(new Error('no archive')),
      nodes: () => nodes,
      callAgent: async (nodeId: string, _method: string, args: unknown): Promise<unknown> => {
        calls.push({ nodeId, args });
        return { codeVersion: '' };
      },
      fanOut: (ids, method, args) =>
        Promise.all(
          ids.map(async (nodeId) => ({
            nodeId,
            ok: true as const,
            result: await ctx.callAgent(nodeId, method, args),
          })),
        ),
      log: silent,
    };
    await genericService.manager.onNodesChanged!(ctx);
    const agents = [
      { nodeId: 'n1', role: 'master', address: '192.0.2.9' },
      { nodeId: 'n2', role: 'node', address: '192.0.2.10' },
    ];
    expect(calls).toEqual([
      { nodeId: 'n1', args: { agents, settings: {} } },
      { nodeId: 'n2', args: { agents, settings: {} } },
    ]);
  });

  it('delivers the code to the nodes that answered when one does not', async () => {
    const nodes: NodeView[] = ['n1', 'n2', 'n3'].map((nodeId) => ({
      nodeId,
      role: nodeId === 'n1' ? 'master' : 'node',
      cloud: 'local',
      state: 'running',
      address: '127.0.0.1',
    }));
    const sent: string[] = [];
    const updated: string[] = [];
    const warned: unknown[] = [];
    const ctx: ManagerContext = {
      appId: 'a1',
      serviceId: 'g1',
      type: 'generic',
      config: {},
      archive: () => ({ version: 'v2', size: 1, digest: 'd' }),
      sendArchive: async (nodeId) => {
        sent.push(nodeId);
        return { version: 'v2', size: 1, digest: 'd' };
      },
      nodes: () => nodes,
      callAgent: async (nodeId, method) => {
        if (method === 'update_code') updated.push(nodeId);
        return { codeVersion: 'v1', updated: true };
      },
      fanOut: async (ids) =>
        ids.map((nodeId) =>
          nodeId === 'n2'
            ? { nodeId, ok: false as const, error: { code: 'timeout', message: 'no reply in time' } }
            : { nodeId, ok: true as const, result: { codeVersion: 'v1' } },
        ),
      log: { ...silent, warn: (_m, fields) => void warned.push(fields) },
    };
    await genericService.manager.onNodesChanged!(ctx);
    expect(sent).toEqual(['n1', 'n3']);
    expect(updated).toEqual(['n1', 'n3']);
    expect(warned).toEqual([{ nodeId: 'n2', error: { code: 'timeout', message: 'no reply in time' } }]);
  });
});
