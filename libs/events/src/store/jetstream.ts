import { randomBytes } from 'node:crypto';
import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  jetstream,
  jetstreamManager,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type PubAck,
} from '@nats-io/jetstream';
import { ConcurrencyError, CpsError, isCpsError } from '@cps/core';
import { EVENT_STREAM, LOG_STREAM, toCpsError } from '@cps/bus';
import { eventsOfCommit, lastVersionOf, msgIdOf, type Commit } from './commit.js';
import { buildCommit, checkAggregate, type StoreOptions } from './prepare.js';
import type {
  AggregateRead,
  AppendOptions,
  AppendResult,
  EventStore,
  NewEvent,
  RecordedEvent,
  Subscription,
} from './types.js';

export interface JetStreamStoreOptions extends StoreOptions {
  readonly stream?: string;
  /** How long an append keeps retrying through timeouts and leader elections (default 30 s). */
  readonly appendDeadlineMs?: number;
  readonly requestTimeoutMs?: number;
}

const SUBJECT_ROOT = 'cps.evt';
const WRONG_LAST_SEQUENCE = 10071;
const REPLICA_LAG_RETRIES = 8;
const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface StoredCommit {
  readonly seq: number;
  readonly commit: Commit;
}

/**
 * Stored commits were validated on append; reading checks their shape cheaply (a full zod parse
 * costs ~45% of replay throughput). Event data is validated by the catalog when one is set.
 */
const parseCommit = (data: Uint8Array, seq: number): StoredCommit => {
  const c = JSON.parse(dec.decode(data)) as Partial<Commit> | null;
  if (!c || typeof c.a !== 'string' || !Number.isInteger(c.v) || !Array.isArray(c.e) || c.e.length === 0) {
    throw new CpsError('internal', `stored commit at ${seq} is malformed`);
  }
  return { seq, commit: c as Commit };
};

const isWrongLastSequence = (e: unknown): boolean => {
  const err = e as { code?: unknown; message?: string; apiError?: () => { err_code?: number } };
  if (typeof err.apiError === 'function' && err.apiError().err_code === WRONG_LAST_SEQUENCE) return true;
  return /wrong last sequence/i.test(err.message ?? '');
};

/** During a leader election the client reports timeouts, "no responders" and "jetstream not enabled". */
const isRetryable = (e: unknown): boolean => {
  if (isCpsError(e)) return e.retryable;
  const text = `${(e as Error).name} ${(e as Error).message}`.toLowerCase();
  return /timeout|no responders|503|not enabled|no suitable peers|leader|temporarily unavailable|disconnect|reconnect/.test(
    text,
  );
};

/** Creates (or checks) the event stream. An administrative step: directors and bootstrap only. */
export const ensureEventStream = async (
  nc: NatsConnection,
  o: { replicas?: number; stream?: string } = {},
): Promise<void> => {
  const jsm = await jetstreamManager(nc);
  const name = o.stream ?? EVENT_STREAM;
  try {
    await jsm.streams.info(name);
  } catch {
    await jsm.streams.add({
      name,
      subjects: [`${SUBJECT_ROOT}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      num_replicas: o.replicas ?? 1,
      allow_direct: true,
      duplicate_window: 120 * 1e9,
      max_msgs_per_subject: -1,
      deny_delete: true,
      deny_purge: true,
    });
  }
};

/**
 * Creates the log stream: high-rate node output kept apart from the event stream, bounded in size
 * and age (oldest lines are dropped first).
 */
export const ensureLogStream = async (
  nc: NatsConnection,
  o: { replicas?: number; maxBytes?: number } = {},
): Promise<void> => {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(LOG_STREAM);
  } catch {
    await jsm.streams.add({
      name: LOG_STREAM,
      subjects: ['cps.log.>'],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: o.replicas ?? 1,
      max_bytes: o.maxBytes ?? 256 * 1024 * 1024,
      max_age: 7 * 24 * 3600 * 1e9,
      max_msg_size: 64 * 1024,
      allow_direct: true,
    });
  }
};

/**
 * The JetStream event store. One commit message per append on subject `cps.evt.<aggregate>`, with
 * `Nats-Expected-Last-Subject-Sequence` (optimistic concurrency) and `Nats-Msg-Id` =
 * `<aggregate>:<firstVersion>` (dedupe of retries, and the guard against nats-server 2.9.10 letting
 * racing writers of a clustered stream both pass the sequence check). Reads of one aggregate use
 * only subject-scoped JetStream API calls, so a manager's permissions can confine it to its own.
 */
export class JetStreamEventStore implements EventStore {
  private readonly js: JetStreamClient;
  private readonly heads = new Map<string, { version: number; seq: number }>();
  private readonly stream: string;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: JetStreamStoreOptions = {},
  ) {
    this.js = jetstream(nc, { timeout: options.requestTimeoutMs ?? 5_000 });
    this.stream = options.stream ?? EVENT_STREAM;
  }

  async append(aggregate: string, events: readonly NewEvent[], o: AppendOptions): Promise<AppendResult> {
    checkAggregate(aggregate);
    const { expected, seq } = await this.expectation(aggregate, o.expectedVersion);
    const commit = buildCommit(aggregate, expected + 1, events, o, this.options);
    const payload = enc.encode(JSON.stringify(commit));
    const deadline = Date.now() + (this.options.appendDeadlineMs ?? 30_000);
    for (let attempt = 0; ; attempt++) {
      let ack: PubAck;
      try {
        ack = await this.js.publish(`${SUBJECT_ROOT}.${aggregate}`, payload, {
          msgID: msgIdOf(aggregate, commit.v),
          expect: { lastSubjectSequence: seq },
          timeout: this.options.requestTimeoutMs ?? 5_000,
        });
      } catch (e) {
        if (isWrongLastSequence(e)) return this.resolve(aggregate, commit, attempt > 0);
        if (isRetryable(e) && Date.now() < deadline) {
          await sleep(Math.min(1_000, 50 * 2 ** attempt));
          continue;
        }
        throw toCpsError(e, `${SUBJECT_ROOT}.${aggregate}`);
      }
      if (ack.duplicate) return this.resolve(aggregate, commit, true);
      const version = lastVersionOf(commit);
      this.heads.set(aggregate, { version, seq: ack.seq });
      return { version, position: ack.seq };
    }
  }

  async readAggregate(
    aggregate: string,
    o: { fromVersion?: number; fromPosition?: number } = {},
  ): Promise<AggregateRead> {
    checkAggregate(aggregate);
    if (o.fromPosition) {
      // after a snapshot, usually nothing follows: one direct get answers that
      const last = await this.lastCommit(aggregate);
      if (!last || last.seq <= o.fromPosition) {
        const head = last ? { version: lastVersionOf(last.commit), seq: last.seq } : undefined;
        if (head) this.heads.set(aggregate, head);
        return { version: head?.version ?? 0, position: head?.seq ?? 0, events: [] };
      }
    } else {
      // a new aggregate, or one written in a single commit (a name claim, a fresh application):
      // one direct get answers, no scan of the stream
      const last = await this.lastCommit(aggregate);
      if (!last) return { version: 0, position: 0, events: [] };
      if (last.commit.v === 1) {
        const head = { version: lastVersionOf(last.commit), seq: last.seq };
        this.heads.set(aggregate, head);
        const from = o.fromVersion ?? 0;
        return {
          version: head.version,
          position: head.seq,
          events: this.toEvents(last).filter((e) => e.aggregateVersion > from),
        };
      }
    }
    const commits = await this.retrying(() =>
      this.readSubject(`${SUBJECT_ROOT}.${aggregate}`, (o.fromPosition ?? 0) + 1),
    );
    const from = o.fromVersion ?? 0;
    const events = commits.flatMap((c) => this.toEvents(c)).filter((e) => e.aggregateVersion > from);
    const last = commits.at(-1);
    if (last) {
      const head = { version: lastVersionOf(last.commit), seq: last.seq };
      this.heads.set(aggregate, head);
      return { version: head.version, position: head.seq, events };
    }
    const known = this.heads.get(aggregate);
    if (o.fromPosition && known) return { version: known.version, position: known.seq, events };
    const tail = o.fromPosition ? await this.lastCommit(aggregate) : undefined;
    return tail
      ? { version: lastVersionOf(tail.commit), position: tail.seq, events }
      : { version: 0, position: 0, events };
  }

  async readAll(o: { after?: number; limit?: number } = {}): Promise<readonly RecordedEvent[]> {
    try {
      return await this.readAllOnce(o);
    } catch (e) {
      throw isCpsError(e) ? e : toCpsError(e, `${SUBJECT_ROOT}.>`);
    }
  }

  private async readAllOnce(o: { after?: number; limit?: number }): Promise<readonly RecordedEvent[]> {
    const head = await this.head();
    const after = o.after ?? 0;
    const until = o.limit === undefined ? head : Math.min(head, after + o.limit);
    if (until <= after) return [];
    const out: RecordedEvent[] = [];
    const consumer = await this.js.consumers.get(this.stream, {
      deliver_policy: 'by_start_sequence' as never,
      opt_start_seq: after + 1,
    });
    const messages = await consumer.consume({ max_messages: 5_000 });
    try {
      for await (const m of messages) {
        if (m.seq <= until) out.push(...this.toEvents(parseCommit(m.data, m.seq)));
        if (m.seq >= until) break;
      }
    } finally {
      messages.stop();
      await consumer.delete().catch(() => undefined);
    }
    return out;
  }

  subscribeAll(after: number, handler: (e: RecordedEvent) => Promise<void> | void): Subscription {
    let stopped = false;
    let stopIterator: (() => void) | undefined;
    const done = (async () => {
      const consumer = await this.js.consumers.get(this.stream, {
        deliver_policy: 'by_start_sequence' as never,
        opt_start_seq: after + 1,
      });
      const messages = await consumer.consume({ max_messages: 5_000 });
      stopIterator = () => void messages.stop();
      if (stopped) messages.stop();
      for await (const m of messages) {
        for (const e of this.toEvents(parseCommit(m.data, m.seq))) {
          // a synchronous handler costs no turn of the event loop per event
          const pending = handler(e);
          if (pending) await pending;
        }
        if (stopped) break;
      }
    })();
    return {
      done,
      stop: async () => {
        stopped = true;
        stopIterator?.();
        await done.catch(() => undefined);
      },
    };
  }

  async head(): Promise<number> {
    return this.retrying(() => this.headOnce());
  }

  private async headOnce(): Promise<number> {
    const r = await this.nc.request(`$JS.API.STREAM.INFO.${this.stream}`, undefined, {
      timeout: this.options.requestTimeoutMs ?? 5_000,
    });
    const info = JSON.parse(r.string()) as {
      state?: { last_seq?: number };
      error?: { description?: string };
    };
    if (!info.state)
      throw new CpsError('unavailable', `stream ${this.stream}: ${info.error?.description ?? 'no state'}`);
    return info.state.last_seq ?? 0;
  }

  private toEvents(c: StoredCommit): RecordedEvent[] {
    const events = eventsOfCommit(c.commit, c.seq);
    const catalog = this.options.catalog;
    return catalog ? events.map((e) => catalog.read(e)) : events;
  }

  private async expectation(
    aggregate: string,
    expectedVersion: number | 'any',
  ): Promise<{ expected: number; seq: number }> {
    if (expectedVersion === 0) return { expected: 0, seq: 0 };
    const known = this.heads.get(aggregate);
    if (known && known.version === expectedVersion) return { expected: expectedVersion, seq: known.seq };
    const last = await this.lastCommitAtLeast(aggregate, expectedVersion === 'any' ? 0 : expectedVersion);
    const version = last ? lastVersionOf(last.commit) : 0;
    if (expectedVersion !== 'any' && version !== expectedVersion) {
      throw new ConcurrencyError(
        `${aggregate} is at version ${version}, expected ${expectedVersion}`,
        expectedVersion,
        version,
      );
    }
    return { expected: version, seq: last?.seq ?? 0 };
  }

  /**
   * The server refused the append (duplicate message id, or wrong last sequence). It is done if the
   * commit stored at our version is this very commit (a retry of an append that landed);
   * otherwise another writer won.
   */
  private async resolve(aggregate: string, commit: Commit, mayBeOurs: boolean): Promise<AppendResult> {
    this.heads.delete(aggregate);
    if (mayBeOurs) {
      const stored = await this.commitAt(aggregate, commit.v);
      if (stored && stored.commit.e[0]?.metadata.eventId === commit.e[0]?.metadata.eventId) {
        return { version: lastVersionOf(commit), position: stored.seq };
      }
    }
    throw new ConcurrencyError(
      `${aggregate}: another writer appended version ${commit.v} first`,
      commit.v - 1,
    );
  }

  private async commitAt(aggregate: string, version: number): Promise<StoredCommit | undefined> {
    const last = await this.lastCommitAtLeast(aggregate, version);
    if (!last || lastVersionOf(last.commit) < version) return undefined;
    if (last.commit.v === version) return last;
    const all = await this.readSubject(`${SUBJECT_ROOT}.${aggregate}`, 1);
    return all.find((c) => c.commit.v === version);
  }

  /**
   * The last commit, read again for a moment while it is older than `version`: direct gets of an R3
   * stream may be answered by a replica that lags the leader by a few milliseconds.
   */
  private async lastCommitAtLeast(aggregate: string, version: number): Promise<StoredCommit | undefined> {
    for (let attempt = 0; ; attempt++) {
      const last = await this.lastCommit(aggregate);
      if (attempt >= REPLICA_LAG_RETRIES || (last ? lastVersionOf(last.commit) : 0) >= version) return last;
      await sleep(10 * (attempt + 1));
    }
  }

  private async lastCommit(aggregate: string): Promise<StoredCommit | undefined> {
    return this.retrying(() => this.lastCommitOnce(aggregate));
  }

  /** Reads are idempotent: retried through reconnects and leader elections until the deadline. */
  private async retrying<T>(read: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.options.appendDeadlineMs ?? 30_000);
    for (let attempt = 0; ; attempt++) {
      try {
        return await read();
      } catch (e) {
        if (!isRetryable(e) || Date.now() >= deadline)
          throw isCpsError(e) ? e : toCpsError(e, `stream ${this.stream}`);
        await sleep(Math.min(1_000, 50 * 2 ** attempt));
      }
    }
  }

  private async lastCommitOnce(aggregate: string): Promise<StoredCommit | undefined> {
    const r = await this.nc.request(
      `$JS.API.DIRECT.GET.${this.stream}.${SUBJECT_ROOT}.${aggregate}`,
      undefined,
      {
        timeout: this.options.requestTimeoutMs ?? 5_000,
      },
    );
    if (r.headers?.code === 404) return undefined;
    if (r.headers?.hasError)
      throw new CpsError('unavailable', `direct get failed: ${r.headers.code} ${r.headers.description}`);
    const seq = Number(r.headers?.get('Nats-Sequence'));
    return parseCommit(r.data, seq);
  }

  /**
   * Reads every commit on `subject` from `startSeq` through an ephemeral push consumer created with
   * the subject-scoped API form (`CONSUMER.CREATE.<stream>.<name>.<subject>`), delivered to this
   * connection's own inbox.
   */
  private async readSubject(subject: string, startSeq: number): Promise<StoredCommit[]> {
    const inbox = createInbox(
      (this.nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix,
    );
    const name = `r${randomBytes(8).toString('hex')}`;
    const commits: StoredCommit[] = [];
    let finish!: () => void;
    let fail!: (e: unknown) => void;
    const finished = new Promise<void>((res, rej) => ((finish = res), (fail = rej)));
    const sub = this.nc.subscribe(inbox, {
      callback: (err, m: Msg) => {
        if (err) return fail(err);
        const meta = ackMeta(m.reply);
        if (!meta) return;
        try {
          commits.push(parseCommit(m.data, meta.seq));
        } catch (e) {
          return fail(e);
        }
        if (meta.pending === 0) finish();
      },
    });
    try {
      const config = {
        name,
        deliver_subject: inbox,
        ack_policy: 'none',
        deliver_policy: startSeq > 1 ? 'by_start_sequence' : 'all',
        ...(startSeq > 1 ? { opt_start_seq: startSeq } : {}),
        filter_subject: subject,
        mem_storage: true,
        num_replicas: 1,
        replay_policy: 'instant',
        inactive_threshold: 2 * 1e9,
      };
      const r = await this.nc.request(
        `$JS.API.CONSUMER.CREATE.${this.stream}.${name}.${subject}`,
        JSON.stringify({ stream_name: this.stream, config }),
        {
          timeout: this.options.requestTimeoutMs ?? 5_000,
        },
      );
      const info = JSON.parse(r.string()) as {
        num_pending?: number;
        delivered?: { consumer_seq?: number };
        error?: { code: number; description: string };
      };
      if (info.error)
        throw new CpsError(
          info.error.code === 403 ? 'forbidden' : 'unavailable',
          `reading ${subject}: ${info.error.description}`,
        );
      if (info.num_pending === 0 && (info.delivered?.consumer_seq ?? 0) === 0) finish();
      const timer = setTimeout(
        () => fail(new CpsError('timeout', `reading ${subject} did not finish`)),
        30_000,
      );
      await finished.finally(() => clearTimeout(timer));
      return commits;
    } finally {
      sub.unsubscribe();
    }
  }
}

/** Stream sequence and pending count from a JetStream delivery's `$JS.ACK...` reply subject. */
const ackMeta = (reply: string | undefined): { seq: number; pending: number } | undefined => {
  if (!reply?.startsWith('$JS.ACK.')) return undefined;
  const t = reply.split('.');
  // v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
  // v2: $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
  const base = t.length === 9 ? 2 : 4;
  return { seq: Number(t[base + 3]), pending: Number(t[base + 6]) };
};
