import { connect } from 'node:net';
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRootCa } from '@cps/core';
import { createCpsClient, CpsApiError, followEvents, unwrap, type HistoryEvent } from '@cps/sdk';
import type { Director } from './director.js';
import { DirectorHarness } from './director.spec-helpers.js';

/** The generated SDK against a real director over HTTPS, as other programs use it. */
describe('the SDK against a director', () => {
  let h: DirectorHarness;
  let d: Director;
  let ca: string;

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    ca = [h.nats.secrets.busCa.certPem, ...h.nats.secrets.busCa.chainPem].join('');
  });
  afterAll(async () => h?.cleanup());

  it('signs in, creates and reads an application with typed calls', async () => {
    const anon = createCpsClient({ url: d.url, ca });
    await unwrap(anon.POST('/v1/users', { body: { username: 'sdk', password: 'sdk-password' } }));
    const session = await unwrap(
      anon.POST('/v1/sessions', { body: { username: 'sdk', password: 'sdk-password' } }),
    );
    const cps = createCpsClient({ url: d.url, ca, token: session.token });
    const created = await unwrap(
      cps.POST('/v1/applications', { body: { name: 'from-sdk', description: 'typed' } }),
    );
    expect(created.name).toBe('from-sdk');
    const read = await unwrap(cps.GET('/v1/applications/{app}', { params: { path: { app: 'from-sdk' } } }));
    expect(read.appId).toBe(created.appId);
    const types = await unwrap(cps.GET('/v1/service-types'));
    expect(types.serviceTypes.map((t) => t.type)).toContain('generic');
  });

  it('throws the director’s code and offending fields', async () => {
    const anon = createCpsClient({ url: d.url, ca });
    const e = await unwrap(anon.POST('/v1/sessions', { body: { username: 'sdk', password: 'wrong' } })).catch(
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(CpsApiError);
    expect(e).toMatchObject({ status: 401, code: 'unauthenticated' });
    const session = await unwrap(
      anon.POST('/v1/sessions', { body: { username: 'sdk', password: 'sdk-password' } }),
    );
    const cps = createCpsClient({ url: d.url, ca, token: session.token });
    const bad = await unwrap(cps.POST('/v1/applications', { body: { name: 'a/b', description: '' } })).catch(
      (err: unknown) => err as CpsApiError,
    );
    expect(bad).toMatchObject({ code: 'validation', issues: [expect.objectContaining({ path: '$.name' })] });
  });

  it('refuses a director whose certificate is not from the given CA', async () => {
    const elsewhere = createRootCa({ commonName: 'another platform', now: new Date(), validForMs: 3600_000 });
    await expect(createCpsClient({ url: d.url, ca: elsewhere.certPem }).GET('/healthz')).rejects.toThrow();
    // without a CA, only the system's CAs are trusted: the platform's own is not among them
    await expect(createCpsClient({ url: d.url }).GET('/healthz')).rejects.toThrow();
    expect((await createCpsClient({ url: d.url, ca }).GET('/healthz')).data?.status).toBe('ok');
  });

  it('follows the live event stream: replays from a time, then live, until aborted', async () => {
    const anon = createCpsClient({ url: d.url, ca });
    const session = await unwrap(
      anon.POST('/v1/sessions', { body: { username: 'sdk', password: 'sdk-password' } }),
    );
    const cps = createCpsClient({ url: d.url, ca, token: session.token });
    const since = new Date().toISOString();
    const before = await unwrap(
      cps.POST('/v1/applications', { body: { name: 'streamed-1', description: '' } }),
    );
    const abort = new AbortController();
    const seen: HistoryEvent[] = [];
    const following = (async () => {
      for await (const e of followEvents(cps, {
        query: { since, type: 'ApplicationCreated' },
        signal: abort.signal,
      })) {
        seen.push(e);
        if (seen.length === 2) abort.abort();
      }
    })().catch((e: unknown) => e);
    const after = await unwrap(
      cps.POST('/v1/applications', { body: { name: 'streamed-2', description: '' } }),
    );
    const ended = await following;
    expect((ended as Error).name).toBe('AbortError');
    expect(seen.map((e) => e.appId)).toEqual([before.appId, after.appId]);
    // a refused stream throws the director's code
    const denied = await followEvents(anon)
      .next()
      .catch((e: unknown) => e);
    expect(denied).toMatchObject({ status: 401, code: 'unauthenticated' });
  });

  it('lets its director stop at once while clients hold connections: a follower, an idle one, a request in flight', async () => {
    const other = await h.startDirector();
    const url = new URL(other.url);
    const cps = createCpsClient({
      url: other.url,
      ca,
      token: (await h.signIn(other, 'sdk', 'sdk-password')).token!,
    });
    // a follower of the live stream
    const following = (async () => {
      for await (const e of followEvents(cps)) void e;
    })().catch((e: unknown) => e);
    // a kept-alive connection, idle
    const agent = new Agent({ keepAlive: true, ca });
    const idle = await new Promise<IncomingMessage>((resolve, reject) =>
      request(new URL('/healthz', url), { agent }, resolve).on('error', reject).end(),
    );
    idle.resume();
    expect(idle.headers.connection).toBe('keep-alive');
    // a request whose body is still coming when the stop begins
    const body = JSON.stringify({ username: 'sdk', password: 'wrong' });
    let inFlight!: ReturnType<typeof request>;
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      const r = request(new URL('/v1/sessions', url), {
        method: 'POST',
        ca,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      r.on('response', resolve).on('error', reject);
      r.write(body.slice(0, 5));
      inFlight = r;
    });
    await sleep(100);

    const started = Date.now();
    const stopped = other.stop();
    // once the director no longer listens, the request's body is finished
    for (;;) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = connect(Number(url.port), url.hostname);
        s.once('connect', () => (s.destroy(), resolve(false))).once('error', () => resolve(true));
      });
      if (refused) break;
      await sleep(20);
    }
    inFlight.end(body.slice(5));
    const res = await answered;
    res.resume();
    expect(res.statusCode).toBe(401);
    expect(res.headers.connection).toBe('close');
    await stopped;
    // well within the grace after which the director cuts what is still open (5 s)
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(await following).toBeUndefined();
    agent.destroy();
  });
});
