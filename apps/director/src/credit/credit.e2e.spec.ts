import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import { ADMIN_PASSWORD, DirectorHarness, type Client } from '../director.spec-helpers.js';

/**
 * Credit as ConPaaS had it (one credit per node-hour, charged when each hour starts; at zero the
 * user's applications stop and nothing new starts) and the node quota, with two directors charging.
 */
describe('credit and quotas', () => {
  let h: DirectorHarness;
  let d1: Director;
  let admin: Client;
  let carol: Client;
  let dave: Client;
  const done = async (c: Client, location: string) =>
    (
      await eventually(
        () => c.get(location),
        (x) => x.body?.state !== 'running',
        90_000,
      )
    ).body as { state: string; reason?: string };
  const agents = async (appId: string) =>
    (await h.cloud.list()).filter((n) => n.kind === 'agent' && n.appId === appId);

  beforeAll(async () => {
    h = await DirectorHarness.start();
    const o = { chargeEveryMs: 300, maxNodesPerUser: 3 };
    d1 = await h.startDirector('d1', o);
    await h.startDirector('d2', o);
    admin = await h.signIn(d1, 'admin', ADMIN_PASSWORD);
    carol = await h.user(d1, 'carol');
    dave = await h.user(d1, 'dave');
    expect(
      (await admin.post('/v1/users/carol/credit', { amount: -47, reason: 'test budget' })).body.credit,
    ).toBe(3);
  });
  afterAll(async () => h?.cleanup());

  it('charges one credit per node-hour, once, with two directors running', async () => {
    await carol.post('/v1/applications', { name: 'c' });
    await carol.post('/v1/applications/c/services', { type: 'helloworld', name: 'hello' });
    const start = await carol.post('/v1/applications/c/services/hello/start');
    expect((await done(carol, start.headers.location as string)).state).toBe('succeeded');
    const after = await eventually(
      async () => (await carol.get('/v1/me')).body.credit as number,
      (c) => c === 2,
      10_000,
    );
    expect(after).toBe(2);
    // charging rounds after carol's charge (both directors would charge if they could) are seen by
    // what they charge another user: erin's first node, then her second
    const erin = await h.user(d1, 'erin');
    const credit = async () => (await erin.get('/v1/me')).body.credit as number;
    const full = await credit();
    await erin.post('/v1/applications', { name: 'e' });
    await erin.post('/v1/applications/e/services', { type: 'helloworld', name: 'hello' });
    const start2 = await erin.post('/v1/applications/e/services/hello/start');
    expect((await done(erin, start2.headers.location as string)).state).toBe('succeeded');
    await eventually(credit, (c) => c === full - 1, 10_000);
    const add = await erin.post('/v1/applications/e/services/hello/nodes', { nodes: { node: 1 } });
    expect((await done(erin, add.headers.location as string)).state).toBe('succeeded');
    await eventually(credit, (c) => c === full - 2, 10_000);
    expect((await carol.get('/v1/me')).body.credit).toBe(2);
    const stop = await erin.post('/v1/applications/e/stop');
    expect((await done(erin, stop.headers.location as string)).state).toBe('succeeded');
  });

  it('stops the user’s applications at zero credit and refuses to start anything', async () => {
    const add = await carol.post('/v1/applications/c/services/hello/nodes', { nodes: { node: 2 } });
    expect(add.status).toBe(202);
    await done(carol, add.headers.location as string);
    await eventually(
      async () => (await carol.get('/v1/me')).body.credit as number,
      (c) => c === 0,
      10_000,
    );
    await eventually(
      async () => (await carol.get('/v1/applications/c/services/hello')).body.state as string,
      (s) => s === 'STOPPED',
      60_000,
    );
    const appId = (await carol.get('/v1/applications/c')).body.appId as string;
    await eventually(
      () => agents(appId),
      (a) => a.length === 0,
      20_000,
    );
    const again = await carol.post('/v1/applications/c/services/hello/start');
    expect(again.status).toBe(429);
    expect(again.body.code).toBe('quota_exceeded');
  });

  it('holds a user to the node quota', async () => {
    await dave.post('/v1/applications', { name: 'd' });
    await dave.post('/v1/applications/d/services', { type: 'helloworld', name: 'hello' });
    const start = await dave.post('/v1/applications/d/services/hello/start');
    expect((await done(dave, start.headers.location as string)).state).toBe('succeeded');
    const add = await dave.post('/v1/applications/d/services/hello/nodes', { nodes: { node: 4 } });
    const op = await done(dave, add.headers.location as string);
    expect(op.state).toBe('failed');
    expect(op.reason).toMatch(/at most 3 nodes per user/);
    const appId = (await dave.get('/v1/applications/d')).body.appId as string;
    expect(await agents(appId)).toHaveLength(3);
    const stop = await dave.post('/v1/applications/d/stop');
    await done(dave, stop.headers.location as string);
    await eventually(
      () => agents(appId),
      (a) => a.length === 0,
      20_000,
    );
  });
});
