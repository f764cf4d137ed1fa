import type { Writable } from 'node:stream';
import type { EventStore, RecordedEvent, Subscription } from '@cps/events';

/** One Server-Sent Event. */
export interface SseMessage {
  readonly id: string;
  readonly event: string;
  readonly data: string;
}

const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ');

/** An event in the `text/event-stream` format (`data` must be one line, as JSON is). */
export const formatSse = (m: SseMessage): string =>
  `id: ${oneLine(m.id)}\nevent: ${oneLine(m.event)}\ndata: ${oneLine(m.data)}\n\n`;

export const KEEPALIVE = ': keepalive\n\n';

export interface EventStreamOptions {
  /** Where the stream goes (the raw HTTP response, its headers already written). */
  readonly sink: Writable;
  readonly store: Pick<EventStore, 'subscribeAll'>;
  /** Global commit position to follow from (exclusive). */
  readonly after: number;
  /** What to send for an event: a message, nothing (`undefined`), or `'end'` to finish the stream. */
  readonly select: (e: RecordedEvent) => Promise<SseMessage | 'end' | undefined>;
  readonly keepaliveMs: number;
  /** Asked at every keepalive: false ends the stream (e.g. the caller's token was revoked). */
  readonly stillAllowed?: () => Promise<boolean>;
  readonly onError?: (e: unknown) => void;
}

export interface EventStream {
  /** Ends the stream: stops the subscription and ends the response. */
  close(): Promise<void>;
  /** Resolves once the stream has ended, for whatever reason. */
  readonly closed: Promise<void>;
}

/**
 * Follows the event stream into a `text/event-stream` response: replays from `after`, then live,
 * one subscription per client. Holds back while the client reads slowly (the subscription waits
 * for the socket to drain), sends a comment every `keepaliveMs`, and stops its subscription when
 * the client goes away.
 */
export const serveEventStream = (o: EventStreamOptions): EventStream => {
  let open = true;
  let resumeWriter: (() => void) | undefined;
  let ended!: () => void;
  const closed = new Promise<void>((r) => (ended = r));

  const write = async (text: string): Promise<void> => {
    if (!open || o.sink.writableEnded || o.sink.destroyed) return;
    if (o.sink.write(text)) return;
    await new Promise<void>((resolve) => {
      resumeWriter = resolve;
      o.sink.once('drain', resolve);
    });
    resumeWriter = undefined;
  };

  const running: { subscription?: Subscription; keepalive?: NodeJS.Timeout } = {};
  const close = async (): Promise<void> => {
    if (!open) return closed;
    open = false;
    clearInterval(running.keepalive);
    resumeWriter?.();
    await running.subscription?.stop();
    if (!o.sink.writableEnded && !o.sink.destroyed) o.sink.end();
    ended();
  };

  const subscription = o.store.subscribeAll(o.after, async (e) => {
    if (!open) return;
    const m = await o.select(e);
    if (m === 'end') return void close();
    if (m) await write(formatSse(m));
  });

  running.subscription = subscription;
  running.keepalive = setInterval(() => {
    if (!open) return;
    if (!o.sink.writableNeedDrain) void write(KEEPALIVE);
    if (o.stillAllowed)
      o.stillAllowed().then(
        (ok) => (ok ? undefined : void close()),
        () => void close(),
      );
  }, o.keepaliveMs);

  o.sink.once('close', () => void close());
  o.sink.on('error', () => void close());
  if (o.sink.destroyed || o.sink.closed || o.sink.writableEnded) void close();
  subscription.done.then(
    () => void close(),
    (e: unknown) => {
      o.onError?.(e);
      void close();
    },
  );
  return { close, closed };
};
