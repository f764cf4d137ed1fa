import { serialByKey } from '@cps/core';
import { createRequire } from 'node:module';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import rateLimiterFlexible, {
  type RateLimiterRes as Res,
  type RateLimiterStoreAbstract as StoreAbstract,
} from 'rate-limiter-flexible';
import { toCpsError } from '@cps/bus';

const { RateLimiterRes } = rateLimiterFlexible;
const require = createRequire(import.meta.url);
// the documented base class of limiters with a store of their own (the package's index does not
// re-export it)
const RateLimiterStoreAbstract =
  require('rate-limiter-flexible/lib/RateLimiterStoreAbstract.js') as typeof StoreAbstract;

export const RATE_LIMIT_BUCKET = 'cps_rate_limits';
const MAX_ATTEMPTS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const changedMeanwhile = (e: unknown): boolean =>
  e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamWrongLastSequence;

/** One key's count as kept in KV: points consumed, until when (ms since the epoch; 0: for good). */
interface Count {
  readonly points: number;
  readonly expiresAt: number;
}

export interface LimiterOptions {
  /** Told apart from other limiters' keys by this prefix (letters, digits, `-`). */
  readonly keyPrefix: string;
  readonly points: number;
  readonly durationMs: number;
}

/**
 * Counters of rate limiters (rate-limiter-flexible) kept in JetStream KV, so that every director of
 * a platform counts together. A change is a compare-and-set on the key's revision, tried again when
 * another director wrote in between, and the changes one director makes to a key run one after the
 * other: no count is lost, and a consumed point is a reservation, exact under any concurrency.
 */
export class RateLimits {
  private kv: Promise<KV> | undefined;
  private readonly serially = serialByKey();

  constructor(private readonly nc: NatsConnection) {}

  /**
   * Creates the bucket if it is missing. Its TTL bounds how long a count can be kept: at least the
   * longest duration or block of any limiter over it.
   */
  static async ensure(nc: NatsConnection, ttlMs: number, replicas = 1): Promise<void> {
    await new Kvm(nc).create(RATE_LIMIT_BUCKET, { ttl: ttlMs, history: 1, replicas });
  }

  /** A limiter of `points` per `durationMs` per key, counted in this store. */
  limiter(o: LimiterOptions): StoreAbstract {
    return new KvRateLimiter(this, o);
  }

  /** Adds `points` to the key's count (a new count when there is none or it expired, or `reset`). */
  add(key: string, points: number, durationMs: number, reset: boolean): Promise<Count> {
    return this.serially(key, async () => {
      const kv = await this.bucket();
      for (let attempt = 0; ; attempt++) {
        const now = Date.now();
        const e = await kv.get(key);
        const old = e?.operation === 'PUT' ? parse(e.string()) : undefined;
        const live = old && !reset && (old.expiresAt === 0 || old.expiresAt > now) ? old : undefined;
        const next: Count = live
          ? { points: live.points + points, expiresAt: live.expiresAt }
          : { points, expiresAt: durationMs > 0 ? now + durationMs : 0 };
        try {
          if (e) await kv.update(key, JSON.stringify(next), e.revision);
          else await kv.create(key, JSON.stringify(next));
          return next;
        } catch (err) {
          // another director changed the key since it was read: read it again, a random moment
          // later, so that directors racing for one key do not keep meeting
          if (!changedMeanwhile(err) || attempt >= MAX_ATTEMPTS) throw toCpsError(err, RATE_LIMIT_BUCKET);
          await sleep(Math.random() * Math.min(2 ** attempt, 50));
        }
      }
    });
  }

  /** The key's live count, if any. */
  async get(key: string): Promise<Count | undefined> {
    const e = await (await this.bucket()).get(key);
    const c = e?.operation === 'PUT' ? parse(e.string()) : undefined;
    return c && (c.expiresAt === 0 || c.expiresAt > Date.now()) ? c : undefined;
  }

  /** Forgets the key's count; answers whether there was one. */
  delete(key: string): Promise<boolean> {
    return this.serially(key, async () => {
      const had = (await this.get(key)) !== undefined;
      await (await this.bucket()).delete(key);
      return had;
    });
  }

  private bucket(): Promise<KV> {
    this.kv ??= new Kvm(this.nc).open(RATE_LIMIT_BUCKET);
    return this.kv;
  }
}

const parse = (s: string): Count | undefined => {
  try {
    const v = JSON.parse(s) as Partial<Count>;
    return typeof v.points === 'number' && typeof v.expiresAt === 'number'
      ? { points: v.points, expiresAt: v.expiresAt }
      : undefined;
  } catch {
    return undefined;
  }
};

/** A KV key from a limiter's (`<prefix>:<key>`): KV keys take no `:`. */
const kvKey = (rlKey: string): string => rlKey.replace(/[^-/=.\w]/g, '.');

/** rate-limiter-flexible's store contract, over {@link RateLimits}. */
class KvRateLimiter extends RateLimiterStoreAbstract {
  constructor(
    private readonly counts: RateLimits,
    o: LimiterOptions,
  ) {
    super({ storeClient: counts, keyPrefix: o.keyPrefix, points: o.points, duration: o.durationMs / 1000 });
  }

  _upsert(rlKey: string, points: number, msDuration: number, forceExpire = false): Promise<Count> {
    return this.counts.add(kvKey(rlKey), points, msDuration, forceExpire);
  }

  async _get(rlKey: string): Promise<Count | null> {
    return (await this.counts.get(kvKey(rlKey))) ?? null;
  }

  _delete(rlKey: string): Promise<boolean> {
    return this.counts.delete(kvKey(rlKey));
  }

  _getRateLimiterRes(_rlKey: string, changedPoints: number, c: Count): Res {
    return new RateLimiterRes(
      Math.max(this.points - c.points, 0),
      c.expiresAt === 0 ? -1 : Math.max(c.expiresAt - Date.now(), 0),
      c.points,
      c.points === changedPoints,
    );
  }
}
