import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@cps/testing';
import type { Director } from './director.js';
import { DirectorHarness, type Client } from './director.spec-helpers.js';

describe('two directors on one NATS: same data, one leader, hand-over', () => {
  let h: DirectorHarness;
  let d1: Director;
  let d2: Director;
  let alice1: Client;
  let alice2: Client;
  /** The director leading at the end of a test that changed it. */
  let leader: Director;
  const svc = '/v1/applications/shared/services/work';

  const done = async (c: Client, location: string) => {
    const r = await eventually(
      () => c.get(location),
      (x) => x.body?.state !== 'running',
      90_000,
    );
    expect(r.body.state, JSON.stringify(r.body)).toBe('succeeded');
  };

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d1 = await h.startDirector('d1');
    d2 = await h.startDirector('d2');
    // registered on one, signed in on the other: the session token is good on both
    expect(
      (await h.client(d1).post('/v1/users', { username: 'alice', password: 'alice-password' })).status,
    ).toBe(201);
    alice2 = await h.signIn(d2, 'alice', 'alice-password');
    alice1 = h.client(d1).as(alice2.token);
  });
  afterAll(async () => h?.cleanup());

  it('elects exactly one leader', async () => {
    await eventually(
      async () => [d1.leading, d2.leading],
      ([a, b]) => a !== b,
      10_000,
    );
    for (let i = 0; i < 30; i++) {
      expect(d1.leading && d2.leading).toBe(false);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(d1.leading || d2.leading).toBe(true);
  });

  it('serves the same data from either director', async () => {
    expect((await alice1.get('/v1/me')).body.username).toBe('alice');
    const a = await alice2.post('/v1/applications', { name: 'shared' });
    expect(a.status).toBe(201);
    const seen = await eventually(
      () => alice1.get('/v1/applications/shared'),
      (r) => r.status === 200,
      5_000,
    );
    expect(seen.body.appId).toBe(a.body.appId);
  });

  it('lets exactly one of two racing creates of one name win', async () => {
    const [x, y] = await Promise.all([
      alice1.post('/v1/applications', { name: 'race' }),
      alice2.post('/v1/applications', { name: 'race' }),
    ]);
    expect([x.status, y.status].sort()).toEqual([201, 409]);
    expect([x, y].find((r) => r.status === 409)?.body.code).toBe('name_taken');
  });

  it('starts a service through the follower, then survives the leader going away', async () => {
    expect(
      (await alice1.post('/v1/applications/shared/services', { type: 'helloworld', name: 'work' })).status,
    ).toBe(201);
    const follower = d1.leading ? alice2 : alice1;
    const start = await follower.post(`${svc}/start`);
    expect(start.status).toBe(202);
    await done(follower, start.headers.location as string);
    const managers = async () => (await h.cloud.list()).filter((n) => n.kind === 'manager');
    expect(await managers()).toHaveLength(1);

    const [leader, survivor, survivorClient] = d1.leading ? [d1, d2, alice2] : [d2, d1, alice1];
    await leader.stop();
    await eventually(
      async () => survivor.leading,
      (l) => l,
      10_000,
    );
    const add = await survivorClient.post(`${svc}/nodes`, { nodes: { node: 1 } });
    expect(add.status, add.text).toBe(202);
    await done(survivorClient, add.headers.location as string);
    // the new leader adopted the running manager and nodes: nothing started twice
    expect(await managers()).toHaveLength(1);
    const nodes = (await survivorClient.get(`${svc}/nodes`)).body.nodes as { state: string }[];
    expect(nodes.filter((n) => n.state === 'running').length).toBe(2);
    const stop = await survivorClient.post(`${svc}/stop`);
    await done(survivorClient, stop.headers.location as string);
    expect(await h.cloud.list()).toEqual([]);
  });

  it('brings back what died while no director ran, as soon as the next one leads', async () => {
    const [running, client] = d1.leading ? [d1, alice1] : [d2, alice2];
    const start = await client.post(`${svc}/start`);
    await done(client, start.headers.location as string);
    const [manager] = (await h.cloud.list()).filter((n) => n.kind === 'manager');
    await running.stop();
    process.kill(Number(manager!.instanceId), 'SIGKILL');
    // its periodic reconcile would come only after ten minutes
    const next = await h.startDirector('d3', { reconcileEveryMs: 600_000 });
    await eventually(
      async () => next.leading,
      (l) => l,
      10_000,
    );
    const back = await eventually(
      () => h.cloud.get(manager!.nodeId),
      (n) => n?.state === 'running',
      10_000,
    );
    expect(back!.instanceId).not.toBe(manager!.instanceId);
    leader = next;
  });

  it('finishes an operation a follower accepted and left running when it stopped', async () => {
    const follower = await h.startDirector('d4');
    const viaFollower = await h.signIn(follower, 'alice', 'alice-password');
    const viaLeader = await h.signIn(leader, 'alice', 'alice-password');
    expect(follower.leading).toBe(false);
    expect(
      (await viaFollower.post('/v1/applications/shared/services', { type: 'generic', name: 'late' })).status,
    ).toBe(201);
    const start = await viaFollower.post('/v1/applications/shared/services/late/start');
    expect(start.status).toBe(202);
    // the follower goes away while its manager is still coming up
    await follower.stop();
    const location = start.headers.location as string;
    expect((await viaLeader.get(location)).body.state).toBe('running');
    await done(viaLeader, location);
    expect((await viaLeader.get('/v1/applications/shared/services/late')).body.state).toBe('RUNNING');
  });
});
