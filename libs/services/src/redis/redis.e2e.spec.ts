import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, ServiceHarness } from '@cps/testing';
import { getLogs } from '@cps/bus';

interface Replication {
  primary?: string;
  nodes: { nodeId: string; role?: string; offset?: number; link?: string; error?: string }[];
}

/**
 * The guide's example, for real: Debian's redis-server on every node, a primary and its replicas,
 * through every kind of restart the platform knows.
 */
describe('redis: a primary and replicas whose data and roles survive every restart', () => {
  let h: ServiceHarness;
  const replication = async () => (await h.call('get_replication')) as Replication;
  const get = async (key: string, nodeId?: string) =>
    ((await h.call('get', { key, ...(nodeId ? { nodeId } : {}) })) as { value: string | null }).value;
  /** One primary (the recorded one), every other running node its replica with its link up. */
  const replicating = async (ms = 30_000): Promise<Replication> =>
    eventually(
      () => replication().catch((): Replication => ({ nodes: [] })),
      (r) =>
        r.nodes.length > 1 &&
        r.nodes.every((n) =>
          n.nodeId === r.primary ? n.role === 'master' : n.role === 'replica' && n.link === 'up',
        ),
      ms,
    );
  const primaryOf = async () => (await replicating()).primary!;
  const endpoint = async () => (await h.info()).endpoints?.['redis'];

  beforeAll(async () => {
    h = await ServiceHarness.start({ type: 'redis' });
    await h.startup();
  });
  afterAll(async () => h?.cleanup());

  it('starts one primary and one replica that copies what the primary takes', async () => {
    const r = await replicating();
    expect(r.nodes).toHaveLength(2);
    const primary = r.primary!;
    expect(await endpoint()).toMatchObject({ nodeId: primary, address: '127.0.0.1' });
    expect(
      ((await h.call('set', { key: 'k1', value: 'before restarts' })) as { replicas: number }).replicas,
    ).toBe(1);
    const replica = r.nodes.find((n) => n.nodeId !== primary)!.nodeId;
    expect(await get('k1', replica)).toBe('before restarts');
    // the server runs as the workload user, its files in the node's data directory
    const dataDir = join(h.host.dir, 'cloud', 'nodes', primary, 'work', 'data');
    expect(readdirSync(dataDir)).toContain('appendonlydir');
  });

  it('after cps down and cps up: the data is there and the replica replicates from the same primary again', async () => {
    const primary = await primaryOf();
    await h.down();
    expect((await h.host.cloud.list()).every((n) => n.state === 'stopped')).toBe(true);
    await h.up();
    await h.until('RUNNING');
    expect(await primaryOf()).toBe(primary);
    expect(await get('k1')).toBe('before restarts');
    // a write after the restart reaches the replica: replication is live, not a leftover copy
    expect(((await h.call('set', { key: 'k2', value: 'after up' })) as { replicas: number }).replicas).toBe(
      1,
    );
    const replica = (await replicating()).nodes.find((n) => n.nodeId !== primary)!.nodeId;
    expect(await get('k2', replica)).toBe('after up');
    expect(await get('k1', replica)).toBe('before restarts');
  });

  it('after kill -9 of the manager: the same primary, the nodes untouched, writes replicated', async () => {
    const before = (await h.nodes()).map((n) => n.nodeId).sort();
    const primary = await primaryOf();
    await h.kill(await h.managerNode());
    expect((await h.reconcile()).restarted).toContain('mgr-s1');
    await eventually(
      () => h.info().catch(() => undefined),
      (i) => i?.state === 'RUNNING',
      30_000,
    );
    expect(await primaryOf()).toBe(primary);
    expect((await h.nodes()).map((n) => n.nodeId).sort()).toEqual(before);
    await h.call('set', { key: 'k3', value: 'after the manager' });
    const replica = before.find((n) => n !== primary)!;
    await eventually(
      () => get('k3', replica),
      (v) => v === 'after the manager',
    );
  });

  it("after kill -9 of the primary's agent: the replica is promoted with every acknowledged write, a new replica follows it", async () => {
    const primary = await primaryOf();
    const replica = (await h.nodes()).find((n) => n.nodeId !== primary && n.state === 'running')!.nodeId;
    expect(
      ((await h.call('set', { key: 'k4', value: 'acknowledged' })) as { replicas: number }).replicas,
    ).toBe(1);

    await h.kill(await h.agentNode(primary));
    // the silent node fails, the replica takes over, the failed node is replaced by a new replica
    const after = await eventually(
      () => replication().catch((): Replication => ({ nodes: [] })),
      (r) =>
        r.primary === replica &&
        r.nodes.length === 2 &&
        r.nodes.every((n) =>
          n.nodeId === replica ? n.role === 'master' : n.role === 'replica' && n.link === 'up',
        ),
      60_000,
    ).catch(async (e: unknown) => {
      console.log(
        JSON.stringify({ nodes: await h.nodes(), replication: await replication().catch(String) }, null, 1),
      );
      console.log((await h.request(getLogs, {})).text.slice(-6000));
      throw e;
    });
    expect(after.nodes.map((n) => n.nodeId)).not.toContain(primary);
    expect(await endpoint()).toMatchObject({ nodeId: replica });
    for (const k of ['k1', 'k2', 'k3', 'k4']) expect(await get(k)).not.toBeNull();
    const newcomer = after.nodes.find((n) => n.nodeId !== replica)!.nodeId;
    expect(await get('k4', newcomer)).toBe('acknowledged');
  });
});
