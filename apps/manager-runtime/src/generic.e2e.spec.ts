import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create as tarCreate } from 'tar';
import { hasErrorCode } from '@cps/core';
import {
  subjects,
  type Bus,
  addNodes,
  callMethod,
  getLogs,
  getServiceInfo,
  listNodes,
  removeNodes,
  setArchive,
  shutdownService,
  startupService,
} from '@cps/bus';
import type { BusIdentity } from '@cps/platform';
import { workloadUser } from '@cps/clouds';
import { ArchiveStore, ensureArchiveBucket } from '@cps/archives';
import { genericService } from '@cps/services';
import { eventually, TestHost } from '@cps/testing';
import type { ManagerRuntime } from './runtime/manager-runtime.js';
import { startManager, stopManager } from './manager.spec-helpers.js';

const AGENT = join(process.cwd(), 'apps', 'agent-runtime', 'dist', 'main.js');
const at = subjects.manager('a1', 'g1');
const SCRIPTS: Record<string, string> = {
  'init.sh': 'echo "init as $MY_ROLE at $MY_IP, data $(wc -c < code/data.bin) bytes"\n',
  'notify.sh': 'echo "peers: $(grep -c nodeId "$AGENTS_JSON")"\n',
  // tries the node's identity (its private key and nkey seed) as a tenant would: by relative and
  // absolute path, through the agent's /proc entries, and at the paths given after the job name
  'run.sh': [
    'echo "run $1 on $MY_NODE as $MY_ROLE, peers $(grep -c nodeId "$AGENTS_JSON"), uid $(id -u)"',
    'job=$1; shift',
    'for f in ../identity.json "${PWD%/*}/identity.json" "/proc/$PPID/cwd/identity.json" "/proc/$PPID/environ" "$@"; do',
    '  if out=$(cat "$f" 2>&1); then echo "probe read $f: $out"; else echo "probe refused $f: $out"; fi',
    'done',
    'echo "checked keys for $job"',
    'sleep 60',
    '',
  ].join('\n'),
  'interrupt.sh': 'echo "interrupting"\nsleep 30\n',
  'cleanup.sh': 'echo "cleaned"\n',
};

describe('the generic service: scripts on every node, with their peers', () => {
  let host: TestHost;
  let manager: ManagerRuntime;
  let director: Bus;
  let archive: Buffer;
  const call = (method: string, args: unknown = {}) =>
    director.request(at, callMethod, { method, args }, { timeoutMs: 15_000 });
  const until = async (state: string) => {
    const r = await eventually(
      () => director.request(at, getServiceInfo, {}),
      (i) => i.state === state,
      30_000,
    );
    expect(r.state).toBe(state);
  };
  const status = async () =>
    (await call('get_script_status')).result as { nodes: Record<string, Record<string, string>> };

  beforeAll(async () => {
    const src = mkdtempSync(join(tmpdir(), 'cps-generic-'));
    for (const [name, body] of Object.entries(SCRIPTS)) writeFileSync(join(src, name), body, { mode: 0o755 });
    // incompressible, so the archive is bigger than a NATS message and travels in pieces
    writeFileSync(join(src, 'data.bin'), randomBytes(3 * 1024 * 1024));
    const file = join(src, 'code.tar.gz');
    await tarCreate({ gzip: true, file, cwd: src }, [...Object.keys(SCRIPTS), 'data.bin']);
    archive = readFileSync(file);
    rmSync(src, { recursive: true, force: true });

    host = await TestHost.start({ agentEntry: AGENT, stopGraceMs: 2_000 });
    manager = await startManager(host, {
      service: genericService,
      appId: 'a1',
      serviceId: 'g1',
      readyTimeoutMs: 20_000,
    });
    director = host.bus;
    // the director's part: the upload lands in the service's bucket
    await ensureArchiveBucket(director.connection, 'g1');
    await new ArchiveStore(director.connection, { serviceId: 'g1' }).put('v1', archive, {
      maxBytes: 16 * 1024 * 1024,
    });
  });
  afterAll(async () => {
    await stopManager(manager);
    await host?.cleanup();
  });

  it('starts with its one master, takes the code, adds nodes that get the code and their peers', async () => {
    await director.request(at, startupService, {});
    await until('RUNNING');
    await expect(director.request(at, setArchive, { version: 'v2' })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.version',
    );
    const set = await director.request(at, setArchive, { version: 'v1' }, { timeoutMs: 30_000 });
    expect(set).toMatchObject({ version: 'v1', size: archive.length });
    expect((await director.request(at, getServiceInfo, {})).archive).toEqual(set);
    await director.request(at, addNodes, { nodes: { node: 2 } });
    await until('RUNNING');
    const s = await eventually(
      status,
      (x) =>
        Object.values(x.nodes).length === 3 && Object.values(x.nodes).every((n) => n['init'] === 'exited'),
      20_000,
    );
    expect(Object.values(s.nodes).map((n) => n['init'])).toEqual(['exited', 'exited', 'exited']);
    const state = await manager.state();
    for (const n of (await director.request(at, listNodes, {})).nodes) {
      const log = await director.request(at, getLogs, { nodeId: n.nodeId, workload: 'init' });
      expect(n.address).toBeDefined();
      expect(log.text).toContain(`init as ${n.role} at ${n.address}, data ${3 * 1024 * 1024} bytes`);
      // the plugin's own log lines, beside its workloads'
      const own = await director.request(at, getLogs, { nodeId: n.nodeId, workload: 'agent' });
      expect(own.text).toMatch(/^info \S+ code unpacked \{"version":"v1","entries":\d+\}$/m);
      // the ports the cloud handed out, as the manager's state (and so its plugin's NodeView) holds them
      const ports = state.status === 'NONE' ? undefined : state.nodes[n.nodeId]?.ports;
      expect(ports && ports.to - ports.from + 1).toBe(20);
    }
  });

  it('runs run.sh everywhere with its parameters; its output is in get_logs', async () => {
    const r = (await call('run', { parameters: ['job-7'] })).result as { nodes: { started: boolean }[] };
    expect(r.nodes.map((n) => n.started)).toEqual([true, true, true]);
    const nodes = (await director.request(at, listNodes, {})).nodes;
    const master = nodes.find((n) => n.role === 'master')!;
    const log = await eventually(
      () => director.request(at, getLogs, { nodeId: master.nodeId, workload: 'run' }),
      (l) => l.text.includes('checked keys for job-7'),
      10_000,
    );
    expect(log.text).toContain(`run job-7 on ${master.nodeId} as master, peers 3`);
    await expect(call('run')).rejects.toSatisfy((e) => hasErrorCode(e, 'conflict'));
  });

  it('interrupts: interrupt.sh first, a second interrupt ends run.sh', async () => {
    await call('interrupt');
    // interrupt.sh runs on every node while run.sh goes on
    await eventually(
      status,
      (x) =>
        Object.values(x.nodes).length === 3 &&
        Object.values(x.nodes).every((n) => n['interrupt'] === 'running' && n['run'] === 'running'),
      10_000,
    );
    await call('interrupt');
    await eventually(
      status,
      (x) =>
        Object.values(x.nodes).length === 3 && Object.values(x.nodes).every((n) => n['run'] !== 'running'),
      15_000,
    );
  });

  it("runs workloads as the workload user, who cannot read the node's identity nor another's, by any path", async () => {
    const user = workloadUser();
    if (process.getuid?.() !== 0 || !user)
      throw new Error(
        'needs root and the workload account (scripts/setup.sh): workloads run as the workload user only when the agent runs as root',
      );
    const nodes = (await director.request(at, listNodes, {})).nodes;
    const dirs = nodes.map((n) => join(host.dir, 'cloud', 'nodes', n.nodeId));
    const targets = [
      ...dirs.map((d) => join(d, 'identity.json')),
      join(host.nats.dir, 'n1', 'server-key.pem'),
    ];
    // the files the workload is refused hold what it must not learn
    const keyLines = (pem: string) => {
      expect(pem).toMatch(/PRIVATE KEY/);
      return pem.split('\n').filter((l) => l.length > 40);
    };
    const secrets = [
      ...dirs.flatMap((d) => {
        const id = JSON.parse(readFileSync(join(d, 'identity.json'), 'utf8')) as BusIdentity;
        return [id.credentials.seed, ...keyLines(id.tls.key)];
      }),
      ...keyLines(readFileSync(join(host.nats.dir, 'n1', 'server-key.pem'), 'utf8')),
    ];
    await call('run', { parameters: ['job-8', ...targets] });
    for (const n of nodes) {
      const log = await eventually(
        () => director.request(at, getLogs, { nodeId: n.nodeId, workload: 'run', tailBytes: 1_048_576 }),
        (l) => l.text.includes('checked keys for job-8'),
        10_000,
      );
      const lines = log.text.split('\n').map((l) => l.replace(/^(?:out|err) \S+ /, ''));
      const run = lines.slice(lines.findLastIndex((l) => l.startsWith(`run job-8 on ${n.nodeId}`)));
      expect(run[0]).toMatch(new RegExp(`^run job-8 on ${n.nodeId} .*, uid ${user.uid}$`));
      expect(user.uid).not.toBe(0);
      const probes = run.filter((l) => l.startsWith('probe '));
      expect(probes).toHaveLength(4 + targets.length);
      for (const p of probes) expect(p).toMatch(/^probe refused .*Permission denied$/);
      for (const secret of secrets) expect(log.text).not.toContain(secret);
    }
  });

  it('removes a node (never the master), shuts down and leaves nothing behind', async () => {
    const nodes = (await director.request(at, listNodes, {})).nodes;
    const master = nodes.find((n) => n.role === 'master')!;
    await expect(director.request(at, removeNodes, { nodeIds: [master.nodeId] })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'conflict'),
    );
    await director.request(at, removeNodes, { nodes: { node: 1 } });
    await until('RUNNING');
    await director.request(at, shutdownService, {});
    await until('STOPPED');
    await eventually(
      () => host.cloud.list(),
      (n) => n.length === 0,
      15_000,
    );
    expect(await host.cloud.list()).toEqual([]);
  });

  it('a fresh manager (state from the events alone) starts the stopped service again, code included', async () => {
    await stopManager(manager);
    manager = await startManager(host, {
      service: genericService,
      appId: 'a1',
      serviceId: 'g1',
      readyTimeoutMs: 20_000,
    });
    expect((await director.request(at, getServiceInfo, {})).archive?.version).toBe('v1');
    await director.request(at, startupService, {});
    await until('RUNNING');
    const s = await eventually(
      status,
      (x) => Object.values(x.nodes).some((n) => n['init'] === 'exited'),
      20_000,
    );
    expect(Object.values(s.nodes)).toHaveLength(1);
    await director.request(at, shutdownService, {});
    await until('STOPPED');
  });
});
