import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type {
  AgentContext,
  ManagerContext,
  NodeConfig,
  NodeView,
  WorkloadRequest,
} from '../contract/context.js';
import { genericService } from './generic.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** An agent context on a node reached at `address`, recording the workloads started. */
const agentContext = (
  address: string,
  config: NodeConfig,
): { ctx: AgentContext; started: WorkloadRequest[]; written: Record<string, string> } => {
  const stateDir = mkdtempSync(join(tmpdir(), 'cps-generic-unit-'));
  dirs.push(stateDir);
  const started: WorkloadRequest[] = [];
  const written: Record<string, string> = {};
  const ctx: AgentContext = {
    appId: 'a1',
    serviceId: 'g1',
    nodeId: 'n1',
    role: 'master',
    address,
    workDir: join(stateDir, 'work'),
    stateDir,
    ports: { from: 20_000, to: 20_019 },
    dataDir: 'data',
    config,
    exec: () => Promise.reject(new Error('not here')),
    signal: async () => undefined,
    files: {
      write: async (name, data) => {
        written[name] = String(data);
      },
      unpack: async () => ({ entries: ['init.sh', 'notify.sh'] }),
      remove: async () => undefined,
      mkdir: async () => undefined,
    },
    archivePath: () => join(stateDir, 'archive'),
    spool: {
      path: (name) => join(stateDir, name),
      remove: () => undefined,
    },
    startWorkload: async (w) => {
      started.push(w);
    },
    workload: () => undefined,
    stopWorkload: async () => undefined,
    log: silent,
  };
  return { ctx, started, written };
};

/** A manager context over `nodes`; `over` replaces what a test watches. */
const managerContext = (nodes: readonly NodeView[], over: Partial<ManagerContext>): ManagerContext => ({
  appId: 'a1',
  serviceId: 'g1',
  type: 'generic',
  config: {},
  manifest: {},
  archive: () => undefined,
  sendArchive: () => Promise.reject(new Error('no archive')),
  nodes: () => nodes,
  callAgent: () => Promise.reject(new Error('not here')),
  fanOut: () => Promise.reject(new Error('not here')),
  state: () => undefined,
  record: async () => undefined,
  endpoints: () => ({}),
  setEndpoint: async () => undefined,
  links: () => ({}),
  secret: () => {
    throw new Error('not here');
  },
  issueCertificate: () => Promise.reject(new Error('not here')),
  objects: {
    list: () => Promise.reject(new Error('not here')),
    info: () => Promise.reject(new Error('not here')),
    fromNode: () => Promise.reject(new Error('not here')),
    toNode: () => Promise.reject(new Error('not here')),
    delete: () => Promise.reject(new Error('not here')),
  },
  log: silent,
  ...over,
});

const { methods } = genericService.agent;

describe('the generic service', () => {
  it("gives the scripts the node's own address, the master's, its peers and its links' endpoints", async () => {
    const config: NodeConfig = {
      settings: { env: { GREETING: 'hi' } },
      nodes: [
        { nodeId: 'n1', role: 'master', cloud: 'ec2', state: 'running', address: '192.0.2.9' },
        { nodeId: 'n2', role: 'node', cloud: 'ec2', state: 'running', address: '192.0.2.10' },
      ],
      links: {
        'cache-db': { serviceId: 's7', endpoints: { redis: { address: '192.0.2.20', port: 20000 } } },
      },
    };
    const { ctx, started, written } = agentContext('192.0.2.9', config);
    await genericService.agent.onConfigure!(ctx, config);
    expect(JSON.parse(written['agents.json']!)).toEqual([
      { nodeId: 'n1', role: 'master', address: '192.0.2.9' },
      { nodeId: 'n2', role: 'node', address: '192.0.2.10' },
    ]);
    await methods.update_code.handle(ctx, { version: 'v1' });
    expect(started.map((w) => w.name)).toEqual(['init']);
    expect(started[0]!.env).toMatchObject({
      MY_IP: '192.0.2.9',
      MASTER_IP: '192.0.2.9',
      GREETING: 'hi',
      LINK_CACHE_DB_REDIS: '192.0.2.20:20000',
    });
  });

  it('tells each node the scripts environment with the secrets opened', async () => {
    const ctx = managerContext([], { config: { env: { A: '1' }, secrets: { TOKEN: 's3cret' } } });
    const node: NodeView = { nodeId: 'n1', role: 'master', cloud: 'local', state: 'running' };
    expect(await genericService.manager.configureNode!(ctx, node)).toEqual({
      env: { A: '1', TOKEN: 's3cret' },
    });
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
    const ctx = managerContext(nodes, {
      archive: () => ({ version: 'v2', size: 1, digest: 'd' }),
      sendArchive: async (nodeId) => {
        sent.push(nodeId);
        return { version: 'v2', size: 1, digest: 'd' };
      },
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
    });
    await genericService.manager.onNodesChanged!(ctx);
    expect(sent).toEqual(['n1', 'n3']);
    expect(updated).toEqual(['n1', 'n3']);
    expect(warned).toEqual([{ nodeId: 'n2', error: { code: 'timeout', message: 'no reply in time' } }]);
  });
});
