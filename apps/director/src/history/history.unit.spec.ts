import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { aggregateIds, isCpsError, nameScopes, parseAggregateId } from '@cps/core';
import { InMemoryEventStore, ProjectionRunner, type RecordedEvent } from '@cps/events';
import type { Principal } from '../api/request.js';
import { Directory } from '../core/directory.js';
import { cursorOf, isAfter, parseCursor } from './cursor.js';
import { formatSse, serveEventStream } from './event-stream.js';
import { History, type HistoryOptions } from './history.js';
import { EventsQuerySchema, type EventsQuery, type HistoryEvent } from './history.schemas.js';

const alice: Principal = { userId: 'ualice', username: 'alice', role: 'user', via: 'session' };
const bob: Principal = { userId: 'ubob', username: 'bob', role: 'user', via: 'session' };
const admin: Principal = { userId: 'uadmin', username: 'admin', role: 'admin', via: 'session' };

const query = (q: Record<string, unknown> = {}): EventsQuery => EventsQuerySchema.parse(q);

/** A platform's worth of events in memory, the read model following them. */
class World {
  readonly store = new InMemoryEventStore();
  readonly directory = new Directory();
  readonly runner = new ProjectionRunner(this.store, this.directory);

  async append(
    aggregate: string,
    events: { type: string; data: unknown }[],
    o: { actor?: string; at?: string } = {},
  ): Promise<number> {
    const r = await this.store.append(aggregate, events, {
      expectedVersion: 'any',
      metadata: {
        actor: o.actor ?? 'director',
        correlationId: randomUUID(),
        causationId: randomUUID(),
        ...(o.at ? { at: o.at } : {}),
      },
    });
    await this.runner.waitFor(r.position);
    return r.position;
  }

  history(o: HistoryOptions = {}): History {
    return new History(
      { store: this.store, directory: this.directory, caughtUp: (n) => this.runner.waitFor(n) },
      o,
    );
  }

  /** alice and bob, an application each with a service, an operation and a node; names and identities. */
  async populate(): Promise<void> {
    for (const [u, name] of [
      ['ualice', 'alice'],
      ['ubob', 'bob'],
    ] as const) {
      await this.append(aggregateIds.user(u), [
        {
          type: 'UserRegistered',
          data: {
            userId: u,
            username: name,
            role: 'user',
            passwordHash: 'scrypt$1$2$3$salt$hash',
            credit: 5,
          },
        },
        {
          type: 'TokenCreated',
          data: {
            tokenId: `t${u}`,
            kind: 'session',
            name: 'login',
            hash: 'f'.repeat(64),
            scopes: ['read'],
            expiresAt: 'x',
          },
        },
      ]);
      const app = `a${u}`;
      await this.append(aggregateIds.name(nameScopes.applicationsOf(u), 'web'), [
        { type: 'NameClaimed', data: { holder: app } },
      ]);
      await this.append(
        aggregateIds.app(app),
        [{ type: 'ApplicationCreated', data: { appId: app, owner: u, name: 'web', description: '' } }],
        { actor: `user:${u}` },
      );
      await this.append(
        aggregateIds.app(app),
        [
          {
            type: 'ServiceAdded',
            data: {
              serviceId: `s${u}`,
              name: 'db',
              type: 'mysql',
              cloud: 'local',
              config: { password: 'cps-sealed:v1:x' },
            },
          },
        ],
        { actor: `user:${u}` },
      );
      await this.append(aggregateIds.operation(`o${u}`), [
        {
          type: 'OperationRequested',
          data: { operationId: `o${u}`, kind: 'start-service', owner: u, appId: app, serviceId: `s${u}` },
        },
      ]);
      await this.append(
        aggregateIds.service(app, `s${u}`),
        [{ type: 'ServiceStateChanged', data: { from: 'INIT', to: 'PROLOGUE', reason: 'start' } }],
        { actor: `manager:s${u}` },
      );
      await this.append(aggregateIds.node(`n${u}`), [
        {
          type: 'NodeRecorded',
          data: { nodeId: `n${u}`, kind: 'manager', appId: app, serviceId: `s${u}`, cloud: 'local' },
        },
      ]);
      await this.append(aggregateIds.operation(`o${u}`), [{ type: 'OperationSucceeded', data: {} }]);
    }
    await this.append(aggregateIds.identity({ role: 'manager', id: 'sualice' }), [
      {
        type: 'EnrollmentOffered',
        data: { identity: { role: 'manager', id: 'sualice' }, tokenHash: 'e'.repeat(64), expiresAt: 'x' },
      },
    ]);
  }
}

/** Every event of every page, following `nextCursor`. */
const walk = async (
  h: History,
  p: Principal,
  q: Record<string, unknown>,
): Promise<{ events: HistoryEvent[]; pages: number }> => {
  const events: HistoryEvent[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = await h.page(p, query({ ...q, ...(after ? { after } : {}) }));
    events.push(...page.events);
    after = page.nextCursor;
    pages++;
    if (pages > 10_000) throw new Error('pages do not end');
  } while (after);
  return { events, pages };
};

describe('cursors', () => {
  it('name the place after an event, and only what this API hands out', () => {
    const e = (commit: number, index: number, endOfCommit: boolean) =>
      ({ position: { commit, index }, endOfCommit }) as RecordedEvent;
    expect(cursorOf(e(7, 2, true))).toBe('7');
    expect(cursorOf(e(7, 1, false))).toBe('7.1');
    expect(parseCursor('7')).toEqual({ commit: 7 });
    expect(parseCursor('7.1')).toEqual({ commit: 7, index: 1 });
    expect(parseCursor('0')).toEqual({ commit: 0 });
    for (const bad of ['', 'x', '-1', '01', '7.', '0.1', '1.2.3', '9'.repeat(20), ' 7'])
      expect(parseCursor(bad), bad).toBeUndefined();
    expect(isAfter(e(7, 2, true), { commit: 7, index: 1 })).toBe(true);
    expect(isAfter(e(7, 1, false), { commit: 7, index: 1 })).toBe(false);
    expect(isAfter(e(7, 2, true), { commit: 7 })).toBe(false);
    expect(isAfter(e(8, 0, true), { commit: 7 })).toBe(true);
  });
});

describe('History.page', () => {
  let w: World;
  beforeEach(async () => {
    w = new World();
    await w.runner.start();
    await w.populate();
  });
  afterEach(async () => w.runner.stop());

  it('shows a user what they own, and admins everything, with secrets redacted', async () => {
    const h = w.history();
    const mine = (await h.page(alice, query({ limit: 500 }))).events;
    expect(new Set(mine.map((e) => e.aggregate))).toEqual(
      new Set([
        aggregateIds.user('ualice'),
        aggregateIds.app('aualice'),
        aggregateIds.operation('oualice'),
        aggregateIds.service('aualice', 'sualice'),
        aggregateIds.node('nualice'),
      ]),
    );
    expect(mine.every((e) => e.appId === undefined || e.appId === 'aualice')).toBe(true);
    const created = mine.find((e) => e.type === 'ApplicationCreated');
    expect(created).toMatchObject({ appId: 'aualice', actor: 'user:ualice', data: { owner: 'ualice' } });
    expect(mine.find((e) => e.type === 'ServiceStateChanged')).toMatchObject({
      appId: 'aualice',
      serviceId: 'sualice',
      actor: 'manager:sualice',
    });
    expect(mine.find((e) => e.type === 'NodeRecorded')).toMatchObject({
      appId: 'aualice',
      serviceId: 'sualice',
    });
    expect(mine.find((e) => e.type === 'OperationSucceeded')).toMatchObject({ appId: 'aualice' });
    const theirs = (await h.page(bob, query({ limit: 500 }))).events;
    expect(theirs.length).toBe(mine.length);
    expect(theirs.some((e) => e.aggregate.includes('ualice') || e.appId === 'aualice')).toBe(false);
    const all = (await h.page(admin, query({ limit: 500 }))).events;
    expect(all.length).toBe(await countEvents(w));
    expect(all.some((e) => parseAggregateId(e.aggregate).type === 'identity')).toBe(true);
    for (const list of [mine, all]) {
      const text = JSON.stringify(list);
      expect(text).not.toContain('scrypt$');
      expect(text).not.toContain('cps-sealed:');
      expect(text).not.toContain('f'.repeat(64));
      expect(text).not.toContain('e'.repeat(64));
    }
  });

  it('filters by application (id or name), service (id or name), type and time', async () => {
    const h = w.history();
    const byName = (await h.page(alice, query({ application: 'web' }))).events;
    expect(byName.length).toBeGreaterThan(0);
    expect(byName.every((e) => e.appId === 'aualice')).toBe(true);
    expect((await h.page(alice, query({ application: 'aualice' }))).events).toEqual(byName);
    const svc = (await h.page(alice, query({ application: 'web', service: 'db' }))).events;
    expect(svc.map((e) => e.type)).toEqual([
      'ServiceAdded',
      'OperationRequested',
      'ServiceStateChanged',
      'NodeRecorded',
      'OperationSucceeded',
    ]);
    expect((await h.page(alice, query({ service: 'sualice' }))).events).toEqual(svc);
    const typed = (await h.page(admin, query({ type: 'ApplicationCreated,NodeRecorded' }))).events;
    expect(typed.map((e) => e.type).sort()).toEqual([
      'ApplicationCreated',
      'ApplicationCreated',
      'NodeRecorded',
      'NodeRecorded',
    ]);
    // an admin names any application by id
    expect(
      (await h.page(admin, query({ application: 'aubob', type: 'ApplicationCreated' }))).events,
    ).toHaveLength(1);
  });

  it('answers 404 for what is not the caller’s', async () => {
    const h = w.history();
    for (const q of [
      { application: 'aubob' },
      { application: 'nope' },
      { service: 'subob' },
      { application: 'web', service: 'subob' },
    ]) {
      const err = await h.page(alice, query(q)).catch((e: unknown) => e);
      expect(isCpsError(err) && err.code, JSON.stringify(q)).toBe('not_found');
    }
  });

  it('walks pages without gaps or duplicates, cursors inside commits included', async () => {
    await w.append(aggregateIds.app('aualice'), [
      { type: 'ApplicationDescribed', data: { description: 'one' } },
      { type: 'ApplicationDescribed', data: { description: 'two' } },
      { type: 'ApplicationDescribed', data: { description: 'three' } },
    ]);
    const h = w.history();
    for (const p of [alice, admin]) {
      const whole = (await h.page(p, query({ limit: 500 }))).events;
      for (const limit of [1, 2, 3, 7]) {
        const { events, pages } = await walk(h, p, { limit });
        expect(events.map((e) => e.id)).toEqual(whole.map((e) => e.id));
        expect(pages).toBeGreaterThanOrEqual(Math.ceil(whole.length / limit));
      }
    }
  });

  it('looks at no more than the scan limit per request, and says where to go on', async () => {
    for (let i = 0; i < 30; i++)
      await w.append(aggregateIds.user('ubob'), [
        { type: 'CreditGranted', data: { amount: 1, by: 'x', reason: '' } },
      ]);
    await w.append(aggregateIds.app('aualice'), [{ type: 'ApplicationRenamed', data: { name: 'site' } }]);
    const h = w.history({ scanLimit: 10 });
    const read = vi.spyOn(w.store, 'readAll');
    const first = await h.page(alice, query({ type: 'ApplicationRenamed' }));
    expect(first.events).toEqual([]);
    expect(first.nextCursor).toBeDefined();
    expect(commitsAskedFor(read)).toBeLessThanOrEqual(10);
    const { events, pages } = await walk(h, alice, { type: 'ApplicationRenamed' });
    expect(events.map((e) => e.data)).toEqual([{ name: 'site' }]);
    expect(pages).toBeGreaterThan(3);
  });

  it('finds `since` by searching, and stops reading past `until`', async () => {
    const base = Date.parse('2030-01-01T00:00:00Z');
    for (let i = 0; i < 1_000; i++)
      await w.append(
        aggregateIds.user('ualice'),
        [{ type: 'CreditGranted', data: { amount: i, by: 'x', reason: '' } }],
        {
          at: new Date(base + i * 3_600_000).toISOString(),
        },
      );
    const h = w.history();
    const read = vi.spyOn(w.store, 'readAll');
    const since = new Date(base + 900 * 3_600_000).toISOString();
    const page = await h.page(alice, query({ since, type: 'CreditGranted', limit: 500 }));
    expect(page.events.map((e) => (e.data as { amount: number }).amount)).toEqual(
      Array.from({ length: 100 }, (_, i) => 900 + i),
    );
    expect(commitsAskedFor(read)).toBeLessThan(400);
    read.mockClear();
    const until = new Date(base + 10 * 3_600_000).toISOString();
    const early = await h.page(alice, query({ until, type: 'CreditGranted', limit: 20 }));
    expect(early.events.map((e) => (e.data as { amount: number }).amount)).toEqual(
      Array.from({ length: 10 }, (_, i) => i),
    );
    expect(early.nextCursor).toBeUndefined();
    expect(commitsAskedFor(read)).toBeLessThan(100);
  });
});

const countEvents = async (w: World): Promise<number> => (await w.store.readAll()).length;

/** The commits the spied `readAll` calls asked for: a read without a limit asks for all of them. */
const commitsAskedFor = (read: { mock: { calls: [{ limit?: number }?][] } }): number =>
  read.mock.calls.reduce((n, [o]) => n + (o?.limit ?? Infinity), 0);

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

const until = async (what: () => boolean, ms = 2_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

const messages = (text: string): { id: string; event: string; data: HistoryEvent }[] =>
  text
    .split('\n\n')
    .filter((b) => b.startsWith('id: '))
    .map((b) => {
      const f = Object.fromEntries(
        b.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
      );
      return {
        id: f['id'] as string,
        event: f['event'] as string,
        data: JSON.parse(f['data'] as string) as HistoryEvent,
      };
    });

describe('the event stream', () => {
  let w: World;
  beforeEach(async () => {
    w = new World();
    await w.runner.start();
    await w.populate();
  });
  afterEach(async () => w.runner.stop());

  it('formats one event per message', () => {
    expect(formatSse({ id: '3.1', event: 'X', data: '{"a":1}' })).toBe(
      'id: 3.1\nevent: X\ndata: {"a":1}\n\n',
    );
    expect(formatSse({ id: '3', event: 'X\nY', data: 'a\r\nb' })).toBe('id: 3\nevent: X Y\ndata: a b\n\n');
  });

  it('replays after a cursor, then follows live, only what the caller may see, with keepalives', async () => {
    const h = w.history({ keepaliveMs: 20 });
    const mine = (await h.page(alice, query({ limit: 500 }))).events;
    const from = mine[2]!;
    const prepared = await h.prepareStream(alice, {}, from.cursor);
    const sink = new Sink();
    const s = prepared.start(sink);
    await until(() => messages(sink.text).length === mine.length - 3);
    expect(messages(sink.text).map((m) => m.data.id)).toEqual(mine.slice(3).map((e) => e.id));
    await w.append(aggregateIds.app('aubob'), [{ type: 'ApplicationRenamed', data: { name: 'x' } }]);
    await w.append(aggregateIds.app('aualice'), [{ type: 'ApplicationRenamed', data: { name: 'y' } }]);
    await until(() => messages(sink.text).length === mine.length - 2);
    const last = messages(sink.text).at(-1)!;
    expect(last).toMatchObject({
      event: 'ApplicationRenamed',
      data: { appId: 'aualice', data: { name: 'y' } },
    });
    expect(last.id).toBe(last.data.cursor);
    await until(() => sink.text.includes(': keepalive\n\n'));
    sink.destroy();
    await s.closed;
    expect(sink.writableEnded || sink.destroyed).toBe(true);
  });

  it('starts live without a cursor, and ends when the caller loses access or on stop', async () => {
    const h = w.history({ keepaliveMs: 20 });
    const sink = new Sink();
    let allowed = true;
    const s = (await h.prepareStream(alice, {}, undefined)).start(sink, {
      stillAllowed: () => Promise.resolve(allowed),
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(messages(sink.text)).toEqual([]);
    await w.append(aggregateIds.app('aualice'), [{ type: 'ApplicationRenamed', data: { name: 'z' } }]);
    await until(() => messages(sink.text).length === 1);
    allowed = false;
    await s.closed;
    expect(sink.writableEnded).toBe(true);

    const other = (await h.prepareStream(alice, {}, undefined)).start(new Sink());
    await h.stop();
    await other.closed;
  });

  it('replays from `since` and ends once past `until`', async () => {
    const base = Date.parse('2030-01-01T00:00:00Z');
    const at = (h: number) => new Date(base + h * 3_600_000).toISOString();
    for (let i = 0; i < 5; i++)
      await w.append(
        aggregateIds.app('aualice'),
        [{ type: 'ApplicationDescribed', data: { description: `d${i}` } }],
        {
          at: at(i),
        },
      );
    const sink = new Sink();
    const s = (
      await w
        .history()
        .prepareStream(alice, { since: Date.parse(at(1)), until: Date.parse(at(3)) }, undefined)
    ).start(sink);
    await s.closed;
    expect(messages(sink.text).map((m) => (m.data.data as { description: string }).description)).toEqual([
      'd1',
      'd2',
    ]);
    expect(sink.writableEnded).toBe(true);
  });

  it('refuses a malformed Last-Event-ID', async () => {
    const err = await w
      .history()
      .prepareStream(alice, {}, 'nope')
      .catch((e: unknown) => e);
    expect(isCpsError(err) && err.code).toBe('validation');
    expect(isCpsError(err) && err.issues[0]?.path).toBe('header.last-event-id');
  });

  it('delivers everything to a slow reader, waiting for the socket to drain', async () => {
    class SlowSink extends Sink {
      constructor() {
        super({ highWaterMark: 16 });
      }
      override _write(chunk: Buffer, enc: BufferEncoding, done: () => void): void {
        setTimeout(() => super._write(chunk, enc, done), 5);
      }
    }
    const sink = new SlowSink();
    const s = serveEventStream({
      sink,
      store: w.store,
      after: 0,
      keepaliveMs: 1_000,
      select: async (e) => ({ id: cursorOf(e), event: e.type, data: '{}' }),
    });
    const total = await countEvents(w);
    await until(() => messages(sink.text.replace(/data: \{\}/g, 'data: null')).length === total);
    await s.close();
  });
});
