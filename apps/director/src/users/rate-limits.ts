import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { toCpsError } from '@cps/bus';

export const RATE_LIMIT_BUCKET = 'cps_ratelimits';

/**
 * Failure counters shared by every director (JetStream KV, entries expire with the bucket's TTL).
 * A key holds the times of recent failures; a racing update may lose a count, which only makes the
 * limit a little more lenient, never stricter.
 */
export class RateLimits {
  private kv: Promise<KV> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Creates the bucket if it is missing (TTL: the longest window). */
  static async ensure(nc: NatsConnection, ttlMs: number, replicas = 1): Promise<void> {
    await new Kvm(nc).create(RATE_LIMIT_BUCKET, { ttl: ttlMs, history: 1, replicas });
  }

  /** Milliseconds until `key` may try again (0: not blocked). */
  async blocked(key: string, max: number, windowMs: number): Promise<number> {
    const hits = await this.recent(key, windowMs);
    if (hits.length < max) return 0;
    return Math.max(1, (hits[hits.length - max] as number) + windowMs - this.now().getTime());
  }

  async hit(key: string, windowMs: number): Promise<void> {
    const kv = await this.bucket();
    for (let attempt = 0; attempt < 3; attempt++) {
      const e = await kv.get(key).catch(() => null);
      const hits = [...this.parse(e?.string()), this.now().getTime()]
        .filter((t) => t > this.now().getTime() - windowMs)
        .slice(-100);
      try {
        if (e && e.operation === 'PUT') await kv.update(key, JSON.stringify(hits), e.revision);
        else await kv.create(key, JSON.stringify(hits));
        return;
      } catch {
        // someone else counted at the same time: read again
      }
    }
  }

  private async recent(key: string, windowMs: number): Promise<number[]> {
    const kv = await this.bucket();
    const e = await kv.get(key).catch((err: unknown) => {
      throw toCpsError(err, RATE_LIMIT_BUCKET);
    });
    const since = this.now().getTime() - windowMs;
    return this.parse(e?.operation === 'PUT' ? e.string() : undefined).filter((t) => t > since);
  }

  private parse(s: string | undefined): number[] {
    if (!s) return [];
    try {
      const v = JSON.parse(s) as unknown;
      return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];
    } catch {
      return [];
    }
  }

  private bucket(): Promise<KV> {
    this.kv ??= new Kvm(this.nc).open(RATE_LIMIT_BUCKET);
    return this.kv;
  }
}
