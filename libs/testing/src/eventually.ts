import { inspect } from 'node:util';

/** What `eventually` throws when its condition never held: the last value read is in the message. */
export class EventuallyTimeoutError<T = unknown> extends Error {
  readonly code = 'eventually_timeout';

  constructor(
    readonly ms: number,
    readonly last: T,
  ) {
    super(
      `not accepted within ${ms} ms; last value read: ${inspect(last, { depth: 6, breakLength: 120, maxStringLength: 2_000 })}`,
    );
    this.name = 'EventuallyTimeoutError';
  }
}

/**
 * Polls `read` until `accept` holds and answers the accepted value. Throws an
 * {@link EventuallyTimeoutError} naming the last value read when `ms` pass first, so a condition
 * that never comes fails where it is awaited; an error `read` throws ends the polling with it. For
 * reads from replicas and processes, which converge but may lag a write.
 */
export const eventually = async <T>(
  read: () => Promise<T>,
  accept: (v: T) => boolean,
  ms = 3_000,
): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (accept(v)) return v;
    if (Date.now() > deadline) throw new EventuallyTimeoutError(ms, v);
    await new Promise((r) => setTimeout(r, 20));
  }
};
