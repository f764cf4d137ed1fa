import type { WaitOptions } from './wait.js';

/**
 * An operation under way, as its kind's `run` sees it: what was recorded when it was requested, what
 * the request handed over in memory (only where it began), and the means to record progress and wait.
 */
export interface RunningOperation<I = unknown, G = unknown> {
  readonly operationId: string;
  /** The user whose operation it is. */
  readonly owner: string;
  readonly appId?: string;
  readonly serviceId?: string;
  /** What was recorded with it, for a director that takes it over (a deploy's plan, secrets redacted). */
  readonly input: I | undefined;
  /** What the request that started it handed over in memory; undefined after a takeover. */
  readonly given: G | undefined;
  /** Records a step of its progress (`OperationProgressed`). */
  step(text: string): Promise<void>;
  /** Throws while this director stops: the operation is then left running, for the leader to take over. */
  alive(): void;
  /** Waits until `done` answers true (see `waitUntil`), and stops waiting when this director stops. */
  until(what: string, done: () => boolean, o: WaitOptions): Promise<void>;
  /**
   * Waits until another operation (a director's or a manager's) has succeeded; its failure fails
   * this one as `conflict`, with its reason (or `failed` when it gave none).
   */
  succeeded(operationId: string, what: string, failed: string, o: WaitOptions): Promise<void>;
}

/**
 * What an operation of one kind does, defined once and run by `Operations`: where it is requested,
 * and again by the leader when the director that ran it is gone. `run` carries it out to its end,
 * from its beginning each time: every step has a request id derived from the operation id, so what was
 * done before a takeover is not done twice. Its answer is the operation's `result`; what it throws fails
 * the operation, the error's message becoming its reason.
 */
export interface OperationKind<I = unknown, G = unknown> {
  readonly kind: string;
  run(op: RunningOperation<I, G>): Promise<unknown>;
}

/** Declares an operation kind: `I`, what is recorded with it; `G`, what its request hands over in memory. */
export const defineOperation = <I = undefined, G = undefined>(k: OperationKind<I, G>): OperationKind<I, G> =>
  k;
