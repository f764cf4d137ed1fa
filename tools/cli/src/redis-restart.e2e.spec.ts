import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPlatform, eventually } from '@cps/testing';

interface Replication {
  primary?: string;
  nodes: { nodeId: string; role?: string; offset?: number; link?: string; error?: string }[];
}
/**
 * A redis service as a user runs it with the `cps` command: deployed from a manifest, written to and
 * read from through its methods, then the whole platform down and up again. Its nodes are stopped,
 * not removed, and start again in place: the data, the primary and the replication are kept.
 */
describe('redis through cps down and cps up: the data, the primary and the replication are kept', () => {
  const platform = cliPlatform('cps-redis-');
  const { root, cps } = platform;
  const [APP, SVC] = ['cache', 'cache'];
  /** `cps service call` of a redis method, its JSON answer. */
  const call = async <T>(method: string, args: Record<string, string> = {}): Promise<T> => {
    const flags = Object.entries(args).flatMap(([k, v]) => ['--arg', `${k}=${v}`]);
    return JSON.parse((await cps('service', 'call', SVC, method, '--app', APP, ...flags)).stdout) as T;
  };
  const get = async (key: string, nodeId?: string) =>
    (await call<{ value: string | null }>('get', { key, ...(nodeId ? { nodeId } : {}) })).value;
  const set = async (key: string, value: string) =>
    (await call<{ replicas: number }>('set', { key, value })).replicas;
  const state = async () =>
    (JSON.parse((await cps('--json', 'service', 'info', SVC, '--app', APP)).stdout) as { state: string })
      .state;
  const listed = async () =>
    (
      JSON.parse((await cps('--json', 'service', 'nodes', SVC, '--app', APP)).stdout) as {
        nodes: { nodeId: string; address: string }[];
      }
    ).nodes;
  const nodeIds = async () => (await listed()).map((n) => n.nodeId).sort();
  /** The node's address as the platform lists it (its own in host mode, 127.0.0.1 in process mode). */
  const addressOf = async (nodeId: string) => (await listed()).find((n) => n.nodeId === nodeId)?.address;
  /** One primary, the recorded one, and one replica of it with its link up. */
  const replicating = (ms = 60_000): Promise<Replication> =>
    eventually(
      () => call<Replication>('get_replication').catch((): Replication => ({ nodes: [] })),
      (r) =>
        r.nodes.length === 2 &&
        r.nodes.every((n) =>
          n.nodeId === r.primary ? n.role === 'master' : n.role === 'replica' && n.link === 'up',
        ),
      ms,
    );
  /** Where the service's `redis` endpoint points now, as `cps service info` shows it. */
  const endpoint = async () =>
    (
      JSON.parse((await cps('--json', 'service', 'info', SVC, '--app', APP)).stdout) as {
        endpoints: Record<string, { address: string; port: number; nodeId?: string }>;
      }
    ).endpoints['redis'];
  const seconds = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

  let primary = '';
  let replica = '';
  let nodes: string[] = [];

  beforeAll(() => platform.init());
  afterAll(() => platform.cleanup());

  it('deploys a redis service: a primary, and a replica that copies what the primary takes', async () => {
    const t0 = Date.now();
    expect((await cps('up')).stdout).toMatch(/healthy/);
    const manifest = join(root, 'cache.json');
    writeFileSync(
      manifest,
      JSON.stringify({ Application: APP, Services: [{ ServiceName: SVC, Type: 'redis', Start: 1 }] }),
    );
    expect((await cps('deploy', manifest)).stdout).toMatch(/deployed: /);
    await eventually(
      () => state().catch(String),
      (s) => s === 'RUNNING',
      60_000,
    );
    const r = await replicating();
    primary = r.primary!;
    replica = r.nodes.find((n) => n.nodeId !== primary)!.nodeId;
    nodes = await nodeIds();
    expect(nodes).toEqual([primary, replica].sort());
    expect(await set('k1', 'v1')).toBe(1);
    expect(await get('k1', replica)).toBe('v1');
    expect(await endpoint()).toMatchObject({ nodeId: primary, address: await addressOf(primary) });
    console.log(`up, deploy and the first write replicated: ${seconds(t0)}`);
  });

  it('cps down stops every local node and keeps it', async () => {
    const t0 = Date.now();
    expect((await cps('down')).stdout).toMatch(/stopped [1-9]\d* node\(s\)/);
    const local = await platform.localNodes();
    // the service's manager and its two redis nodes, stopped, their directories kept
    expect(local.map((n) => n.nodeId)).toEqual(expect.arrayContaining(nodes));
    expect(local.map((n) => `${n.nodeId}:${n.state}`)).toEqual(local.map((n) => `${n.nodeId}:stopped`));
    console.log(`down: ${seconds(t0)}`);
  });

  it('cps up: the data is there, on the same primary, and the replica replicates again', async () => {
    const t0 = Date.now();
    expect((await cps('up')).stdout).toMatch(/healthy/);
    await eventually(
      () => state().catch(String),
      (s) => s === 'RUNNING',
      60_000,
    );
    // the first answer of the primary, whatever it is: a node that lost its data answers null
    const k1 = await eventually(
      () => get('k1').catch((e: Error & { stderr?: string }) => ({ error: e.stderr ?? e.message })),
      (v) => typeof v !== 'object' || v === null,
      60_000,
    );
    expect(k1, 'the key written before cps down').toBe('v1');
    const r = await replicating();
    expect(r.primary).toBe(primary);
    expect(await nodeIds()).toEqual(nodes);
    // a write after the restart reaches the replica: replication is live, not a leftover copy
    expect(await set('k2', 'after up')).toBe(1);
    expect(await get('k2', replica)).toBe('after up');
    expect(await get('k1', replica)).toBe('v1');
    expect((await replicating(5_000)).nodes).toHaveLength(2);
    expect(await endpoint()).toMatchObject({ nodeId: primary, address: await addressOf(primary) });
    console.log(`up again, data and replication back: ${seconds(t0)}`);
  });
});
