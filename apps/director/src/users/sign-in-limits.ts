import { createHash } from 'node:crypto';
import type { RateLimiterRes, RateLimiterStoreAbstract } from 'rate-limiter-flexible';
import { CpsError, RateLimitedError } from '@cps/core';
import type { RateLimits } from './rate-limits.js';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 32);
const DAY = 24 * 3600_000;

export interface SignInLimitOptions {
  /** Failed sign-ins a source (client address and user name) may make per window. */
  readonly perSource: number;
  /** Failed sign-ins per user name, from all sources, per window (see {@link SignInLimits}). */
  readonly perUser: number;
  readonly windowMs: number;
  /** The longest a source waits once it used up its attempts (the back-off doubles up to it). */
  readonly maxBackoffMs: number;
}

/** The longest any count of {@link SignInLimits} is kept: the bucket's TTL must cover it. */
export const SIGN_IN_LIMITS_TTL_MS = DAY;

/** A reserved sign-in attempt: it counts as failed unless `succeeded()` is called. */
export interface SignInAttempt {
  succeeded(): Promise<void>;
}

const isRes = (e: unknown): e is RateLimiterRes =>
  typeof e === 'object' && e !== null && 'msBeforeNext' in e && 'consumedPoints' in e;

/**
 * Limits on password sign-ins, shared by every director (the counts are in KV). An attempt is
 * reserved before the password is checked, so concurrent attempts are counted exactly and only the
 * allowed ones cost a password hash.
 *
 * - Per source (client address and user name): `perSource` failures per window; past them the
 *   source waits, the window the first time, twice as long each further time within a day, up to
 *   `maxBackoffMs`. A successful sign-in clears the source's failures and waits.
 * - Per user name: `perUser` failures per window from all sources. It refuses only sources that
 *   have failed in the window themselves: a source that has not failed is never refused for what
 *   others did, so nobody can lock the real user out by failing on purpose.
 */
export class SignInLimits {
  private readonly source: RateLimiterStoreAbstract;
  private readonly lockouts: RateLimiterStoreAbstract;
  private readonly user: RateLimiterStoreAbstract;

  constructor(
    limits: RateLimits,
    private readonly o: SignInLimitOptions,
  ) {
    this.source = limits.limiter({ keyPrefix: 'login-source', points: o.perSource, durationMs: o.windowMs });
    this.lockouts = limits.limiter({ keyPrefix: 'login-lockouts', points: 1_000_000, durationMs: DAY });
    this.user = limits.limiter({ keyPrefix: 'login-user', points: o.perUser, durationMs: o.windowMs });
  }

  /** Reserves an attempt of `username` from `address`, or refuses it with `rate_limited`. */
  async attempt(address: string, username: string): Promise<SignInAttempt> {
    const sourceKey = sha256(`${address}\n${username}`);
    const userKey = sha256(username);
    const source = await this.source.consume(sourceKey).catch(async (e: unknown) => {
      if (!isRes(e)) throw unavailable(e);
      throw refused(await this.backoff(sourceKey, e));
    });
    const userRefused = await this.user.consume(userKey).then(
      () => undefined,
      (e: unknown) => {
        if (!isRes(e)) throw unavailable(e);
        return e;
      },
    );
    // a source with no failure in the window is never refused for the user name's count
    if (userRefused && source.consumedPoints > 1) {
      // refused unchecked: it counts for neither
      await Promise.all([this.source.reward(sourceKey), this.user.reward(userKey)]).catch(() => undefined);
      throw refused(userRefused.msBeforeNext);
    }
    return {
      succeeded: async () => {
        await Promise.all([
          this.source.delete(sourceKey),
          this.lockouts.delete(sourceKey),
          this.user.reward(userKey),
        ]).catch(() => undefined);
      },
    };
  }

  /**
   * How long a source that used up its attempts waits. The first refusal of a window sets the
   * wait (and counts a lockout); later ones answer what is left of it.
   */
  private async backoff(key: string, res: RateLimiterRes): Promise<number> {
    if (res.consumedPoints !== this.o.perSource + 1) return res.msBeforeNext;
    const n = (await this.lockouts.consume(key).catch((e: unknown) => (isRes(e) ? e : undefined)))
      ?.consumedPoints;
    const waitMs = Math.min(this.o.windowMs * 2 ** Math.max((n ?? 1) - 1, 0), this.o.maxBackoffMs);
    await this.source.block(key, waitMs / 1000).catch(() => undefined);
    return waitMs;
  }
}

const refused = (retryAfterMs: number): RateLimitedError =>
  new RateLimitedError(
    `too many failed sign-ins; retry in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s`,
    Math.max(retryAfterMs, 1),
  );

const unavailable = (e: unknown): CpsError =>
  new CpsError('unavailable', 'sign-in limits cannot be read: try again shortly', [], { cause: e });
