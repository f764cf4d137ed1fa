import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export const PRESENCE_BUCKET = 'cps_directors';

/** How often a director says it is alive, and how long the bucket keeps what it said. */
export const PRESENCE_BEAT_MS = 2_000;
export const PRESENCE_TTL_MS = 3 * PRESENCE_BEAT_MS;

/**
 * Which director processes are alive (JetStream KV with a TTL): each puts its own key every beat,
 * deletes it when it stops, and the bucket drops the key of one that died within the TTL. A key names
 * one process, not one director id, so a restarted director is not taken for its previous self.
 * The leader uses it to take over only the operations whose director is gone.
 */
export class Presence {
  private kv: Promise<KV> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    /** This process's key: `<directorId>.<random>`. */
    readonly self: string,
    /** Shorter than the bucket's TTL. */
    private readonly beatMs = PRESENCE_BEAT_MS,
  ) {}

  static async ensure(nc: NatsConnection, replicas = 1, ttlMs = PRESENCE_TTL_MS): Promise<void> {
    await new Kvm(nc).create(PRESENCE_BUCKET, { ttl: ttlMs, history: 1, replicas });
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(() => undefined), this.beatMs);
    this.timer.unref();
  }

  /** Gone at once: the leader need not wait for the TTL to take over what this process ran. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await (await this.bucket()).delete(this.self).catch(() => undefined);
  }

  /** True while the process with key `id` beats. */
  async alive(id: string): Promise<boolean> {
    const e = await (await this.bucket()).get(id);
    return e?.operation === 'PUT';
  }

  private async beat(): Promise<void> {
    await (await this.bucket()).put(this.self, new Date().toISOString());
  }

  private bucket(): Promise<KV> {
    this.kv ??= new Kvm(this.nc).open(PRESENCE_BUCKET);
    return this.kv;
  }
}

/**
 * True when the director that runs an operation is gone: it is not beating, or the operation names
 * none (recorded before directors said who runs what).
 */
export const abandoned = async (presence: Presence, runner: string | undefined): Promise<boolean> =>
  runner === undefined || !(await presence.alive(runner));
