import createClient, { type Client } from 'openapi-fetch';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { components, operations, paths } from './openapi.gen.js';

/*
 * What the Node and the browser builds of the SDK share: the typed client over a given `fetch`,
 * errors, and the event follower. Nothing here touches a Node module.
 */

export type { components, operations, paths };

/** The director's answer to a failed request (`application/problem+json`). */
export type Problem = components['schemas']['Problem'];
/** One event of the history, as the caller may see it (secrets redacted). */
export type HistoryEvent = components['schemas']['HistoryEvent'];
/** Filters of the live event stream: application, service, types, and where to start. */
export type EventStreamQuery = NonNullable<operations['streamEvents']['parameters']['query']>;

/** A typed client of the cps director: every route of `/openapi.json`, with its inputs and answers. */
export type CpsClient = Client<paths>;

/** A client over `fetch` (with the given token as a bearer, when given). */
export const clientOver = (
  fetch: (input: Request) => Promise<Response>,
  url: string,
  token: string | undefined,
): CpsClient =>
  createClient<paths>({
    baseUrl: url.replace(/\/+$/, ''),
    fetch,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });

/** A refused request, with the director's stable code, message and offending fields. */
const CODE_OF_STATUS: Record<number, string> = {
  400: 'validation',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'unavailable',
  504: 'timeout',
};

export class CpsApiError extends Error {
  override readonly name = 'CpsApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: readonly { path: string; code: string; message: string }[] = [],
  ) {
    super(message);
  }

  /**
   * From an openapi-fetch answer's `error` and `response`. An answer without a problem document
   * (from a proxy, or the server's HTTP parser) gets the code its status stands for.
   */
  static from(error: unknown, response: Response): CpsApiError {
    const p = error as Partial<Problem> | undefined;
    return new CpsApiError(
      response.status,
      typeof p?.code === 'string' ? p.code : (CODE_OF_STATUS[response.status] ?? 'internal'),
      typeof p?.detail === 'string' ? p.detail : `HTTP ${response.status}`,
      Array.isArray(p?.issues) ? p.issues : [],
    );
  }
}

/** The answer's data, or a {@link CpsApiError} thrown with the director's code and issues. */
export const unwrap = async <T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> => {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw CpsApiError.from(error, response);
  return data as T;
};

/** How a follower reconnects: after each of these pauses (ms), the last one repeated. */
const RECONNECT_DELAYS_MS = [250, 500, 1_000, 2_000, 5_000];

export interface FollowOptions {
  readonly query?: EventStreamQuery;
  /** Resume after this event (a previous event's `cursor`). */
  readonly lastEventId?: string;
  readonly signal?: AbortSignal;
  /**
   * Reconnect when the stream ends or the connection fails (a director restarting), resuming after
   * the last event seen, so none is lost or repeated; `onReconnect` hears of each attempt. Refusals
   * (4xx) still throw.
   */
  readonly reconnect?: boolean;
  readonly onReconnect?: (attempt: number, cause: unknown) => void;
  /** Hears of each connection the director accepted (the first, and each reconnection). */
  readonly onOpen?: () => void;
}

/**
 * Follows the director's live event stream (`GET /v1/events/stream`, Server-Sent Events): the
 * events the caller may see, oldest first, from `query.after` / `lastEventId`, else `query.since`,
 * else from now. Ends when the director ends the stream (unless `reconnect`); aborting `signal`
 * ends it with an `AbortError`. A refused request throws a {@link CpsApiError}.
 *
 * ```ts
 * for await (const e of followEvents(cps, { query: { application: 'shop' }, reconnect: true })) console.log(e.type);
 * ```
 */
export async function* followEvents(
  cps: CpsClient,
  o: FollowOptions = {},
): AsyncGenerator<HistoryEvent, void, undefined> {
  let last = o.lastEventId;
  for (let attempt = 0; ;) {
    let cause: unknown;
    try {
      for await (const e of streamOnce(cps, { ...o, ...(last ? { lastEventId: last } : {}) })) {
        attempt = 0;
        last = e.cursor;
        yield e;
      }
      if (!o.reconnect) return;
      cause = new Error('the director ended the stream');
    } catch (e) {
      const refused = e instanceof CpsApiError && e.status >= 400 && e.status < 500;
      if (o.signal?.aborted || !o.reconnect || refused) throw e;
      cause = e;
    }
    o.onReconnect?.(attempt + 1, cause);
    await pause(RECONNECT_DELAYS_MS[Math.min(attempt++, RECONNECT_DELAYS_MS.length - 1)] ?? 5_000, o.signal);
  }
}

/** One connection to the stream, until it ends. */
async function* streamOnce(cps: CpsClient, o: FollowOptions): AsyncGenerator<HistoryEvent, void, undefined> {
  const { error, response } = await cps.GET('/v1/events/stream', {
    params: { query: o.query ?? {} },
    headers: { accept: 'text/event-stream', ...(o.lastEventId ? { 'last-event-id': o.lastEventId } : {}) },
    parseAs: 'stream',
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (error !== undefined || !response.ok || !response.body) throw CpsApiError.from(error, response);
  o.onOpen?.();
  const messages = response.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream());
  for await (const m of messages) if (m.data) yield JSON.parse(m.data) as HistoryEvent;
}

/** Waits `ms`, or rejects with the signal's reason once it is aborted. */
const pause = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const done = (): void => {
      signal?.removeEventListener('abort', abort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const abort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
