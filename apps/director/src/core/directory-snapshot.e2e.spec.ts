import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Objm } from '@nats-io/obj';
import type { Director } from '../director.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';
import { Directory, type DirectorySnapshot } from './directory.js';

/** Every map of a snapshot with its entries sorted: the same state, whatever the insertion order. */
const normal = (s: DirectorySnapshot): string =>
  JSON.stringify(
    Object.fromEntries(
      Object.entries(s).map(([k, v]) => [
        k,
        Array.isArray(v)
          ? [...(v as [string, unknown][])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          : v,
      ]),
    ),
  );

/** The read model a full replay of the stream builds. */
const replayed = async (d: Director): Promise<Directory> => {
  const fresh = new Directory();
  const head = await d.core.store.head();
  for (let after = 0; after < head; after += 500)
    for (const e of await d.core.store.readAll({ after, limit: 500 })) fresh.handle(e);
  return fresh;
};

describe('the read model starts from its snapshot', () => {
  let h: DirectorHarness;
  let d1: Director;
  let alice: Client;

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d1 = await h.startDirector('d1', { readModelSnapshotEveryMs: 3_600_000 });
    alice = await h.user(d1, 'alice');
  });
  afterAll(async () => h?.cleanup());

  it('a later director restores it, replays only what came after, and holds the same state', async () => {
    expect(d1.restoredFrom).toBeUndefined();
    // users, tokens, a certificate, applications, services, a renamed and a deleted application
    const bob = await h.user(d1, 'bob');
    await alice.post('/v1/tokens', { name: 'ci', scopes: ['read'] });
    await bob.post('/v1/certificates', { bundle: true, days: 1 });
    for (const name of ['one', 'two', 'three'])
      expect((await alice.post('/v1/applications', { name, description: name })).status).toBe(201);
    await alice.post('/v1/applications/one/services', { type: 'helloworld', name: 'hello' });
    await alice.patch('/v1/applications/two', { name: 'deux' });
    expect(await d1.snapshotReadModel()).toBe(true);
    const at = await d1.core.store.head();
    // and more after the snapshot
    await bob.post('/v1/applications', { name: 'later', description: '' });
    const del = await alice.delete('/v1/applications/three');
    expect(del.status).toBe(202);
    for (let i = 0; i < 100; i++) {
      const op = await alice.get(`/v1/operations/${del.body.operationId as string}`);
      if (op.body.state !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const d2 = await h.startDirector('d2');
    expect(d2.restoredFrom?.commit).toBe(at);
    await d2.core.caughtUp(await d2.core.store.head());
    expect(normal(d2.core.directory.snapshot())).toBe(normal((await replayed(d2)).snapshot()));
    // and it answers from it: names after the snapshot, a rename before it, a deletion after it
    const alice2 = await h.signIn(d2, 'alice', 'alice-password');
    const names = ((await alice2.get('/v1/applications')).body.applications as { name: string }[]).map(
      (a) => a.name,
    );
    expect(names).toEqual(['deux', 'one']);
    const bob2 = await h.signIn(d2, 'bob', 'bob-password');
    expect((await bob2.get('/v1/applications/later')).status).toBe(200);
  });

  it('replays the whole stream when the snapshot is unusable', async () => {
    const os = await new Objm(await h.nats.connect({ role: 'director', id: 'x' })).open('cps_projections');
    await os.putBlob(
      { name: 'directory' },
      new TextEncoder().encode('{"version": 999, "position": {"commit": 1, "index": 0}, "state": {}}'),
    );
    const d3 = await h.startDirector('d3');
    expect(d3.restoredFrom).toBeUndefined();
    expect(normal(d3.core.directory.snapshot())).toBe(normal((await replayed(d3)).snapshot()));
  });
});
