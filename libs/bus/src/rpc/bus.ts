import { randomUUID } from 'node:crypto';
import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import {
  CpsError,
  ValidationError,
  isCpsError,
  issuesFromZod,
  type ErrorBody,
  type ErrorCode,
} from '@cps/core';
import type { z } from 'zod';
import { subjects, type Address } from '../subjects.js';
import { Headers, type CommandDefinition, type ReplyOf, type RequestOf } from './command.js';

export interface RequestOptions {
  readonly timeoutMs?: number;
  /** Reuse the same id when retrying a request yourself; handlers answer a repeat from their cache. */
  readonly requestId?: string;
  readonly correlationId?: string;
  /** Extra attempts after a timeout or a missing responder, with the same request id. */
  readonly retries?: number;
}

export interface HandlerContext {
  readonly requestId: string;
  readonly correlationId: string;
  readonly subject: string;
}

export type Handler<C extends CommandDefinition> = (
  data: z.output<C['request']>,
  ctx: HandlerContext,
) => Promise<ReplyOf<C>> | ReplyOf<C>;

export interface BusOptions {
  readonly defaultTimeoutMs?: number;
  /** Bounded cache of recent replies by request id (idempotent retries). */
  readonly replyCacheSize?: number;
  /** Called with errors that are not CpsErrors (they reach the caller as `internal`). */
  readonly onInternalError?: (err: unknown, subject: string) => void;
}

interface Outcome {
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs;
  readonly retryable?: boolean;
}

interface Registration {
  readonly subject: string;
  readonly onMessage: (m: Msg, nc: NatsConnection) => void;
  sub: Subscription;
}

/** True when `p` settled within `ms`; false (and `p` left running) otherwise. */
const within = async (p: Promise<unknown>, ms: number): Promise<boolean> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
};

const enc = new TextEncoder();
const dec = new TextDecoder();
const QUEUE = 'cps';

const decodeJson = (m: Msg): unknown => {
  if (m.data.length === 0) return undefined;
  try {
    return JSON.parse(dec.decode(m.data)) as unknown;
  } catch (e) {
    throw new ValidationError(
      'payload is not valid JSON',
      [{ path: '$', code: 'invalid_json', message: 'payload is not valid JSON' }],
      { cause: e },
    );
  }
};

/**
 * Asks again while nobody serves the subject (`unavailable`: a responder being started or handed
 * over), every `everyMs` (default 250), until `forMs` have passed; then the last refusal is thrown.
 * A request nobody received was not delivered, so asking again is safe. Other errors are thrown at
 * once, unless `on` names them too (a `timeout` of a question that changes nothing, say).
 */
export const untilServed = async <T>(
  ask: () => Promise<T>,
  o: { forMs: number; everyMs?: number; on?: readonly ErrorCode[] },
): Promise<T> => {
  const deadline = Date.now() + o.forMs;
  const again = o.on ?? ['unavailable'];
  for (;;) {
    try {
      return await ask();
    } catch (e) {
      if (!(isCpsError(e) && again.includes(e.code)) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, o.everyMs ?? 250));
    }
  }
};

/** Maps nats.js failures to cps error codes. */
export const toCpsError = (e: unknown, subject: string): CpsError => {
  if (isCpsError(e)) return e;
  const err = e as { name?: string; message?: string; code?: string };
  const text = `${err.name ?? ''} ${err.message ?? ''} ${err.code ?? ''}`.toLowerCase();
  if (text.includes('timeout'))
    return new CpsError('timeout', `no reply on ${subject} in time`, [], { cause: e });
  if (text.includes('no responders') || text.includes('503'))
    return new CpsError('unavailable', `nobody serves ${subject}`, [], { cause: e });
  if (text.includes('permission'))
    return new CpsError('forbidden', `not permitted: ${subject}`, [], { cause: e });
  if (text.includes('closed') || text.includes('draining'))
    return new CpsError('unavailable', 'bus connection closed', [], { cause: e });
  return new CpsError('internal', `bus failure on ${subject}: ${err.message ?? String(e)}`, [], { cause: e });
};

/**
 * Typed request/reply over one NATS connection: `request` sends a command defined with
 * `defineCommand`, `handle` serves one. The connection can be swapped (certificate renewal) without
 * dropping in-flight work.
 */
/** A handler being served; `stop` unsubscribes it (requests under way finish). */
export interface Served {
  stop(): Promise<void>;
}

export class Bus {
  private readonly registrations = new Set<Registration>();
  private readonly replyCache = new Map<string, Promise<Outcome>>();
  private readonly inFlight = new Map<NatsConnection, number>();

  constructor(
    private conn: NatsConnection,
    private readonly options: BusOptions = {},
  ) {}

  get connection(): NatsConnection {
    return this.conn;
  }

  /** Sends `command` to `<to>.<command.name>` and returns the validated reply. */
  async request<C extends CommandDefinition>(
    to: Address,
    command: C,
    data: RequestOf<C>,
    o: RequestOptions = {},
  ): Promise<ReplyOf<C>> {
    return this.requestAt(subjects.command(to, command.name), command, data, o);
  }

  /** Sends `command` to an explicit subject (for subjects that are not `<address>.<verb>`). */
  async requestAt<C extends CommandDefinition>(
    subject: string,
    command: C,
    data: RequestOf<C>,
    o: RequestOptions = {},
  ): Promise<ReplyOf<C>> {
    const parsed = command.request.safeParse(data);
    if (!parsed.success)
      throw new ValidationError(`invalid ${command.name} request`, issuesFromZod(parsed.error));
    const h = natsHeaders();
    const requestId = o.requestId ?? randomUUID();
    h.set(Headers.requestId, requestId);
    h.set(Headers.correlationId, o.correlationId ?? requestId);
    const payload = enc.encode(JSON.stringify(parsed.data));
    const attempts = 1 + (o.retries ?? 0);
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await this.track(this.conn, (nc) =>
          nc.request(subject, payload, {
            timeout: o.timeoutMs ?? this.options.defaultTimeoutMs ?? 5_000,
            headers: h,
          }),
        );
        return this.readReply(command, reply, subject);
      } catch (e) {
        const err = toCpsError(e, subject);
        if (!err.retryable || attempt >= attempts || err.code === 'concurrency') throw err;
      }
    }
  }

  /** Serves `command` at `<to>.<command.name>`; invalid input is answered with a `validation` error. */
  handle<C extends CommandDefinition>(to: Address, command: C, handler: Handler<C>): Served {
    return this.handleAt(subjects.command(to, command.name), command, handler);
  }

  /** Serves `command` on a subject pattern; the handler sees the concrete subject in its context. */
  handleAt<C extends CommandDefinition>(subject: string, command: C, handler: Handler<C>): Served {
    const onMessage = (m: Msg, nc: NatsConnection): void => {
      void this.track(nc, () => this.serve(command, handler, m, m.subject));
    };
    const reg: Registration = { subject, onMessage, sub: this.subscribe(this.conn, subject, onMessage) };
    this.registrations.add(reg);
    return {
      stop: async () => {
        this.registrations.delete(reg);
        await reg.sub.drain().catch(() => undefined);
      },
    };
  }

  /** Resolves once the server has every subscription made so far: handlers are then reachable. */
  async flush(): Promise<void> {
    await this.conn.flush();
  }

  /** Fire-and-forget publish of telemetry (heartbeats) on core NATS. */
  publish(subject: string, data: unknown): void {
    this.conn.publish(subject, enc.encode(JSON.stringify(data)));
  }

  /**
   * Moves every handler to `next` and closes the current connection once the requests and
   * handlers it still carries have finished (or `graceMs` passed).
   */
  async swap(next: NatsConnection, graceMs = 30_000): Promise<void> {
    const old = this.conn;
    this.conn = next;
    for (const reg of this.registrations) {
      const oldSub = reg.sub;
      reg.sub = this.subscribe(next, reg.subject, reg.onMessage);
      await next.flush();
      await oldSub.drain();
    }
    const deadline = Date.now() + graceMs;
    while ((this.inFlight.get(old) ?? 0) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await old.drain().catch(() => undefined);
  }

  /**
   * Stops serving, lets the handlers still running finish (5 s at most), and closes the connection:
   * drained while the server answers; closed at once when it does not (a drain waits for the server,
   * which a platform going down has stopped first), after `drainMs` at most.
   */
  async close(drainMs = 1_000): Promise<void> {
    const drained = async (): Promise<void> => {
      for (const reg of this.registrations) await reg.sub.drain().catch(() => undefined);
    };
    await within(drained(), drainMs);
    this.registrations.clear();
    const deadline = Date.now() + 5_000;
    while ((this.inFlight.get(this.conn) ?? 0) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await within(
      this.conn.drain().catch(() => undefined),
      drainMs,
    );
    if (!this.conn.isClosed()) await this.conn.close().catch(() => undefined);
  }

  private subscribe(
    nc: NatsConnection,
    subject: string,
    onMessage: (m: Msg, nc: NatsConnection) => void,
  ): Subscription {
    return nc.subscribe(subject, {
      queue: QUEUE,
      callback: (err, m) => {
        if (!err) onMessage(m, nc);
      },
    });
  }

  private async track<T>(nc: NatsConnection, work: (nc: NatsConnection) => Promise<T>): Promise<T> {
    this.inFlight.set(nc, (this.inFlight.get(nc) ?? 0) + 1);
    try {
      return await work(nc);
    } finally {
      this.inFlight.set(nc, (this.inFlight.get(nc) ?? 1) - 1);
    }
  }

  private readReply<C extends CommandDefinition>(command: C, reply: Msg, subject: string): ReplyOf<C> {
    const code = reply.headers?.get(Headers.error);
    if (code) throw CpsError.fromBody(decodeJson(reply));
    if (reply.headers?.hasError)
      throw toCpsError(new Error(`${reply.headers.code} ${reply.headers.description}`), subject);
    const parsed = command.reply.safeParse(decodeJson(reply));
    if (!parsed.success)
      throw new CpsError(
        'internal',
        `reply to ${command.name} does not match its schema`,
        issuesFromZod(parsed.error),
      );
    return parsed.data as ReplyOf<C>;
  }

  private async serve<C extends CommandDefinition>(
    command: C,
    handler: Handler<C>,
    m: Msg,
    subject: string,
  ): Promise<void> {
    if (!m.reply) return;
    const requestId = m.headers?.get(Headers.requestId) || randomUUID();
    const correlationId = m.headers?.get(Headers.correlationId) || requestId;
    const cacheKey = `${subject}\u0000${requestId}`;
    let pending = this.replyCache.get(cacheKey);
    if (!pending) {
      pending = this.run(command, handler, m, { requestId, correlationId, subject });
      this.remember(cacheKey, pending);
    }
    const out = await pending;
    if (out.retryable) this.replyCache.delete(cacheKey);
    m.respond(out.data, out.headers ? { headers: out.headers } : undefined);
  }

  private async run<C extends CommandDefinition>(
    command: C,
    handler: Handler<C>,
    m: Msg,
    ctx: HandlerContext,
  ): Promise<Outcome> {
    try {
      const input = command.request.safeParse(decodeJson(m));
      if (!input.success)
        throw new ValidationError(`invalid ${command.name} request`, issuesFromZod(input.error));
      const result = await handler(input.data as z.output<C['request']>, ctx);
      const out = command.reply.safeParse(result);
      if (!out.success)
        throw new CpsError(
          'internal',
          `handler of ${command.name} returned an invalid reply`,
          issuesFromZod(out.error),
        );
      return { data: enc.encode(JSON.stringify(out.data)) };
    } catch (e) {
      if (!isCpsError(e) || e.code === 'internal') this.options.onInternalError?.(e, ctx.subject);
      const body: ErrorBody = isCpsError(e) ? e.toBody() : { code: 'internal', message: 'internal error' };
      const h = natsHeaders();
      h.set(Headers.error, body.code);
      return { data: enc.encode(JSON.stringify(body)), headers: h, retryable: isCpsError(e) && e.retryable };
    }
  }

  private remember(key: string, value: Promise<Outcome>): void {
    const limit = this.options.replyCacheSize ?? 10_000;
    this.replyCache.set(key, value);
    if (this.replyCache.size > limit) {
      const oldest = this.replyCache.keys().next().value;
      if (oldest !== undefined) this.replyCache.delete(oldest);
    }
  }
}
