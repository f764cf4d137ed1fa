import type { Writable } from 'node:stream';
import { aggregateIds, NotFoundError, ValidationError } from '@cps/core';
import type { EventStore, RecordedEvent } from '@cps/events';
import type { Logger } from 'pino';
import type { Principal } from '../api/request.js';
import { Directory } from '../core/directory.js';
import { cursorOf, isAfter, parseCursor, readFrom, type Cursor } from './cursor.js';
import { serveEventStream, type EventStream, type SseMessage } from './event-stream.js';
import type {
  ApplicationAt,
  ApplicationAtQuery,
  EventPage,
  EventsQuery,
  EventStreamQuery,
  HistoryEvent,
} from './history.schemas.js';
import { redactSecrets } from './redact.js';
import { mayRead, Ownership, type Place } from './visibility.js';

export interface HistoryOptions {
  /** Most events one `GET /v1/events` looks at before answering with what it found (default 10,000). */
  readonly scanLimit?: number;
  /** SSE keepalive comment period (default 15 s). */
  readonly keepaliveMs?: number;
  /**
   * How far apart the clocks of the event writers may be (default 60 s): `since` and `until`
   * skip and stop reading by time with this margin.
   */
  readonly clockSkewMs?: number;
  /** Longest wait for the read model to show an event's owner (default 2 s). */
  readonly catchUpWaitMs?: number;
}

export interface HistoryDeps {
  readonly store: Pick<EventStore, 'readAll' | 'subscribeAll' | 'head' | 'readAggregate'>;
  readonly directory: Pick<Directory, 'apps' | 'services' | 'operations' | 'nodes' | 'appOf' | 'servicesOf'>;
  /** Resolves once the read model shows the commit at `position`. */
  readonly caughtUp: (position: number) => Promise<void>;
  readonly log?: Logger;
}

/** What a request asks for, resolved: ids and times, no names. */
interface Filter {
  readonly appId?: string;
  readonly serviceId?: string;
  readonly types?: ReadonlySet<string>;
  readonly since?: number;
  readonly until?: number;
}

/** A stream about to start: where it reads from and what it sends. */
export interface PreparedStream {
  /**
   * Starts writing to `sink` (its headers already sent); `stillAllowed` is asked at every
   * keepalive, `context` names the request in the log lines of the stream's end.
   */
  start(
    sink: Writable,
    o?: { stillAllowed?: () => Promise<boolean>; context?: Record<string, unknown> },
  ): EventStream;
}

const BATCH_MIN = 16;
const BATCH_MAX = 1_000;
/** Below this many commits, `since` scans rather than searching. */
const SEEK_LINEAR = 256;

/**
 * The event history a user may read: their own user events, their applications' events and
 * their services' (from the managers too), their operations and their nodes; admins read
 * everything. Every event leaves redacted. Pages scan the global log forward from a cursor, at
 * most `scanLimit` events per request; the stream follows it live.
 */
export class History {
  private readonly scanLimit: number;
  private readonly keepaliveMs: number;
  private readonly skewMs: number;
  private readonly catchUpWaitMs: number;
  private readonly streams = new Set<EventStream>();

  constructor(
    private readonly deps: HistoryDeps,
    o: HistoryOptions = {},
  ) {
    this.scanLimit = o.scanLimit ?? 10_000;
    this.keepaliveMs = o.keepaliveMs ?? 15_000;
    this.skewMs = o.clockSkewMs ?? 60_000;
    this.catchUpWaitMs = o.catchUpWaitMs ?? 2_000;
  }

  /** One page of history after `q.after`, oldest first. */
  async page(p: Principal, q: EventsQuery): Promise<EventPage> {
    const filter = this.filterFor(p, q);
    const head = await this.deps.store.head();
    let after = await this.startOf(q.after, filter, head);
    const own = new Ownership(this.deps.directory);
    const settle = this.settler();
    const events: HistoryEvent[] = [];
    let scanned = 0;
    let batch = Math.min(BATCH_MAX, Math.max(BATCH_MIN, q.limit));
    while (after < head && scanned < this.scanLimit) {
      const n = Math.min(batch, head - after, this.scanLimit - scanned);
      const read = await this.deps.store.readAll({ after, limit: n });
      after += n;
      batch = Math.min(BATCH_MAX, batch * 2);
      for (const e of read) {
        if (q.after && !isAfter(e, q.after)) continue;
        scanned++;
        own.learn(e);
        if (this.pastUntil(e, filter)) return { events };
        const v = await this.view(p, filter, own, settle, e);
        if (!v) continue;
        events.push(v);
        if (events.length >= q.limit) {
          const last = e.position.commit >= head && e.endOfCommit;
          return last ? { events } : { events, nextCursor: cursorOf(e) };
        }
      }
    }
    return after < head ? { events, nextCursor: String(after) } : { events };
  }

  /**
   * Checks a stream request (filters, `Last-Event-ID` before `after`) and finds where it starts:
   * after the cursor, else at `since`, else at the head (live only).
   */
  async prepareStream(
    p: Principal,
    q: EventStreamQuery,
    lastEventId: string | undefined,
  ): Promise<PreparedStream> {
    let cursor = q.after;
    if (lastEventId !== undefined && lastEventId !== '') {
      const c = parseCursor(lastEventId);
      if (!c)
        throw new ValidationError('invalid request: header.last-event-id is not a cursor', [
          {
            path: 'header.last-event-id',
            code: 'custom',
            message: 'not a cursor this API handed out',
          },
        ]);
      cursor = c;
    }
    const filter = this.filterFor(p, q);
    const head = await this.deps.store.head();
    const after = cursor || filter.since !== undefined ? await this.startOf(cursor, filter, head) : head;
    return {
      start: (sink, { stillAllowed, context } = {}) => {
        const began = Date.now();
        const own = new Ownership(this.deps.directory);
        const settle = this.settler();
        const select = async (e: RecordedEvent): Promise<SseMessage | 'end' | undefined> => {
          if (cursor && !isAfter(e, cursor)) return undefined;
          own.learn(e);
          if (this.pastUntil(e, filter)) return 'end';
          const v = await this.view(p, filter, own, settle, e);
          return v ? { id: v.cursor, event: v.type, data: JSON.stringify(v) } : undefined;
        };
        const s = serveEventStream({
          sink,
          store: this.deps.store,
          after,
          select,
          keepaliveMs: this.keepaliveMs,
          ...(stillAllowed ? { stillAllowed } : {}),
          onError: (err) => this.deps.log?.warn({ err }, 'event stream failed'),
        });
        this.streams.add(s);
        void s.closed.then(() => {
          this.streams.delete(s);
          this.deps.log?.info({ ...context, ms: Date.now() - began }, 'event stream ended');
        });
        return s;
      },
    };
  }

  /**
   * An application (deleted ones too) as it was just after the event at `q.at`, or at `q.time`
   * (default: now): its own events and its services' folded, up to that moment, by the read model's
   * own code into a fresh one. Reads only that application's streams, never the whole log.
   */
  async applicationAt(p: Principal, ref: string, q: ApplicationAtQuery): Promise<ApplicationAt> {
    const appId = this.appIdOf(p, ref);
    const own = await this.deps.store.readAggregate(aggregateIds.app(appId));
    const serviceIds = new Set(
      own.events.flatMap((e) =>
        e.type === 'ServiceAdded' ? [(e.data as { serviceId: string }).serviceId] : [],
      ),
    );
    const theirs = await Promise.all(
      [...serviceIds].map((id) => this.deps.store.readAggregate(aggregateIds.service(appId, id))),
    );
    const events = [...own.events, ...theirs.flatMap((r) => r.events)].sort(
      (a, b) => a.position.commit - b.position.commit || a.position.index - b.position.index,
    );
    const within = (e: RecordedEvent): boolean =>
      q.at !== undefined ? !isAfter(e, q.at) : q.time === undefined || Date.parse(e.metadata.at) <= q.time;
    const then = new Directory();
    let last: RecordedEvent | undefined;
    let folded = 0;
    for (const e of events) {
      if (!within(e)) continue;
      then.handle(e);
      last = e;
      folded++;
    }
    const app = then.apps.get(appId);
    return {
      at: {
        cursor: last ? cursorOf(last) : '0',
        events: folded,
        ...(last ? { time: last.metadata.at } : {}),
      },
      ...(app
        ? { application: { appId, name: app.name, description: app.description, deleted: app.deleted } }
        : {}),
      services: (app ? then.servicesOf(app) : []).map((s) => ({
        serviceId: s.serviceId,
        name: s.name,
        type: s.type,
        cloud: s.cloud,
        state: s.state,
        nodes: Object.entries(s.nodes).map(([nodeId, n]) => ({
          nodeId,
          role: n['role'] ?? '',
          state: n['state'] ?? '',
        })),
      })),
    };
  }

  /** Ends every open stream (the server is stopping). */
  async stop(): Promise<void> {
    await Promise.all([...this.streams].map((s) => s.close()));
  }

  // ---- filters

  private filterFor(p: Principal, q: EventStreamQuery): Filter {
    const appId = q.application === undefined ? undefined : this.appIdOf(p, q.application);
    const serviceId = q.service === undefined ? undefined : this.serviceIdOf(p, appId, q.service);
    return {
      ...(appId !== undefined ? { appId } : {}),
      ...(serviceId !== undefined ? { serviceId } : {}),
      ...(q.type ? { types: new Set(q.type) } : {}),
      ...(q.since !== undefined ? { since: q.since } : {}),
      ...(q.until !== undefined ? { until: q.until } : {}),
    };
  }

  /** An application the caller may read (deleted ones too, by id), by id or by the caller's name. */
  private appIdOf(p: Principal, ref: string): string {
    const d = this.deps.directory;
    const byId = d.apps.get(ref);
    if (byId && (p.role === 'admin' || byId.owner === p.userId)) return byId.appId;
    const byName = d.appOf(p.userId, ref);
    if (byName) return byName.appId;
    throw new NotFoundError(`no application ${ref}`);
  }

  /** A service by id (in `appId`, or in any application the caller may read), or by name in `appId`. */
  private serviceIdOf(p: Principal, appId: string | undefined, ref: string): string {
    const d = this.deps.directory;
    const byId = d.services.get(ref);
    if (byId) {
      const owner = d.apps.get(byId.appId)?.owner;
      const readable = p.role === 'admin' || owner === p.userId;
      if (readable && (appId === undefined || byId.appId === appId)) return byId.serviceId;
    }
    if (appId !== undefined) {
      const app = d.apps.get(appId);
      const live = app ? d.servicesOf(app).find((s) => s.name === ref) : undefined;
      if (live) return live.serviceId;
      const removed = [...d.services.values()].filter((s) => s.appId === appId && s.name === ref).at(-1);
      if (removed) return removed.serviceId;
    }
    throw new NotFoundError(`no service ${ref}${appId === undefined ? '' : ` in ${appId}`}`);
  }

  // ---- reading

  /** The position to read from (exclusive): the cursor's, moved forward to `since` if later. */
  private async startOf(cursor: Cursor | undefined, f: Filter, head: number): Promise<number> {
    const from = cursor ? readFrom(cursor) : 0;
    return f.since === undefined ? from : this.seek(f.since - this.skewMs, from, head);
  }

  /**
   * The last position whose commit was recorded before `time`, searched between `lo` and `hi`
   * (commit times grow along the log, give or take the writers' clock skew).
   */
  private async seek(time: number, lo: number, hi: number): Promise<number> {
    while (hi - lo > SEEK_LINEAR) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const [first] = await this.deps.store.readAll({ after: mid - 1, limit: 1 });
      const at = first ? Date.parse(first.metadata.at) : Number.NaN;
      if (at < time) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /** True once the log is past `until` (with the clock skew margin): nothing later can match. */
  private pastUntil(e: RecordedEvent, f: Filter): boolean {
    return f.until !== undefined && Date.parse(e.metadata.at) >= f.until + this.skewMs;
  }

  /** Waits (once per reader, bounded) for the read model to catch up with a position. */
  private settler(): (position: number) => Promise<void> {
    let gaveUp = false;
    return async (position) => {
      if (gaveUp) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.catchUpWaitMs)));
      gaveUp = await Promise.race([this.deps.caughtUp(position).then(() => false), late]);
      clearTimeout(timer);
    };
  }

  private async view(
    p: Principal,
    f: Filter,
    own: Ownership,
    settle: (position: number) => Promise<void>,
    e: RecordedEvent,
  ): Promise<HistoryEvent | undefined> {
    if (f.types && !f.types.has(e.type)) return undefined;
    const at = Date.parse(e.metadata.at);
    if (f.since !== undefined && !(at >= f.since)) return undefined;
    if (f.until !== undefined && !(at < f.until)) return undefined;
    let place: Place = own.place(e);
    if (!place.known) {
      await settle(e.position.commit);
      place = own.place(e);
    }
    if (!mayRead(p, place)) return undefined;
    if (f.appId !== undefined && place.appId !== f.appId) return undefined;
    if (f.serviceId !== undefined && place.serviceId !== f.serviceId) return undefined;
    return toHistoryEvent(e, place);
  }
}

/** An event as the history shows it: its place, its actor, and its data redacted. */
export const toHistoryEvent = (
  e: RecordedEvent,
  place: Pick<Place, 'appId' | 'serviceId'>,
): HistoryEvent => ({
  id: e.metadata.eventId,
  cursor: cursorOf(e),
  position: { commit: e.position.commit, index: e.position.index },
  at: e.metadata.at,
  type: e.type,
  aggregate: e.aggregate,
  ...(place.appId !== undefined ? { appId: place.appId } : {}),
  ...(place.serviceId !== undefined ? { serviceId: place.serviceId } : {}),
  actor: e.metadata.actor,
  data: redactSecrets(e.data),
});
