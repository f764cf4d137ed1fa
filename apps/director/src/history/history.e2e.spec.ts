import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { ClientRequest, IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../director.js';
import { ADMIN_PASSWORD, DirectorHarness, type Client } from '../director.spec-helpers.js';
import { aggregateIds, parseAggregateId } from '@cps/core';

interface SseEvent {
  readonly id: string;
  readonly event: string;
  readonly data: any;
}

/** A streaming `text/event-stream` reader over HTTPS (the harness client buffers whole answers). */
class SseReader {
  private buffer = '';
  private readonly queue: SseEvent[] = [];
  private waiter: (() => void) | undefined;
  comments = 0;
  ended = false;

  private constructor(
    private readonly req: ClientRequest,
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    readonly body: string,
  ) {}

  static open(
    url: string,
    ca: string,
    token: string,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const o: RequestOptions = {
        method: 'GET',
        ca,
        agent: false,
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers },
      };
      const req = httpsRequest(new URL(path, url), o, (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve(new SseReader(req, res.statusCode ?? 0, res.headers, text)));
          return;
        }
        const reader = new SseReader(req, 200, res.headers, '');
        res.on('data', (c: string) => reader.feed(c));
        res.on('end', () => reader.finish());
        res.on('error', () => reader.finish());
        resolve(reader);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** The next event, or a failure after `ms`. */
  async next(ms = 2_000): Promise<SseEvent> {
    const end = Date.now() + ms;
    while (this.queue.length === 0) {
      const left = end - Date.now();
      if (left <= 0 || this.ended) throw new Error(this.ended ? 'stream ended' : `no event within ${ms} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => (clearTimeout(t), r());
      });
    }
    return this.queue.shift()!;
  }

  close(): void {
    this.req.destroy();
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let cut: number;
    while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments++;
        else {
          const colon = line.indexOf(':');
          fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '');
        }
      }
      if (fields['data'] !== undefined)
        this.queue.push({
          id: fields['id'] ?? '',
          event: fields['event'] ?? 'message',
          data: JSON.parse(fields['data']),
        });
    }
    this.waiter?.();
  }

  private finish(): void {
    this.ended = true;
    this.waiter?.();
  }
}

/** Every event of `GET /v1/events` for a client, following `nextCursor`; also the raw answers. */
const walk = async (c: Client, query = ''): Promise<{ events: any[]; texts: string[]; pages: number }> => {
  const events: any[] = [];
  const texts: string[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const sep = query ? '&' : '';
    const r = await c.get(`/v1/events?${query}${after ? `${sep}after=${encodeURIComponent(after)}` : ''}`);
    expect(r.status, r.text).toBe(200);
    texts.push(r.text);
    events.push(...r.body.events);
    after = r.body.nextCursor;
    if (++pages > 1_000) throw new Error('pages do not end');
  } while (after);
  return { events, texts, pages };
};

/** Every value of a field named `name`, at any depth. */
const fieldValues = (v: unknown, names: ReadonlySet<string>, out: unknown[] = []): unknown[] => {
  if (Array.isArray(v)) for (const x of v) fieldValues(x, names, out);
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      if (names.has(k)) out.push(x);
      fieldValues(x, names, out);
    }
  return out;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('event history over HTTPS', () => {
  let h: DirectorHarness;
  let d: Director;
  let ca: string;
  let admin: Client;
  let alice: Client;
  let bob: Client;
  const appsOf: Record<string, string[]> = { alice: [], bob: [] };
  const secrets: string[] = [];

  const createApp = async (c: Client, name: string): Promise<string> => {
    const r = await c.post('/v1/applications', { name });
    expect(r.status, r.text).toBe(201);
    return r.body.appId as string;
  };

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    ca = [h.nats.secrets.busCa.certPem, ...h.nats.secrets.busCa.chainPem].join('');
    admin = await h.signIn(d, 'admin', ADMIN_PASSWORD);
    alice = await h.user(d, 'alice');
    bob = await h.user(d, 'bob');
    appsOf['alice']!.push(await createApp(alice, 'shop'), await createApp(alice, 'blog'));
    appsOf['bob']!.push(await createApp(bob, 'shop'), await createApp(bob, 'wiki'));
    for (const c of [alice, bob]) {
      const t = await c.post('/v1/tokens', { name: 'ci' });
      expect(t.status).toBe(201);
      secrets.push(t.body.token as string);
    }
    const again = await h.signIn(d, 'alice', 'alice-password');
    for (const c of [admin, alice, bob, again]) secrets.push(c.token!);
    expect((await alice.patch(`/v1/applications/blog`, { description: 'my blog' })).status).toBe(200);
  });
  afterAll(async () => h?.cleanup());

  it('shows each user their own events only, and admins everyone’s', async () => {
    const mine = (await walk(alice)).events;
    const created = mine.filter((e) => e.type === 'ApplicationCreated');
    expect(created.map((e) => e.appId).sort()).toEqual([...appsOf['alice']!].sort());
    expect(
      created.every((e) => e.actor.startsWith('user:') && e.aggregate === aggregateIds.app(e.appId)),
    ).toBe(true);
    expect(mine.some((e) => e.type === 'ApplicationDescribed' && e.data.description === 'my blog')).toBe(
      true,
    );
    expect(mine.some((e) => e.type === 'UserRegistered')).toBe(true);
    expect(mine.some((e) => e.type === 'TokenCreated')).toBe(true);
    const me = (await alice.get('/v1/me')).body.userId as string;
    for (const e of mine) {
      expect(appsOf['bob']!).not.toContain(e.appId);
      const { type } = parseAggregateId(e.aggregate);
      expect(['identity', 'name']).not.toContain(type);
      for (const b of appsOf['bob']!) expect(e.aggregate).not.toContain(b);
      if (type === 'user') expect(e.aggregate).toBe(aggregateIds.user(me));
      expect(Object.keys(e).sort()).toEqual(
        [
          'actor',
          'aggregate',
          'at',
          'cursor',
          'data',
          'id',
          'position',
          'type',
          ...(e.appId ? ['appId'] : []),
          ...(e.serviceId ? ['serviceId'] : []),
        ].sort(),
      );
    }
    const theirs = (await walk(bob)).events;
    expect(
      theirs
        .filter((e) => e.type === 'ApplicationCreated')
        .map((e) => e.appId)
        .sort(),
    ).toEqual([...appsOf['bob']!].sort());
    expect(theirs.some((e) => appsOf['alice']!.includes(e.appId))).toBe(false);

    const all = (await walk(admin)).events;
    const allCreated = all.filter((e) => e.type === 'ApplicationCreated').map((e) => e.appId);
    for (const a of [...appsOf['alice']!, ...appsOf['bob']!]) expect(allCreated).toContain(a);
    expect(all.some((e) => parseAggregateId(e.aggregate).type === 'name')).toBe(true);
    expect(all.length).toBeGreaterThan(mine.length + theirs.length);
  });

  it('filters by application (id or name), type and time', async () => {
    const [shop, blog] = appsOf['alice']!;
    const byName = (await walk(alice, 'application=shop')).events;
    expect(byName.length).toBeGreaterThan(0);
    expect(byName.every((e) => e.appId === shop)).toBe(true);
    expect((await walk(alice, `application=${shop}`)).events).toEqual(byName);
    const blogs = (await walk(alice, 'application=blog&type=ApplicationCreated,ApplicationDescribed')).events;
    expect(blogs.map((e) => [e.type, e.appId])).toEqual([
      ['ApplicationCreated', blog],
      ['ApplicationDescribed', blog],
    ]);
    const typed = (await walk(admin, 'type=ApplicationCreated&type=TokenCreated')).events;
    expect(new Set(typed.map((e) => e.type))).toEqual(new Set(['ApplicationCreated', 'TokenCreated']));
    expect((await walk(admin, `application=${appsOf['bob']![0]}`)).events.length).toBeGreaterThan(0);

    const before = await createApp(alice, 'early');
    await sleep(20);
    const t = new Date().toISOString();
    await sleep(20);
    const after = await createApp(alice, 'late');
    const since = (await walk(alice, `type=ApplicationCreated&since=${encodeURIComponent(t)}`)).events.map(
      (e) => e.appId,
    );
    expect(since).toEqual([after]);
    const until = (await walk(alice, `type=ApplicationCreated&until=${encodeURIComponent(t)}`)).events.map(
      (e) => e.appId,
    );
    expect(until).toContain(before);
    expect(until).not.toContain(after);
    appsOf['alice']!.push(before, after);
  });

  it('walks small pages without gaps or duplicates', async () => {
    for (const c of [alice, admin]) {
      const whole = await c.get('/v1/events?limit=500');
      expect(whole.body.nextCursor).toBeUndefined();
      const ids = (whole.body.events as { id: string }[]).map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const limit of [1, 3]) {
        const paged = await walk(c, `limit=${limit}`);
        expect(paged.events.map((e) => e.id)).toEqual(ids);
        expect(paged.pages).toBeGreaterThanOrEqual(Math.ceil(ids.length / limit));
      }
    }
  });

  it('lets no secret out', async () => {
    for (const c of [alice, bob, admin]) {
      const { events, texts } = await walk(c, 'limit=7');
      const raw = texts.join('\n');
      for (const s of secrets) {
        expect(raw).not.toContain(s);
        // `cps_<id>_<secret>`: the base64url secret may itself contain `_`.
        const secret = /^cps_[^_]+_(.+)$/.exec(s)?.[1];
        expect(secret).toHaveLength(43);
        expect(raw).not.toContain(secret);
      }
      expect(raw).not.toContain('scrypt$');
      expect(raw).not.toContain('cps-sealed:');
      const hashes = fieldValues(
        events,
        new Set(['hash', 'passwordHash', 'tokenHash', 'password', 'userKey']),
      );
      expect(hashes.length).toBeGreaterThan(0);
      expect(new Set(hashes)).toEqual(new Set(['[redacted]']));
    }
  });

  it('refuses bad queries with their paths, and others’ applications with 404', async () => {
    const bad = await alice.get(
      '/v1/events?limit=0&since=yesterday&until=2025-13-45&after=zz&type=no-such!&bogus=1',
    );
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation');
    const paths = (bad.body.issues as { path: string }[]).map((i) => i.path);
    for (const p of ['query.limit', 'query.since', 'query.until', 'query.after', 'query.bogus'])
      expect(paths, JSON.stringify(bad.body.issues)).toContain(p);
    expect(paths.some((p) => p.startsWith('query.type'))).toBe(true);
    expect((await alice.get('/v1/events?limit=501')).status).toBe(400);

    const other = await alice.get(`/v1/events?application=${appsOf['bob']![0]}`);
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('not_found');
    expect((await alice.get('/v1/events?application=wiki')).status).toBe(404);
    expect((await alice.get('/v1/events?application=shop&service=nope')).status).toBe(404);
    expect((await h.client(d).get('/v1/events')).status).toBe(401);

    const s = await SseReader.open(d.url, ca, alice.token!, '/v1/events/stream?after=zz');
    expect(s.status).toBe(400);
    expect(JSON.parse(s.body).issues[0].path).toBe('query.after');
    const h2 = await SseReader.open(d.url, ca, alice.token!, '/v1/events/stream', { 'last-event-id': 'x.y' });
    expect(h2.status).toBe(400);
    expect(JSON.parse(h2.body).issues[0].path).toBe('header.last-event-id');
    const nf = await SseReader.open(
      d.url,
      ca,
      alice.token!,
      `/v1/events/stream?application=${appsOf['bob']![0]}`,
    );
    expect(nf.status).toBe(404);
    expect((await SseReader.open(d.url, ca, 'nope', '/v1/events/stream')).status).toBe(401);
  });

  it('streams events live, and resumes after Last-Event-ID without losing or repeating any', async () => {
    const first = await SseReader.open(d.url, ca, alice.token!, '/v1/events/stream');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toContain('text/event-stream');
    expect(first.headers['x-request-id']).toBeDefined();
    const bobs = await SseReader.open(d.url, ca, bob.token!, '/v1/events/stream');

    const one = await createApp(alice, 'live-one');
    const e1 = await first.next(2_000);
    expect(e1).toMatchObject({
      event: 'ApplicationCreated',
      data: { type: 'ApplicationCreated', appId: one },
    });
    expect(e1.id).toBe(e1.data.cursor);
    first.close();

    const two = await createApp(alice, 'live-two');
    const again = await SseReader.open(d.url, ca, alice.token!, '/v1/events/stream', {
      'last-event-id': e1.id,
    });
    expect(again.status).toBe(200);
    const e2 = await again.next(2_000);
    expect(e2).toMatchObject({ event: 'ApplicationCreated', data: { appId: two } });
    const three = await createApp(alice, 'live-three');
    const e3 = await again.next(2_000);
    expect(e3).toMatchObject({ event: 'ApplicationCreated', data: { appId: three } });
    // nothing repeated: the next event is one that came after
    const four = await createApp(alice, 'live-four');
    expect(await again.next(2_000)).toMatchObject({ event: 'ApplicationCreated', data: { appId: four } });
    again.close();

    // bob saw none of it: his own next event is the first he gets
    const bobsApp = await createApp(bob, 'live-bob');
    expect(await bobs.next(2_000)).toMatchObject({ event: 'ApplicationCreated', data: { appId: bobsApp } });
    bobs.close();

    // `?after=` resumes the same way, with filters
    const typed = await SseReader.open(
      d.url,
      ca,
      alice.token!,
      `/v1/events/stream?after=${encodeURIComponent(e1.id)}&application=live-three`,
    );
    expect((await typed.next(2_000)).data.appId).toBe(three);
    // live-four's creation came between: filtered out, the next is live-three's description
    expect((await alice.patch('/v1/applications/live-three', { description: 'later' })).status).toBe(200);
    expect(await typed.next(2_000)).toMatchObject({
      event: 'ApplicationDescribed',
      data: { appId: three, data: { description: 'later' } },
    });
    typed.close();
  });

  it('documents both routes in the OpenAPI document', async () => {
    const doc = (await h.client(d).get('/openapi.json')).body;
    expect(doc.paths['/v1/events'].get.operationId).toBe('listEvents');
    expect(Object.keys(doc.paths['/v1/events/stream'].get.responses['200'].content)).toEqual([
      'text/event-stream',
    ]);
    expect(doc.components.schemas.HistoryEvent).toBeDefined();
    expect(doc.components.schemas.EventPage).toBeDefined();
    const params = (doc.paths['/v1/events'].get.parameters as { name: string }[]).map((p) => p.name);
    expect(params).toEqual(
      expect.arrayContaining(['application', 'service', 'type', 'since', 'until', 'after', 'limit']),
    );
  });

  it('answers an application as it was just after any of its events, or at a time', async () => {
    await createApp(alice, 'then');
    expect(
      (await alice.post('/v1/applications/then/services', { type: 'helloworld', name: 'web' })).status,
    ).toBe(201);
    expect((await alice.patch('/v1/applications/then/services/web', { name: 'site' })).status).toBe(200);
    expect(
      (await alice.post('/v1/applications/then/services', { type: 'helloworld', name: 'jobs' })).status,
    ).toBe(201);
    expect((await alice.delete('/v1/applications/then/services/jobs')).status).toBeLessThan(300);
    const events = (await walk(alice, 'application=then')).events;
    const at = async (q: string) => {
      const r = await alice.get(`/v1/applications/then/history?${q}`);
      expect(r.status, r.text).toBe(200);
      return r.body as { at: { cursor: string; events: number }; services: { name: string }[] };
    };
    const names = async (q: string) => (await at(q)).services.map((x) => x.name);
    const cursorAfter = (type: string, n = 0) => events.filter((e) => e.type === type)[n]!.cursor;

    const created = await at(`at=${cursorAfter('ApplicationCreated')}`);
    expect(created.services).toEqual([]);
    expect(created.at.cursor).toBe(cursorAfter('ApplicationCreated'));
    expect(await names(`at=${cursorAfter('ServiceAdded')}`)).toEqual(['web']);
    expect(await names(`at=${cursorAfter('ServiceRenamed')}`)).toEqual(['site']);
    expect(await names(`at=${cursorAfter('ServiceAdded', 1)}`)).toEqual(['site', 'jobs']);
    expect(await names('')).toEqual(['site']);
    const now = await at(`time=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(now.services.map((x) => x.name)).toEqual(['site']);
    expect(now.at.events).toBe((await at('')).at.events);
    const before = await alice.get('/v1/applications/then/history?time=2020-01-01T00:00:00Z');
    expect(before.body).toMatchObject({ at: { cursor: '0', events: 0 }, services: [] });
    expect(before.body.application).toBeUndefined();

    const both = await alice.get(`/v1/applications/then/history?at=1&time=2020-01-01T00:00:00Z`);
    expect(both.status).toBe(400);
    expect(both.body.issues.map((i: { path: string }) => i.path)).toContain('query.time');
    const bad = await alice.get('/v1/applications/then/history?at=zz');
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i: { path: string }) => i.path)).toContain('query.at');
    expect((await bob.get('/v1/applications/then/history')).status).toBe(404);
    expect((await bob.get(`/v1/applications/${appsOf['alice']![0]}/history`)).status).toBe(404);
    expect((await admin.get(`/v1/applications/${appsOf['alice']![0]}/history`)).status).toBe(200);
  });

  it('ends open streams when the director stops', async () => {
    const s = await SseReader.open(d.url, ca, admin.token!, '/v1/events/stream');
    expect(s.status).toBe(200);
    await d.stop();
    await expect(s.next(5_000)).rejects.toThrow('stream ended');
  });
});
