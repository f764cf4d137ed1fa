import { CpsError } from '@cps/core';

export interface WaitOptions {
  /** How long to wait at most. */
  readonly forMs: number;
  /** How long between two looks. */
  readonly everyMs: number;
  /** Runs before each look again; throws to stop waiting (the director stopping, say). */
  readonly check?: () => void;
  /** The error once time is up (default: `timeout`, "waited too long for <what>"). */
  readonly timedOut?: () => Error;
}

/**
 * The director's one wait-and-poll loop: looks at `done` until it answers true, every `everyMs`, for
 * `forMs` at most. `done` may throw to end the wait with its error (what it waits for failed).
 */
export const waitUntil = async (
  what: string,
  done: () => boolean | Promise<boolean>,
  o: WaitOptions,
): Promise<void> => {
  const deadline = Date.now() + o.forMs;
  while (!(await done())) {
    o.check?.();
    if (Date.now() > deadline) throw o.timedOut?.() ?? new CpsError('timeout', `waited too long for ${what}`);
    await new Promise((r) => setTimeout(r, o.everyMs));
  }
};
