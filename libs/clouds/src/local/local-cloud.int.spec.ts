import { execFileSync, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud, WORKLOAD_USER, workloadUser, type CloudNode, type LocalCloudOptions } from '../index.js';
import { cloudContract, eventually, freshNodeId, nodeSpec } from '../cloud-contract.spec-helpers.js';
import { isAlive } from './proc.js';

/** The node: records its environment, may start a child in its group, may ignore SIGTERM, then idles. */
const NODE_SCRIPT = `
const fs = require('node:fs');
if (process.env.SPAWN_CHILD) {
  const c = require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  fs.writeFileSync('child.pid', String(c.pid));
}
if (process.env.IGNORE_TERM) process.on('SIGTERM', () => {});
fs.writeFileSync('env.json', JSON.stringify(process.env));
setInterval(() => {}, 1e6);
`;

const root = process.getuid?.() === 0;
const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'cps-clouds-'));
  dirs.push(d);
  return d;
};

const localCloud = (o: Partial<LocalCloudOptions> = {}): LocalCloud =>
  new LocalCloud({
    dir: tempDir(),
    command: () => ({ command: process.execPath, args: ['-e', NODE_SCRIPT] }),
    stopGraceMs: 1_000,
    ...o,
  });

const pidOf = (node: CloudNode): number => Number(node.instanceId);
const nodeDirOf = (cloudDir: string, node: CloudNode): string => join(cloudDir, 'nodes', node.nodeId);
const mode = (path: string): number => statSync(path).mode & 0o777;

const readText = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

const readJson = async (file: string): Promise<Record<string, string>> => {
  const text = await eventually(
    async () => readText(file),
    (t) => t.endsWith('}'),
  );
  return JSON.parse(text) as Record<string, string>;
};

/** `/proc/<pid>/stat` fields 5 and 6: process group and session. */
const groupAndSession = (pid: number): [number, number] => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[2]), Number(f[3])];
};

/** Pids whose environment matches `test`: the nodes of this file and what they started. */
const processesWhere = (test: (env: string[]) => boolean): number[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return test(readFileSync(`/proc/${p}/environ`, 'utf8').split('\0'));
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter((p) => isAlive(p));

const processesOf = (nodeId: string): number[] =>
  processesWhere((env) => env.includes(`CPS_NODE_ID=${nodeId}`));

afterAll(() => {
  // a failed test may leave nodes behind: stop them by pid, they are ours by their CPS_NODE_DIR
  const ours = (env: string[]): boolean =>
    env.some((v) => dirs.some((d) => v.startsWith(`CPS_NODE_DIR=${d}/`)));
  for (const pid of processesWhere(ours)) process.kill(pid, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

cloudContract('local processes', async () => {
  const cloud = localCloud();
  return {
    cloud,
    isRunning: async (node) => isAlive(pidOf(node)),
    crash: async (node) => {
      process.kill(pidOf(node), 'SIGKILL');
    },
    cleanup: async () => undefined,
  };
});

describe('LocalCloud', () => {
  const clouds: LocalCloud[] = [];
  const cloudWith = (o: Partial<LocalCloudOptions> = {}): { cloud: LocalCloud; dir: string } => {
    const dir = tempDir();
    const cloud = localCloud({ dir, ...o });
    clouds.push(cloud);
    return { cloud, dir };
  };

  beforeAll(() => {
    if (root && workloadUser() === undefined)
      execFileSync('useradd', [
        '--system',
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        WORKLOAD_USER,
      ]);
  });
  afterAll(async () => {
    for (const c of clouds) for (const node of await c.list()) await c.destroy(node.nodeId);
  });

  it('gives a node a clean environment: its contextualization env and the cloud variables only', async () => {
    process.env.CPS_SECRET_TEST = 'must not leak';
    try {
      const { cloud, dir } = cloudWith();
      const node = await cloud.create(
        nodeSpec(freshNodeId(), { contextualization: { env: { GREETING: 'hi' }, files: {} } }),
      );
      const nodeDir = nodeDirOf(dir, node);
      const env = await readJson(join(nodeDir, 'env.json'));
      expect(Object.keys(env).sort()).toEqual(
        [
          'CPS_NODE_ADDRESS',
          'CPS_NODE_DIR',
          'CPS_NODE_ID',
          'CPS_PORT_FROM',
          'CPS_PORT_TO',
          'GREETING',
          'HOME',
          'PATH',
        ].sort(),
      );
      expect(env).toMatchObject({
        GREETING: 'hi',
        HOME: nodeDir,
        CPS_NODE_DIR: nodeDir,
        CPS_NODE_ID: node.nodeId,
        CPS_NODE_ADDRESS: node.address,
        CPS_PORT_FROM: String(node.ports?.from),
        CPS_PORT_TO: String(node.ports?.to),
      });
      expect(node.ports!.to - node.ports!.from + 1).toBe(20);
      expect(processesOf(node.nodeId)).toEqual([pidOf(node)]);
    } finally {
      delete process.env.CPS_SECRET_TEST;
    }
  });

  it('refuses contextualization env that would override the cloud variables', async () => {
    const { cloud } = cloudWith();
    const spec = nodeSpec(freshNodeId(), {
      contextualization: { env: { HOME: '/', 'A=B': 'x' }, files: {} },
    });
    await expect(cloud.create(spec)).rejects.toMatchObject({
      code: 'validation',
      issues: [
        { path: '$.contextualization.env["HOME"]', code: 'reserved' },
        { path: '$.contextualization.env["A=B"]', code: 'invalid_name' },
      ],
    });
    expect(await cloud.get(spec.nodeId)).toBeUndefined();
  });

  it('writes the node directory private: 0700 directories, 0600 files; with a workload user it may only walk to work/', async () => {
    const withUser = root && workloadUser() !== undefined;
    const { cloud, dir } = cloudWith(withUser ? { workloadUser: workloadUser() } : {});
    const files = { 'node.key': 'KEY', 'certs/ca.pem': 'CA', 'agent.conf': 'conf' };
    const node = await cloud.create(nodeSpec(freshNodeId(), { contextualization: { env: {}, files } }));
    const nodeDir = nodeDirOf(dir, node);
    // searchable, not listable: the workload user reaches work/ by its path (mariadbd wants absolute paths)
    expect(mode(nodeDir)).toBe(withUser ? 0o711 : 0o700);
    expect(mode(join(nodeDir, 'work'))).toBe(0o700);
    expect(mode(join(nodeDir, 'certs'))).toBe(0o700);
    for (const f of ['node.json', 'node.log', 'node.key', 'certs/ca.pem', 'agent.conf'])
      expect([f, mode(join(nodeDir, f))]).toEqual([f, 0o600]);
    expect(readFileSync(join(nodeDir, 'certs/ca.pem'), 'utf8')).toBe('CA');
    expect(JSON.parse(readFileSync(join(nodeDir, 'node.json'), 'utf8'))).toMatchObject({
      nodeId: node.nodeId,
      kind: 'agent',
      appId: 'app1',
      serviceId: 'svc1',
      role: 'web',
      pid: pidOf(node),
      ports: node.ports,
      createdAt: node.createdAt,
    });
    if (root) expect(statSync(join(nodeDir, 'work')).uid).toBe(workloadUser()?.uid);
  });

  it('starts nodes detached: a new LocalCloud on the same directory finds them running', async () => {
    const { cloud, dir } = cloudWith();
    const node = await cloud.create(nodeSpec());
    expect(groupAndSession(pidOf(node))).toEqual([pidOf(node), pidOf(node)]);
    const again = localCloud({ dir });
    expect(await again.list()).toEqual([node]);
    expect(await again.create(nodeSpec(node.nodeId))).toEqual(node);
    await again.destroy(node.nodeId);
    expect(isAlive(pidOf(node))).toBe(false);
    expect(await cloud.list()).toEqual([]);
  });

  it('destroys the whole process group, escalating to SIGKILL when SIGTERM is ignored', async () => {
    const { cloud, dir } = cloudWith({ stopGraceMs: 300 });
    const spec = nodeSpec(freshNodeId(), {
      contextualization: { env: { SPAWN_CHILD: '1', IGNORE_TERM: '1' }, files: {} },
    });
    const node = await cloud.create(spec);
    const nodeDir = nodeDirOf(dir, node);
    await readJson(join(nodeDir, 'env.json'));
    const child = Number(readFileSync(join(nodeDir, 'child.pid'), 'utf8'));
    expect(isAlive(child)).toBe(true);
    expect(processesOf(node.nodeId).sort()).toEqual([pidOf(node), child].sort());
    await cloud.destroy(spec.nodeId);
    expect(isAlive(pidOf(node))).toBe(false);
    expect(isAlive(child)).toBe(false);
    expect(() => statSync(nodeDir)).toThrow();
  });

  it('stops the rest of the group when only the node process died', async () => {
    const { cloud, dir } = cloudWith();
    const spec = nodeSpec(freshNodeId(), { contextualization: { env: { SPAWN_CHILD: '1' }, files: {} } });
    const node = await cloud.create(spec);
    const nodeDir = nodeDirOf(dir, node);
    await readJson(join(nodeDir, 'env.json'));
    const child = Number(readFileSync(join(nodeDir, 'child.pid'), 'utf8'));
    process.kill(pidOf(node), 'SIGKILL');
    expect(
      (
        await eventually(
          () => cloud.get(spec.nodeId),
          (x) => x?.state === 'stopped',
        )
      )?.state,
    ).toBe('stopped');
    expect(isAlive(child)).toBe(true);
    await cloud.destroy(spec.nodeId);
    expect(isAlive(child)).toBe(false);
  });

  it('counts a zombie (dead, never reaped) as gone', async () => {
    const { cloud, dir } = cloudWith({
      command: () => ({ command: 'sh', args: ['-c', 'sleep 1000 & echo $! > child.pid; exec sleep 1000'] }),
    });
    const node = await cloud.create(nodeSpec());
    const pidFile = join(nodeDirOf(dir, node), 'child.pid');
    const text = await eventually(
      async () => readText(pidFile),
      (t) => t.endsWith('\n'),
    );
    const child = Number(text.trim());
    process.kill(child, 'SIGKILL');
    const state = await eventually(
      async () => readText(`/proc/${child}/stat`),
      (t) => / Z /.test(t),
    );
    expect(state).toMatch(/ Z /);
    expect(isAlive(child)).toBe(false);
    await cloud.destroy(node.nodeId);
    expect(isAlive(pidOf(node))).toBe(false);
  });

  it('takes a recorded pid that another process now holds for a stopped node, and never signals it', async () => {
    const { cloud, dir } = cloudWith();
    const node = await cloud.create(nodeSpec());
    const recordFile = join(nodeDirOf(dir, node), 'node.json');
    const record = JSON.parse(readFileSync(recordFile, 'utf8')) as Record<string, unknown>;
    await cloud.destroy(node.nodeId);
    mkdirSync(nodeDirOf(dir, node), { mode: 0o700 });
    writeFileSync(recordFile, JSON.stringify({ ...record, pid: process.pid, startTime: '1' }));
    expect((await cloud.get(node.nodeId))?.state).toBe('stopped');
    await cloud.destroy(node.nodeId);
    expect(await cloud.get(node.nodeId)).toBeUndefined();
    expect(isAlive(process.pid)).toBe(true);
  });

  it('hands out a port range no recorded node holds, and reuses it once destroyed', async () => {
    const { cloud } = cloudWith({ portBase: 30_000, portsPerNode: 5 });
    const a = await cloud.create(nodeSpec());
    const b = await cloud.create(nodeSpec());
    expect([a.ports, b.ports]).toEqual([
      { from: 30_000, to: 30_004 },
      { from: 30_005, to: 30_009 },
    ]);
    await cloud.destroy(a.nodeId);
    expect((await cloud.create(nodeSpec())).ports).toEqual({ from: 30_000, to: 30_004 });
  });

  it('skips a range a port of which something on the machine listens on', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const taken = (server.address() as AddressInfo).port;
      // the first range, [taken - 2, taken + 2], holds the listening port
      const { cloud } = cloudWith({ portBase: taken - 2, portsPerNode: 5 });
      const node = await cloud.create(nodeSpec());
      expect(node.ports!.from).toBeGreaterThan(taken);
      expect(node.ports!.to - node.ports!.from + 1).toBe(5);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('fails a node whose command cannot start with code unavailable, leaving nothing', async () => {
    const { cloud } = cloudWith({ command: () => ({ command: 'cps-no-such-command', args: [] }) });
    const spec = nodeSpec();
    await expect(cloud.create(spec)).rejects.toMatchObject({ code: 'unavailable' });
    expect(await cloud.list()).toEqual([]);
  });

  it("keeps the tail of a node's log when it is destroyed, for its next incarnation", async () => {
    const { cloud, dir } = cloudWith({
      command: () => ({
        command: process.execPath,
        args: ['-e', 'console.log("incarnation", process.pid); setInterval(() => {}, 1e6)'],
      }),
    });
    const spec = nodeSpec();
    const first = await cloud.create(spec);
    const log = join(nodeDirOf(dir, first), 'node.log');
    await eventually(
      async () => readText(log),
      (t) => t.includes('incarnation'),
    );
    await cloud.destroy(spec.nodeId);
    const second = await cloud.create(spec);
    expect(readText(join(nodeDirOf(dir, second), 'node.previous.log'))).toBe(
      `incarnation ${first.instanceId}\n`,
    );
    await cloud.destroy(spec.nodeId);
  });

  it('stops a node keeping its directory, and starts it again there: data kept, fresh files, same ports', async () => {
    const { cloud, dir } = cloudWith({
      command: () => ({
        command: process.execPath,
        args: ['-e', 'console.log("boot", process.pid); setInterval(() => {}, 1e6)'],
      }),
    });
    const spec = nodeSpec(freshNodeId(), {
      contextualization: { env: {}, files: { 'identity.json': 'first' } },
    });
    const first = await cloud.create(spec);
    const nodeDir = nodeDirOf(dir, first);
    writeFileSync(join(nodeDir, 'work', 'data.txt'), 'kept');
    await eventually(
      async () => readText(join(nodeDir, 'node.log')),
      (t) => t.includes('boot'),
    );

    await cloud.stop(spec.nodeId);
    expect(isAlive(pidOf(first))).toBe(false);
    expect((await cloud.get(spec.nodeId))?.state).toBe('stopped');
    expect(readText(join(nodeDir, 'work', 'data.txt'))).toBe('kept');

    // a create of the stopped node leaves it as it is; start runs it again in its directory
    expect((await cloud.create(spec)).state).toBe('stopped');
    const again = await cloud.start({
      ...spec,
      contextualization: { env: {}, files: { 'identity.json': 'second' } },
    });
    expect(again.state).toBe('running');
    expect(again.instanceId).not.toBe(first.instanceId);
    expect(again.ports).toEqual(first.ports);
    expect(again.createdAt).toBe(first.createdAt);
    expect(readText(join(nodeDir, 'work', 'data.txt'))).toBe('kept');
    expect(readText(join(nodeDir, 'identity.json'))).toBe('second');
    expect(readText(join(nodeDir, 'node.previous.log'))).toBe(`boot ${first.instanceId}\n`);
    await eventually(
      async () => readText(join(nodeDir, 'node.log')),
      (t) => t === `boot ${again.instanceId}\n`,
    );
    // starting a running node is harmless; destroying removes the data too
    expect((await cloud.start(spec)).instanceId).toBe(again.instanceId);
    await cloud.destroy(spec.nodeId);
    expect(readdirSync(join(dir, 'nodes')).filter((e) => e === spec.nodeId)).toEqual([]);
    await expect(cloud.start(spec)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('starts a stopped node on another port range when its own was taken meanwhile', async () => {
    const { cloud } = cloudWith();
    const spec = nodeSpec();
    const first = await cloud.create(spec);
    await cloud.stop(spec.nodeId);
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(first.ports!.from + 3, r));
    try {
      const again = await cloud.start(spec);
      expect(again.state).toBe('running');
      expect(again.ports).not.toEqual(first.ports);
      const taken = (squatter.address() as AddressInfo).port;
      expect(taken < again.ports!.from || taken > again.ports!.to).toBe(true);
    } finally {
      squatter.close();
      await cloud.destroy(spec.nodeId);
    }
  });

  it('ends what a node left behind outside its process groups with it (a cgroup per node, as root)', async () => {
    if (!root) throw new Error('needs root: a cgroup per node is what this tests');
    const marker = `cps-escapee-${freshNodeId()}`;
    // the escapee: its own session, its own process group, reparented to init
    const escape = `require('node:child_process').spawn('setsid', [process.execPath, '-e', 'setInterval(() => {}, 1e6)', '${marker}'], { detached: true, stdio: 'ignore' }).unref(); setInterval(() => {}, 1e6)`;
    const { cloud } = cloudWith({ command: () => ({ command: process.execPath, args: ['-e', escape] }) });
    expect(cloud.confinement).toBe('cgroup');
    const spec = nodeSpec();
    await cloud.create(spec);
    const escapees = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => readText(`/proc/${p}/cmdline`).split('\0').includes(marker))
        .map(Number)
        .filter((p) => isAlive(p));
    const [pid] = await eventually(
      async () => escapees(),
      (p) => p.length === 1,
    );
    const [pgid, sid] = groupAndSession(pid!);
    expect(pgid).toBe(pid);
    expect(sid).toBe(pid);
    await cloud.destroy(spec.nodeId);
    expect(escapees()).toEqual([]);
  });

  describe.skipIf(!root)(`the workload account (${WORKLOAD_USER}, running as root)`, () => {
    it('cannot read a 0600 file of root in a 0700 directory', () => {
      const user = workloadUser()!;
      const dir = join(tempDir(), 'private');
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(join(dir, 'secret'), 'root only', { mode: 0o600 });
      expect(spawnSync('cat', [join(dir, 'secret')], { encoding: 'utf8' }).stdout).toBe('root only');
      const asWorkload = spawnSync('cat', [join(dir, 'secret')], { ...user, encoding: 'utf8' });
      expect(asWorkload.status).not.toBe(0);
      expect(asWorkload.stdout).toBe('');
      expect(asWorkload.stderr).toMatch(/permission denied/i);
    });

    it('works in the node work directory it is given, and reads nothing else of the node', async () => {
      const user = workloadUser()!;
      const { cloud, dir } = cloudWith({ workloadUser: user });
      const node = await cloud.create(
        nodeSpec(freshNodeId(), { contextualization: { env: {}, files: { 'node.key': 'KEY' } } }),
      );
      const work = join(nodeDirOf(dir, node), 'work');
      const r = spawnSync('sh', ['-c', 'echo made > out.txt && cat ../node.key'], {
        ...user,
        cwd: work,
        env: { PATH: process.env.PATH },
        encoding: 'utf8',
      });
      expect(readFileSync(join(work, 'out.txt'), 'utf8')).toBe('made\n');
      expect(statSync(join(work, 'out.txt')).uid).toBe(user.uid);
      expect(r.status).not.toBe(0);
      expect(r.stdout).not.toContain('KEY');
    });
  });
});
