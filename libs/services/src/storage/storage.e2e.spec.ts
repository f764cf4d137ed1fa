import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud } from '@cps/clouds';
import { getLogs, removeNodes } from '@cps/bus';
import { hasErrorCode } from '@cps/core';
import { eventually, ServiceHarness } from '@cps/testing';

const run = promisify(execFile);
const hostMode = LocalCloud.hostModeUnavailable() === undefined;

interface VolumeView {
  name: string;
  replicas: number;
  quotaBytes?: number;
  files: number;
  usedBytes: number;
  health: string;
  mounts: number;
}

/**
 * The storage service for real: Debian's MooseFS master and chunk servers on three nodes, each a
 * network namespace of its own (MooseFS refuses loopback addresses, so host mode only).
 */
describe.skipIf(!hostMode)('storage: MooseFS volumes on three nodes', () => {
  let h: ServiceHarness;
  const volumes = async () => ((await h.call('list_volumes')) as { volumes: VolumeView[] }).volumes;
  /** Runs `script` in the mount, network and PID namespaces of node `nodeId`, as root (what it leaves running ends with the node). */
  const onNode = async (nodeId: string, script: string): Promise<string> => {
    const node = await h.agentNode(nodeId);
    return (
      await run('nsenter', ['-t', node.instanceId, '-m', '-n', '-p', '/bin/sh', '-c', script], {
        timeout: 60_000,
      })
    ).stdout;
  };
  const nodeFile = (nodeId: string, name: string): string =>
    readFileSync(join(h.host.dir, 'cloud', 'nodes', nodeId, 'work', name), 'utf8');
  const refusal = async (method: string, args: unknown) =>
    h.call(method, args).then(
      () => undefined,
      (e: unknown) => e as { code: string; issues?: { path: string; code: string }[] },
    );

  beforeAll(async () => {
    h = await ServiceHarness.start({ type: 'storage', hostMode: true });
    await h.startup();
  }, 180_000);
  afterAll(async () => h?.cleanup());

  it('starts a master and two chunk servers; a replicated volume is made, healthy and empty', async () => {
    const nodes = await h.nodes();
    expect(nodes.map((n) => n.role).sort()).toEqual(['chunk', 'chunk', 'master']);
    expect(nodes.every((n) => n.state === 'running' && n.address?.startsWith('198.18.'))).toBe(true);
    expect(await h.call('create_volume', { name: 'files', replicas: 2, quotaBytes: 1 << 30 })).toEqual({
      name: 'files',
      replicas: 2,
      quotaBytes: 1 << 30,
    });
    // a node is ready once its chunk server listens; it serves once the master has heard from it
    const health = await eventually(
      async () => (await h.call('get_storage_health')) as { health: string; nodes: { serving: boolean }[] },
      (x) => x.nodes.length === 3 && x.nodes.every((n) => n.serving),
      30_000,
    );
    expect(health.health).toBe('healthy');
    expect(await volumes()).toEqual([
      expect.objectContaining({
        name: 'files',
        replicas: 2,
        quotaBytes: 1 << 30,
        files: 0,
        health: 'healthy',
      }),
    ]);
  });

  it('refuses bad volume input with the field and changes nothing', async () => {
    const bad = await refusal('create_volume', { name: '../etc', replicas: 2 });
    expect(bad?.code).toBe('validation');
    expect(bad?.issues?.[0]?.path).toBe('$.name');
    const many = await refusal('create_volume', { name: 'big', replicas: 4 });
    expect(many?.code).toBe('validation');
    expect(many?.issues?.[0]).toMatchObject({ path: '$.replicas', code: 'too_many_replicas' });
    expect((await refusal('create_volume', { name: 'files', replicas: 1 }))?.code).toBe('conflict');
    expect((await refusal('delete_volume', { name: 'nothing' }))?.code).toBe('not_found');
    expect((await refusal('set_replication', { name: 'files', replicas: 9 }))?.code).toBe('validation');
    expect((await volumes()).map((v) => v.name)).toEqual(['files']);
  });

  it('holds a file written on one node for another node that mounts the volume, replicated twice', async () => {
    const nodes = await h.nodes();
    const master = nodes.find((n) => n.role === 'master')!;
    const chunk = nodes.find((n) => n.role === 'chunk')!;
    const password = /password=([^\s,]+)/.exec(nodeFile(master.nodeId, 'mfsexports.cfg'))![1]!;
    const port = Number(/MATOCL_LISTEN_PORT = (\d+)/.exec(nodeFile(master.nodeId, 'mfsmaster.cfg'))![1]);
    const mount = (nodeId: string, extra: string) =>
      onNode(
        nodeId,
        `mkdir -p /tmp/v && mfsmount /tmp/v -H ${master.address} -P ${port} -S /files ${extra} >/dev/null 2>&1`,
      );
    await mount(master.nodeId, '');
    await onNode(
      master.nodeId,
      'head -c 3000000 /dev/urandom > /tmp/v/blob && sha256sum /tmp/v/blob > /tmp/v/blob.sum',
    );
    // another node, with the clients' password: the same bytes
    await mount(chunk.nodeId, `-o mfspassword=${password}`);
    expect(await onNode(chunk.nodeId, 'cd /tmp/v && sha256sum -c blob.sum')).toContain('blob: OK');
    // without the password, no mount
    const other = nodes.find((n) => n.role === 'chunk' && n.nodeId !== chunk.nodeId)!;
    await expect(mount(other.nodeId, '')).rejects.toThrow();
    const listed = await eventually(
      volumes,
      (v) => v[0]?.files === 2 && v[0].mounts === 2 && v[0].health === 'healthy',
      30_000,
    );
    expect(listed[0]?.usedBytes).toBeGreaterThan(3_000_000);
    const info = await onNode(master.nodeId, 'mfsfileinfo /tmp/v/blob');
    expect(info.match(/copy \d+:/g)).toHaveLength(2);

    // mounted: not deleted, unless forced
    const mounted = await refusal('delete_volume', { name: 'files' });
    expect(mounted?.code).toBe('conflict');
    expect(mounted?.issues?.[0]).toMatchObject({ path: '$.name', code: 'volume_mounted' });
    expect(await onNode(chunk.nodeId, 'cat /tmp/v/blob.sum')).toContain('blob');

    // three copies once asked: the goal is set at once (MooseFS makes the copies in the background)
    expect(await h.call('set_replication', { name: 'files', replicas: 3 })).toEqual({
      name: 'files',
      replicas: 3,
    });
    expect((await onNode(master.nodeId, 'mfsgetgoal /tmp/v/blob')).trim()).toMatch(/: 3$/);
    expect((await volumes())[0]?.replicas).toBe(3);
    for (const n of [master.nodeId, chunk.nodeId]) await onNode(n, 'umount /tmp/v');
    await eventually(volumes, (v) => v[0]?.mounts === 0, 30_000);
    expect(await h.call('delete_volume', { name: 'files' })).toEqual({ deleted: 'files' });
    expect(await volumes()).toEqual([]);
    await expect(h.call('delete_volume', { name: 'files' })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'not_found'),
    );
  });

  it('drains a chunk server before removing it: its chunks copied to the others first, no file lost', async () => {
    const nodes = await h.nodes();
    const master = nodes.find((n) => n.role === 'master')!;
    const victim = nodes.find((n) => n.role === 'chunk')!;
    // a volume of three replicas needs the three nodes: no removal
    await h.call('create_volume', { name: 'wide', replicas: 3 });
    const refused = await h.request(removeNodes, { nodeIds: [victim.nodeId] }).then(
      () => undefined,
      (e: unknown) => e as { code: string; issues?: { path: string; code: string }[] },
    );
    expect(refused?.code).toBe('validation');
    expect(refused?.issues?.[0]).toMatchObject({ path: '$.nodeIds', code: 'too_few_nodes' });
    expect((await h.nodes()).find((n) => n.nodeId === victim.nodeId)?.state).toBe('running');
    await h.call('delete_volume', { name: 'wide' });

    // one copy of each chunk: without a drain, the victim's chunks would be lost with it
    await h.call('create_volume', { name: 'keep', replicas: 1 });
    const port = Number(/MATOCL_LISTEN_PORT = (\d+)/.exec(nodeFile(master.nodeId, 'mfsmaster.cfg'))![1]);
    await onNode(
      master.nodeId,
      `mkdir -p /tmp/k && mfsmount /tmp/k -H ${master.address} -P ${port} -S /keep >/dev/null 2>&1`,
    );
    await onNode(
      master.nodeId,
      'for i in $(seq 1 20); do head -c 300000 /dev/urandom > /tmp/k/f$i; done; cd /tmp/k && sha256sum f* > /tmp/sums',
    );
    const where = async () => onNode(master.nodeId, 'mfsfileinfo /tmp/k/f*');
    expect(await where()).toContain(`${victim.address}:`);
    const t0 = Date.now();
    await h.request(removeNodes, { nodeIds: [victim.nodeId] });
    await eventually(
      () => h.nodes(),
      (ns) => ns.find((n) => n.nodeId === victim.nodeId)?.state === 'removed',
      280_000,
    );
    console.log(`chunk server drained and removed in ${Date.now() - t0} ms`);
    expect((await h.request(getLogs, {})).text).toMatch(new RegExp(`drained.*${victim.nodeId}`));
    // every file whole, each chunk on a server that stays
    expect(await onNode(master.nodeId, 'cd /tmp/k && sha256sum -c /tmp/sums')).not.toMatch(/FAILED/);
    const after = await where();
    expect(after).not.toContain(`${victim.address}:`);
    expect(after.match(/copy \d+: .*VALID/g)).toHaveLength(20);
    await onNode(master.nodeId, 'umount /tmp/k');
    await eventually(volumes, (v) => v.find((x) => x.name === 'keep')?.mounts === 0, 30_000);
    await h.call('delete_volume', { name: 'keep' });
  }, 360_000);

  it('loses the master’s whole node (kill -9 of every process): a new master starts from a metalogger’s copy, every file still there', async () => {
    const before = await h.nodes();
    const master = before.find((n) => n.role === 'master' && n.state === 'running')!;
    const chunk = before.find((n) => n.role === 'chunk' && n.state === 'running')!;
    await h.call('create_volume', { name: 'meta', replicas: 2 });
    const password = /password=([^\s,]+)/.exec(nodeFile(master.nodeId, 'mfsexports.cfg'))![1]!;
    const port = Number(/MATOCL_LISTEN_PORT = (\d+)/.exec(nodeFile(master.nodeId, 'mfsmaster.cfg'))![1]);
    const mount = (address: string) =>
      onNode(
        chunk.nodeId,
        `mkdir -p /tmp/m && mfsmount /tmp/m -H ${address} -P ${port} -S /meta -o mfspassword=${password} >/dev/null 2>&1`,
      );
    await mount(master.address!);
    await onNode(
      chunk.nodeId,
      'mkdir -p /tmp/m/dir && for i in 1 2 3 4 5; do head -c 200000 /dev/urandom > /tmp/m/dir/f$i; done; cd /tmp/m/dir && sha256sum f* > /tmp/meta.sums && cd / && umount /tmp/m',
    );
    // the metalogger on the chunk node has the change log up to the last file
    await eventually(
      () =>
        onNode(
          chunk.nodeId,
          `tail -n 1 ${join(h.host.dir, 'cloud', 'nodes', chunk.nodeId, 'work', 'data', 'metalogger', 'changelog_ml.0.mfs')}`,
        ),
      (t) => t.trim().length > 0,
      10_000,
    );
    const ns = (
      await run('ip', ['netns', 'identify', (await h.agentNode(master.nodeId)).instanceId])
    ).stdout.trim();
    const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split('\n').filter(Boolean).map(Number);
    expect(pids.length).toBeGreaterThan(2);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    const fresh = await eventually(
      () => h.nodes(),
      (list) => list.some((n) => n.role === 'master' && n.state === 'running' && n.nodeId !== master.nodeId),
      180_000,
    );
    const next = fresh.find((n) => n.role === 'master' && n.state === 'running')!;
    console.log(`a new master running ${Date.now() - t0} ms after its node was killed`);
    expect((await h.request(getLogs, {})).text).toMatch(
      new RegExp(`master restored from a metalogger.*${next.nodeId}`),
    );
    // the volumes and their files, through the new master
    expect((await volumes()).map((v) => v.name)).toEqual(['meta']);
    await mount(next.address!);
    expect(await onNode(chunk.nodeId, 'cd /tmp/m/dir && sha256sum -c /tmp/meta.sums')).not.toMatch(/FAILED/);
    expect((await onNode(chunk.nodeId, 'ls /tmp/m/dir')).split('\n').filter(Boolean)).toHaveLength(5);
    await onNode(chunk.nodeId, 'umount /tmp/m');
  }, 300_000);
});
