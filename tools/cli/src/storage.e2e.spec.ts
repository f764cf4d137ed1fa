import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud } from '@cps/clouds';
import { cliPlatform, eventually } from '@cps/testing';

const exec = promisify(execFile);
const example = join(process.cwd(), 'examples', 'storage', 'manifest.json');

interface Listed {
  nodeId: string;
  role: string;
  state: string;
  address: string;
}
interface Volume {
  name: string;
  replicas: number;
  files: number;
  mounts: number;
  health: string;
}

/**
 * The storage service as a user meets it, host mode (as root): `cps deploy examples/storage` makes a
 * MooseFS storage service and a generic service whose two nodes mount its volume; what one node
 * writes there the other reads, a tenant's code on those nodes cannot reach past its volume, a
 * mounted volume is not deleted, a storage node killed with its whole namespace is replaced with
 * every file intact, and bad volume input is refused at its path with nothing created.
 */
describe.skipIf(LocalCloud.hostModeUnavailable() !== undefined)('storage through the cps command', () => {
  const platform = cliPlatform('cps-storage-');
  const { root, cps, fails, asTenant } = platform;
  const app = ['--app', 'storage'];

  const nodesOf = async (svc: string): Promise<Listed[]> =>
    (JSON.parse((await cps('--json', 'service', 'nodes', svc, ...app)).stdout) as { nodes: Listed[] }).nodes;
  const volumes = async (): Promise<Volume[]> =>
    (JSON.parse((await cps('--json', 'storage', 'volumes', 'files', ...app)).stdout) as { volumes: Volume[] })
      .volumes;
  const runOutput = async (nodeId: string): Promise<string> =>
    (await cps('service', 'log', 'jobs', ...app, '--node', nodeId, '--workload', 'run')).stdout;
  beforeAll(async () => {
    await platform.init();
    await cps('up');
  }, 120_000);
  afterAll(() => platform.cleanup());

  it('deploys the example: a volume both nodes of the generic service mount, what one writes the other reads', async () => {
    expect((await cps('deploy', example)).stdout).toMatch(/deployed: /);
    const listed = await eventually(
      () => volumes().catch((): Volume[] => []),
      (v) => v[0]?.mounts === 2,
      60_000,
    );
    expect(listed).toEqual([expect.objectContaining({ name: 'shared', replicas: 2, health: 'healthy' })]);
    const jobs = await nodesOf('jobs');
    expect(jobs.map((n) => n.role).sort()).toEqual(['master', 'node']);
    await cps('service', 'call', 'jobs', 'run', ...app);
    // each node wrote its own file, then listed the volume: both files, on both nodes
    for (const n of jobs) {
      const out = await eventually(
        () => runOutput(n.nodeId),
        (o) => jobs.every((m) => o.includes(`shared/${m.nodeId}.txt: hello from ${m.nodeId}`)),
        30_000,
      );
      expect(out).toBeTruthy();
    }
  });

  it('keeps a tenant inside its volume: no mount of the file system, no password, no rename of the mount point', async () => {
    const [node] = await nodesOf('jobs');
    const master = (await nodesOf('files')).find((n) => n.role === 'master')!;
    expect((await asTenant(node!.nodeId, 'echo mine > shared/tenant.txt && cat shared/tenant.txt')).out).toBe(
      'mine\n',
    );
    // the whole file system, from the tenant's own mfsmount: refused (no root, no password)
    const root = await asTenant(
      node!.nodeId,
      `mkdir -p /tmp/all && mfsmount /tmp/all -H ${master.address} -P 20002 -S / && ls /tmp/all`,
    );
    expect(root.ok).toBe(false);
    // the link's password is in no file or variable the tenant reads
    expect((await asTenant(node!.nodeId, 'env; cat agents.json')).out).not.toMatch(/PASSWORD|password/);
    expect(
      (
        await asTenant(
          node!.nodeId,
          `cat ${join(platform.home, 'cloud', 'nodes', node!.nodeId, 'state', 'node-config.json')}`,
        )
      ).ok,
    ).toBe(false);
    // the mount point stays where the agent put it
    expect((await asTenant(node!.nodeId, 'mv shared elsewhere')).ok).toBe(false);
    expect((await asTenant(node!.nodeId, 'cat shared/tenant.txt')).out).toBe('mine\n');
  });

  it('refuses to delete a mounted volume, and keeps every file when a storage node is killed with its namespace', async () => {
    const mounted = await fails('storage', 'delete-volume', 'files', 'shared', ...app);
    expect(mounted.stderr).toMatch(/^error \[conflict\]: volume shared is mounted/);
    expect(mounted.stderr).toMatch(/\$\.name: .*\(volume_mounted\)/);
    const [writer] = await nodesOf('jobs');
    const written = await asTenant(
      writer!.nodeId,
      'head -c 5000000 /dev/urandom > shared/big && sha256sum shared/big shared/*.txt > shared/sums && cat shared/sums',
    );
    expect(written.ok).toBe(true);
    const victim = (await nodesOf('files')).find((n) => n.role === 'chunk')!;
    const ns = (
      await exec(
        'ip',
        [
          'netns',
          'identify',
          String((await platform.localNodes()).find((n) => n.nodeId === victim.nodeId)!.instanceId),
        ],
        { encoding: 'utf8' },
      )
    ).stdout.trim();
    const pids = (await exec('ip', ['netns', 'pids', ns], { encoding: 'utf8' })).stdout
      .split('\n')
      .filter(Boolean)
      .map(Number);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await exec('ip', ['netns', 'delete', ns]);
    // reads and writes go on meanwhile
    expect(
      (await asTenant(writer!.nodeId, 'sha256sum -c shared/sums && echo more > shared/during.txt')).ok,
    ).toBe(true);
    await eventually(
      () => nodesOf('files').catch((): Listed[] => []),
      (n) =>
        n.filter((x) => x.state === 'running').length === 3 &&
        !n.some((x) => x.nodeId === victim.nodeId && x.state === 'running'),
      120_000,
    );
    await eventually(
      () => volumes().catch((): Volume[] => []),
      (v) => v[0]?.health === 'healthy',
      120_000,
    );
    const [, reader] = await nodesOf('jobs');
    const check = await asTenant(reader!.nodeId, 'sha256sum -c shared/sums && cat shared/during.txt');
    expect(check.out).toMatch(/shared\/big: OK/);
    expect(check.out).toMatch(/more/);
  });

  it('refuses bad volume input at its path, creating nothing', async () => {
    const bad = (volumes: unknown[], name = 'bad') => {
      const file = join(root, `${name}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          Application: name,
          Services: [
            { ServiceName: 'files', Type: 'storage', Volumes: [{ Name: 'data' }] },
            { ServiceName: 'other', Type: 'generic' },
            { ServiceName: 'jobs', Type: 'generic', Volumes: volumes },
          ],
        }),
      );
      return fails('deploy', file);
    };
    // each: the volume entry, its offending field, the code
    const cases: [unknown, string, string][] = [
      [{ Storage: 'files', Volume: 'data', Mount: '../up' }, 'Mount', 'invalid_format'],
      [{ Storage: 'files', Volume: 'data', Mount: '/abs' }, 'Mount', 'invalid_format'],
      [{ Storage: 'files', Volume: 'nope', Mount: 'd' }, 'Volume', 'unknown_volume'],
      [{ Storage: 'other', Volume: 'data', Mount: 'd' }, 'Storage', 'not_storage'],
      [{ Storage: 'absent', Volume: 'data', Mount: 'd' }, 'Storage', 'unknown_service'],
      [{ Storage: 'files', Volume: 'Bad Name', Mount: 'd' }, 'Volume', 'invalid_format'],
    ];
    for (const [v, field, code] of cases) {
      const path = `$.Services[2].Volumes[0].${field}`;
      const r = await bad([v]);
      expect(r.stderr, JSON.stringify(v)).toMatch(/^error \[validation\]/);
      expect(r.stderr, JSON.stringify(v)).toContain(`  ${path}: `);
      expect(r.stderr, JSON.stringify(v)).toContain(`(${code})`);
    }
    const overlap = await bad([
      { Storage: 'files', Volume: 'data', Mount: 'a' },
      { Storage: 'files', Volume: 'data', Mount: 'a/b' },
    ]);
    expect(overlap.stderr).toMatch(/\$\.Services\[2\]\.Volumes\[1\]\.Mount: .*\(overlapping_mount\)/);
    const apps = JSON.parse((await cps('--json', 'app', 'list')).stdout) as {
      applications: { name: string }[];
    };
    expect(apps.applications.map((a) => a.name)).toEqual(['storage']);
  });
});
