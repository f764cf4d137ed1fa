export interface RestartBackoffOptions {
  /** The wait after a run that lasted long enough, and the first wait of a series (default 250 ms). */
  readonly initialMs?: number;
  /** The longest wait (default 10 s). */
  readonly maxMs?: number;
  /** A run at least this long was a good one: the series starts over (default 60 s). */
  readonly stableMs?: number;
}

/**
 * The wait before restarting a process that exited. After a run of at least `stableMs` the wait
 * is `initialMs`, whatever happened before; each run shorter than that doubles the previous wait,
 * up to `maxMs`. So a process that crashes at once is restarted ever more slowly, and one that ran
 * for a while and then died is restarted at once.
 */
export class RestartBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly stableMs: number;
  private last: number | undefined;

  constructor(o: RestartBackoffOptions = {}) {
    this.initialMs = o.initialMs ?? 250;
    this.maxMs = o.maxMs ?? 10_000;
    this.stableMs = o.stableMs ?? 60_000;
  }

  /** The wait before the next start, after a run that lasted `ranMs`. */
  next(ranMs: number): number {
    this.last =
      this.last === undefined || ranMs >= this.stableMs
        ? this.initialMs
        : Math.min(this.last * 2, this.maxMs);
    return this.last;
  }
}
