import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create as tarCreate } from 'tar';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';

const SCRIPTS: Record<string, string> = {
  'init.sh': 'echo "init as $MY_ROLE"\n',
  'run.sh': 'echo "run $1 on $MY_NODE as $MY_ROLE, peers $(grep -c nodeId "$AGENTS_JSON")"\nsleep 60\n',
  'interrupt.sh': 'echo "interrupting"\n',
};

describe('a generic service driven through the director, as a user does it', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let bob: Client;
  let archive: Buffer;
  const svc = '/v1/applications/jobs/services/batch';

  const operation = async (c: Client, location: string) => {
    const r = await eventually(
      () => c.get(location),
      (x) => x.body?.state !== 'running',
      90_000,
    );
    expect(r.body.state, JSON.stringify(r.body)).toBe('succeeded');
    return r.body;
  };

  beforeAll(async () => {
    const src = mkdtempSync(join(tmpdir(), 'cps-generic-'));
    for (const [name, body] of Object.entries(SCRIPTS)) writeFileSync(join(src, name), body, { mode: 0o755 });
    writeFileSync(join(src, 'data.bin'), randomBytes(1_500_000));
    await tarCreate({ gzip: true, file: join(src, 'code.tgz'), cwd: src }, [
      ...Object.keys(SCRIPTS),
      'data.bin',
    ]);
    archive = readFileSync(join(src, 'code.tgz'));
    rmSync(src, { recursive: true, force: true });
    h = await DirectorHarness.start();
    d = await h.startDirector();
    alice = await h.user(d, 'alice');
    bob = await h.user(d, 'bob');
    await eventually(
      async () => d.leading,
      (l) => l,
      10_000,
    );
  });
  afterAll(async () => h?.cleanup());

  it('creates the application and the service (INIT), refusing unknown types and clouds', async () => {
    expect((await alice.post('/v1/applications', { name: 'jobs' })).status).toBe(201);
    const bad = await alice.post('/v1/applications/jobs/services', { type: 'cobol', name: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0]).toMatchObject({ path: '$.type', code: 'unknown_service_type' });
    const cloud = await alice.post('/v1/applications/jobs/services', {
      type: 'generic',
      name: 'x',
      cloud: 'mars',
    });
    expect(cloud.body.issues[0]).toMatchObject({ path: '$.cloud', code: 'unknown_cloud' });
    const typo = await alice.post('/v1/applications/jobs/services', {
      type: 'generic',
      name: 'x',
      config: { env: { A: '1' }, evn: { B: '2' } },
    });
    expect(typo.status).toBe(400);
    expect(typo.body.issues).toEqual([
      expect.objectContaining({ path: '$.config.evn', code: 'unrecognized_keys' }),
    ]);
    const s = await alice.post('/v1/applications/jobs/services', { type: 'generic', name: 'batch' });
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({ type: 'generic', state: 'INIT', managerRunning: false });
    // not started: node routes say so
    expect((await alice.get(`${svc}/nodes`)).body.code).toBe('conflict');
  });

  it('adds a service that mounts volumes of a storage service, linked to it; refuses bad volumes at their path', async () => {
    const base = '/v1/applications/vols/services';
    expect((await alice.post('/v1/applications', { name: 'vols' })).status).toBe(201);
    expect((await alice.post(base, { type: 'storage', name: 'Files' })).status).toBe(201);
    expect((await alice.post(base, { type: 'generic', name: 'plain' })).status).toBe(201);
    const refused = async (volumes: unknown[], path: string, code: string) => {
      const r = await alice.post(base, { type: 'generic', name: 'user', volumes });
      expect(r.status, r.text).toBe(400);
      expect(r.body.issues, r.text).toEqual([expect.objectContaining({ path, code })]);
    };
    await refused([{ storage: 'plain', volume: 'v', mount: 'v' }], '$.volumes[0].storage', 'not_storage');
    await refused(
      [{ storage: 'nowhere', volume: 'v', mount: 'v' }],
      '$.volumes[0].storage',
      'unknown_service',
    );
    await refused([{ storage: 'Files', volume: 'v', mount: '../v' }], '$.volumes[0].mount', 'invalid_format');
    await refused([{ storage: 'Files', volume: 'v', mount: '/v' }], '$.volumes[0].mount', 'invalid_format');
    await refused(
      [
        { storage: 'Files', volume: 'v', mount: 'a' },
        { storage: 'Files', volume: 'w', mount: 'a/b' },
      ],
      '$.volumes[1].mount',
      'overlapping_mount',
    );
    // bob's storage service is not alice's to mount
    expect((await bob.post('/v1/applications', { name: 'bobs' })).status).toBe(201);
    expect(
      (await bob.post('/v1/applications/bobs/services', { type: 'storage', name: 'Files' })).status,
    ).toBe(201);
    const bobs = (await bob.get('/v1/applications/bobs/services/Files')).body.serviceId as string;
    await refused([{ storage: bobs, volume: 'v', mount: 'v' }], '$.volumes[0].storage', 'unknown_service');
    expect(((await alice.get(base)).body.services as { name: string }[]).map((s) => s.name).sort()).toEqual([
      'Files',
      'plain',
    ]);
    const ok = await alice.post(base, {
      type: 'generic',
      name: 'user',
      volumes: [{ storage: 'Files', volume: 'v', mount: 'data/v' }],
    });
    expect(ok.status, ok.text).toBe(201);
    // linked to the storage service under its name, so the link's endpoints and password reach its nodes
    expect(Object.keys(ok.body.links as object)).toEqual(['files']);
    const exported = (await alice.get('/v1/applications/vols/manifest')).body as {
      Services: { ServiceName: string; Volumes?: unknown }[];
    };
    expect(exported.Services.find((s) => s.ServiceName === 'user')?.Volumes).toEqual([
      { Storage: 'Files', Volume: 'v', Mount: 'data/v' },
    ]);
  });

  it('uploads the code archive (bigger than a NATS message) into the service bucket', async () => {
    const r = await alice.put(`${svc}/archive`, archive);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ size: archive.length });
    expect((await alice.get(svc)).body.archive.version).toBe(r.body.version);
    expect((await bob.put(`${svc}/archive`, archive)).status).toBe(404);
  });

  it('starts it: 202 with the operation, a manager process, its master node RUNNING', async () => {
    const r = await alice.post(`${svc}/start`);
    expect(r.status).toBe(202);
    expect(r.headers.location).toBe(`/v1/operations/${r.body.operationId}`);
    await operation(alice, r.headers.location as string);
    const s = (await alice.get(svc)).body;
    expect(s).toMatchObject({ state: 'RUNNING', managerRunning: true, nodes: { master: 1 } });
    expect((await alice.post(`${svc}/start`)).status).toBe(409);
    // bob cannot even see the operation
    expect((await bob.get(r.headers.location as string)).status).toBe(404);
  });

  it('adds nodes, calls a method on every node, reads the output through logs', async () => {
    const add = await alice.post(`${svc}/nodes`, { nodes: { node: 2 } });
    expect(add.status).toBe(202);
    await operation(alice, add.headers.location as string);
    const nodes = (await alice.get(`${svc}/nodes`)).body.nodes as {
      nodeId: string;
      role: string;
      state: string;
    }[];
    expect(nodes.filter((n) => n.state === 'running')).toHaveLength(3);
    const bad = await alice.post(`${svc}/calls/run`, { parameters: 'not-a-list' });
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe('$.parameters');
    expect((await alice.post(`${svc}/calls/no_such_method`, {})).status).toBe(404);
    const run = await alice.post(`${svc}/calls/run`, { parameters: ['job-1'] });
    expect(run.status, run.text).toBe(200);
    const master = nodes.find((n) => n.role === 'master')!;
    const logs = await eventually(
      () => alice.get(`${svc}/logs?node=${master.nodeId}&workload=run`),
      (l) => String(l.body?.text).includes('job-1'),
      15_000,
    );
    expect(logs.body.text).toContain(`run job-1 on ${master.nodeId} as master, peers`);
    expect((await alice.get(`${svc}/logs`)).body.text).toContain('NodeReady');
    expect((await alice.get(`${svc}/nodes/${master.nodeId}`)).body.role).toBe('master');
    const history = (await alice.get(`${svc}/history`)).body;
    expect(history.history.map((x: { to: string }) => x.to)).toEqual(
      expect.arrayContaining(['PROLOGUE', 'RUNNING', 'ADAPTING']),
    );
    const res = (await alice.get('/v1/resources')).body.resources as { kind: string; cost: number }[];
    expect(res.filter((x) => x.kind === 'agent')).toHaveLength(3);
    expect((await bob.get('/v1/resources')).body.resources).toEqual([]);
    for (const path of [`${svc}/nodes`, `${svc}/logs`, `${svc}/history`])
      expect((await bob.get(path)).status).toBe(404);
    expect((await bob.post(`${svc}/calls/run`, {})).status).toBe(404);
  });

  it('leaves an agent killed with -9 to its manager: failed and replaced, never started again by the reconciler', async () => {
    type Listed = { nodeId: string; role: string; state: string }[];
    const before = (await alice.get(`${svc}/nodes`)).body.nodes as Listed;
    const victim = before.find((n) => n.role === 'node')!;
    const node = (await h.cloud.get(victim.nodeId))!;
    process.kill(Number(node.instanceId), 'SIGKILL');
    // the reconciler runs every 2 s here, sooner than the manager's 3 s heartbeat timeout: every
    // instance the cloud shows for the victim until it is gone is watched
    const instances = new Set<string>();
    const healed = await eventually(
      async () => {
        const held = await h.cloud.get(victim.nodeId);
        if (held) instances.add(`${held.instanceId}:${held.state}`);
        return (await alice.get(`${svc}/nodes`)).body.nodes as Listed;
      },
      (ns) =>
        ns.find((n) => n.nodeId === victim.nodeId)?.state === 'removed' &&
        ns.filter((n) => n.state === 'running').length === before.length,
      60_000,
    );
    expect(healed.filter((n) => n.role === 'node' && n.state === 'running')).toHaveLength(2);
    expect([...instances].every((i) => i.startsWith(`${node.instanceId}:`))).toBe(true);
    expect(await h.cloud.get(victim.nodeId)).toBeUndefined();
    const history = (await alice.get(`${svc}/logs`)).body.text as string;
    expect(history).toMatch(new RegExp(`NodeFailed.*${victim.nodeId}.*no heartbeat`));
  });

  it('answers for a service whose manager was killed: the question waits for the re-created manager', async () => {
    type Listed = { nodeId: string; state: string }[];
    const before = (await alice.get(`${svc}/nodes`)).body.nodes as Listed;
    const { serviceId } = (await alice.get(svc)).body as { serviceId: string };
    const manager = (await h.cloud.list()).find((n) => n.kind === 'manager' && n.serviceId === serviceId)!;
    process.kill(Number(manager.instanceId), 'SIGKILL');
    // asked at once, while no manager runs: answered by the one the reconciler starts
    const after = await alice.get(`${svc}/nodes`);
    expect(after.status, after.text).toBe(200);
    expect((after.body.nodes as Listed).map((n) => [n.nodeId, n.state])).toEqual(
      before.map((n) => [n.nodeId, n.state]),
    );
    const successor = await h.cloud.get(manager.nodeId);
    expect(successor?.state).toBe('running');
    expect(successor?.instanceId).not.toBe(manager.instanceId);
  });

  it('removes a node, stops, deletes: nothing left running', async () => {
    const rm = await alice.delete(`${svc}/nodes`, { nodes: { node: 1 } });
    expect(rm.status, rm.text).toBe(202);
    await operation(alice, rm.headers.location as string);
    const stop = await alice.post(`${svc}/stop`);
    await operation(alice, stop.headers.location as string);
    expect((await alice.get(svc)).body).toMatchObject({ state: 'STOPPED', managerRunning: false });
    expect(await h.cloud.list()).toEqual([]);
    const del = await alice.delete('/v1/applications/jobs');
    expect(del.status).toBe(202);
    await operation(alice, del.headers.location as string);
    expect((await alice.get('/v1/applications/jobs')).status).toBe(404);
    expect(await h.cloud.list()).toEqual([]);
  });
});
