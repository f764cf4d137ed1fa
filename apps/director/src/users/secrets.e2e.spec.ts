import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create as tarCreate } from 'tar';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { aggregateIds, hasErrorCode, isSealed, sealingKeyFrom, unseal } from '@cps/core';
import { EVENT_STREAM, LOG_STREAM, SNAPSHOT_BUCKET, subjects } from '@cps/bus';
import { PROJECTION_BUCKET } from '@cps/events';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import { ADMIN_PASSWORD, DirectorHarness, type Client } from '../director.spec-helpers.js';
import { serviceSecretContext, UserKeys } from './user-keys.js';

const SECRET = 'sekrit-7f3a9c1e';
/** Kept in clear where the secret would be if it leaked: each scan must find it (its positive control). */
const CANARY = 'canary-52d0b8e4';

/**
 * Every message of a stream, raw: what anyone with access to the storage would see. A read that
 * fails fails the scan, and so does a count short of the stream's.
 */
const rawStream = async (h: DirectorHarness, stream: string): Promise<string> => {
  const nc = await h.nats.connect({ role: 'director', id: 'inspector' });
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(stream);
  const parts: string[] = [];
  // gaps (superseded KV revisions) answer null; any other failure throws
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m) parts.push(`${m.subject} ${m.string()}`);
  }
  await nc.close();
  expect(parts, `messages read from ${stream}`).toHaveLength(state.messages);
  return parts.join('\n');
};

/** Every object of an object-store bucket, whole (a value may straddle two chunks of the raw stream). */
const objects = async (h: DirectorHarness, bucket: string): Promise<string> => {
  const nc = await h.nats.connect({ role: 'director', id: 'inspector' });
  const os = await new Objm(nc).open(bucket);
  const parts: string[] = [];
  for (const info of await os.list()) {
    const data = await os.getBlob(info.name);
    if (!data) throw new Error(`object ${info.name} of ${bucket} could not be read`);
    parts.push(new TextDecoder().decode(data));
  }
  await nc.close();
  expect(parts.length, `objects of ${bucket}`).toBeGreaterThan(0);
  return parts.join('\n');
};

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('secrets: sealed with the owner’s key, never in clear anywhere', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let admin: Client;
  let appId = '';
  let serviceId = '';
  const svc = '/v1/applications/vault/services/jobs';
  const finished = (op: string) =>
    eventually(
      () => alice.get(op),
      (r) => r.body?.state !== 'running',
      60_000,
    );

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    alice = await h.user(d, 'alice');
    admin = await h.signIn(d, 'admin', ADMIN_PASSWORD);
    await eventually(
      async () => d.leading,
      (l) => l,
      10_000,
    );
  });
  afterAll(async () => h?.cleanup());

  it('hands the secret to the workloads, and only to them', async () => {
    const a = await alice.post('/v1/applications', { name: 'vault', description: CANARY });
    expect(a.status, a.text).toBe(201);
    appId = a.body.appId as string;
    const s = await alice.post('/v1/applications/vault/services', {
      type: 'generic',
      name: 'jobs',
      config: { env: { MODE: 'demo', CANARY }, secrets: { API_KEY: SECRET } },
    });
    expect(s.status, s.text).toBe(201);
    serviceId = s.body.serviceId as string;
    expect(s.text).not.toContain(SECRET);
    const src = mkdtempSync(join(tmpdir(), 'cps-secret-'));
    // proves the workload has the secret without printing it: its logs are then free of it too
    writeFileSync(
      join(src, 'run.sh'),
      'echo "mode=$MODE key-sha256=$(printf %s "$API_KEY" | sha256sum | cut -d" " -f1)"\n',
      { mode: 0o755 },
    );
    await tarCreate({ gzip: true, file: join(src, 'a.tgz'), cwd: src }, ['run.sh']);
    expect((await alice.put(`${svc}/archive`, readFileSync(join(src, 'a.tgz')))).status).toBe(200);
    rmSync(src, { recursive: true, force: true });
    const start = await alice.post(`${svc}/start`);
    const op = await eventually(
      () => alice.get(start.headers.location as string),
      (r) => r.body?.state !== 'running',
      60_000,
    );
    expect(op.body.state).toBe('succeeded');
    // the code reaches the node just after it is ready: run once it is there
    const run = await eventually(
      () => alice.post(`${svc}/calls/run`, {}),
      (r) => r.status === 200 && r.body.result.nodes[0]?.started === true,
      15_000,
    );
    expect(run.status, run.text).toBe(200);
    const master = ((await alice.get(`${svc}/nodes`)).body.nodes as { nodeId: string }[])[0]!;
    const logs = await eventually(
      () => alice.get(`${svc}/logs?node=${master.nodeId}&workload=run`),
      (l) => String(l.body?.text).includes('mode=demo'),
      15_000,
    );
    expect(logs.body.text, logs.text).toContain(`mode=demo key-sha256=${sha256(SECRET)}`);
  });

  it('keeps it out of the event stream, the snapshots, the logs, the history API and the manifest export', async () => {
    const inspector = await h.nats.connect({ role: 'director', id: 'inspector' });
    // the manager snapshots its service every 20 versions: add and remove nodes until it has
    const snapshots = await new Kvm(inspector).open(SNAPSHOT_BUCKET);
    for (let i = 0; !(await snapshots.get(aggregateIds.service(appId, serviceId))); i++) {
      expect(i, 'operations before the manager snapshots its service').toBeLessThan(4);
      const add = await alice.post(`${svc}/nodes`, { nodes: { node: 1 } });
      expect(add.status, add.text).toBe(202);
      expect((await finished(add.headers.location as string)).body.state).toBe('succeeded');
      const remove = await alice.delete(`${svc}/nodes`, { nodes: { node: 1 } });
      expect(remove.status, remove.text).toBe(202);
      expect((await finished(remove.headers.location as string)).body.state).toBe('succeeded');
    }
    expect(await d.snapshotReadModel()).toBe(true);
    // nothing writes node output to the log stream yet: a line from the service's manager is what would
    const manager = await h.nats.connect({ role: 'manager', id: serviceId, appId, serviceId });
    await jetstream(manager).publish(subjects.logs(appId, serviceId, 'n1'), `output ${CANARY}`);
    await manager.close();

    const stores = {
      events: await rawStream(h, EVENT_STREAM),
      snapshots: await rawStream(h, `KV_${SNAPSHOT_BUCKET}`),
      logs: await rawStream(h, LOG_STREAM),
      projections: await objects(h, PROJECTION_BUCKET),
    };
    for (const [name, text] of Object.entries(stores)) {
      expect(text, name).toContain(CANARY);
      expect(text, name).not.toContain(SECRET);
    }
    expect(stores.events).toContain('API_KEY');
    expect(stores.snapshots).toContain('API_KEY');

    const history = await admin.get('/v1/events?limit=500');
    expect(history.status).toBe(200);
    expect(history.body.nextCursor).toBeUndefined();
    expect(history.text).toContain(CANARY);
    expect(history.text).not.toContain(SECRET);
    const exported = await alice.get('/v1/applications/vault/manifest');
    expect(exported.status).toBe(200);
    expect(exported.text).toContain(CANARY);
    expect(exported.text).not.toContain(SECRET);
    expect(exported.text).toContain(`secret:${serviceId}/`);
    await inspector.close();
  });

  it('erasing the owner’s key makes the sealed value unreadable for good', async () => {
    const nc = await h.nats.connect({ role: 'director', id: 'eraser' });
    const keys = new UserKeys(nc, h.nats.secrets);
    const alicesId = (await alice.get('/v1/me')).body.userId as string;
    const sealed = /"API_KEY":"([^"]+)"/.exec(await rawStream(h, EVENT_STREAM))?.[1] ?? '';
    expect(isSealed(sealed)).toBe(true);
    const before = await keys.material(alicesId);
    expect(unseal(sealingKeyFrom(before), sealed, serviceSecretContext(serviceId)).toString()).toBe(SECRET);
    await keys.erase(alicesId);
    await expect(keys.material(alicesId)).rejects.toSatisfy((e) => hasErrorCode(e, 'not_found'));
    await nc.close();
    const stop = await alice.post(`${svc}/stop`);
    await finished(stop.headers.location as string);
  });
});
