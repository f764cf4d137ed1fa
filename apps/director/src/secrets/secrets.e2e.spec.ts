import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create as tarCreate } from 'tar';
import { jetstreamManager } from '@nats-io/jetstream';
import { hasErrorCode, isSealed, sealingKeyFrom, unseal } from '@cps/core';
import { EVENT_STREAM, SNAPSHOT_BUCKET } from '@cps/bus';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import { ADMIN_PASSWORD, DirectorHarness, type Client } from '../director.spec-helpers.js';
import { serviceSecretContext, UserKeys } from './user-keys.js';

const SECRET = 'sekrit-7f3a9c1e';

/** Every message of a stream, raw: what anyone with access to the storage would see. */
const rawStream = async (h: DirectorHarness, stream: string): Promise<string> => {
  const nc = await h.nats.connect({ role: 'director', id: 'inspector' });
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(stream);
  const parts: string[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m) parts.push(m.string());
  }
  await nc.close();
  return parts.join('\n');
};

describe('secrets: sealed with the owner’s key, never in clear anywhere', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let admin: Client;
  let serviceId = '';
  const svc = '/v1/applications/vault/services/jobs';

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
    await alice.post('/v1/applications', { name: 'vault' });
    const s = await alice.post('/v1/applications/vault/services', {
      type: 'generic',
      name: 'jobs',
      config: { env: { MODE: 'demo' }, secrets: { API_KEY: SECRET } },
    });
    expect(s.status, s.text).toBe(201);
    serviceId = s.body.serviceId as string;
    expect(s.text).not.toContain(SECRET);
    const src = mkdtempSync(join(tmpdir(), 'cps-secret-'));
    writeFileSync(join(src, 'run.sh'), 'echo "mode=$MODE key=$API_KEY"\n', { mode: 0o755 });
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
    expect(logs.body.text, logs.text).toContain(`mode=demo key=${SECRET}`);
  });

  it('keeps it out of the event stream, the snapshots, the history API and the manifest export', async () => {
    const events = await rawStream(h, EVENT_STREAM);
    expect(events).toContain('API_KEY');
    expect(events).not.toContain(SECRET);
    expect(await rawStream(h, `KV_${SNAPSHOT_BUCKET}`)).not.toContain(SECRET);
    const history = await admin.get('/v1/events?limit=500');
    expect(history.status).toBe(200);
    expect(history.text).not.toContain(SECRET);
    const exported = await alice.get('/v1/applications/vault/manifest');
    expect(exported.status).toBe(200);
    expect(exported.text).not.toContain(SECRET);
    expect(exported.text).toContain(`secret:${serviceId}/`);
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
    await eventually(
      () => alice.get(stop.headers.location as string),
      (r) => r.body?.state !== 'running',
      60_000,
    );
  });
});
