import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { toCpsError } from '@cps/bus';

export const LEASE_STREAM = 'CPS_LEASES';
const subject = (name: string, epoch: number): string => `cps.lease.${name}.${epoch}`;

/**
 * Creates the lease stream if it is missing (leases expire with the stream's age limit). A cluster
 * that has just formed may fail a replicated stream's creation (`error creating store for stream`):
 * it is asked again, up to five times.
 */
export const ensureLeaseStream = async (nc: NatsConnection, replicas = 1): Promise<void> => {
  const jsm = await jetstreamManager(nc);
  for (let attempt = 1; ; attempt++) {
    try {
      return await createLeaseStream(jsm, replicas);
    } catch (e) {
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
};

const createLeaseStream = async (jsm: JetStreamManager, replicas: number): Promise<void> => {
  try {
    await jsm.streams.info(LEASE_STREAM);
  } catch {
    await jsm.streams
      .add({
        name: LEASE_STREAM,
        subjects: ['cps.lease.>'],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: replicas,
        max_age: 3600 * 1_000_000_000,
        duplicate_window: 120 * 1_000_000_000,
      })
      .catch((e: unknown) => {
        if (!/already in use/i.test((e as Error).message)) throw toCpsError(e, LEASE_STREAM);
      });
  }
};

export interface LeaseOptions {
  /** The lease's name (one per singleton duty set, e.g. `director`). */
  readonly name: string;
  /** Who asks (e.g. `director:d1`). */
  readonly holder: string;
  /** Length of one lease epoch (default 5 s). */
  readonly epochMs?: number;
  readonly now?: () => number;
  readonly onChange?: (leading: boolean) => void;
}

/**
 * Leader election on create-only writes. Time is cut in epochs of `epochMs`; epoch `e` belongs to
 * whoever first appends `cps.lease.<name>.<e>` with expected-last-subject-sequence 0 (and a message
 * id, so a retry of the same append is recognised and racing appends on a replicated stream cannot
 * both win: on nats-server 2.9 a clustered stream may let two expectations pass, message ids hold).
 * The holder of an epoch claims the next one from the middle of its epoch; the others only after
 * the next epoch has begun plus a grace, so leadership stays put while its holder lives, and moves
 * within about two epochs when it dies. Nobody leads an epoch it does not hold: two leaders never
 * overlap (clocks assumed in step within a small fraction of an epoch).
 */
export class Lease {
  private timer: NodeJS.Timeout | undefined;
  private held = new Set<number>();
  private leadingNow = false;
  private readonly js: JetStreamClient;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: LeaseOptions,
  ) {
    this.js = jetstream(nc);
  }

  private get epochMs(): number {
    return this.o.epochMs ?? 5_000;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** True while this holder owns the current epoch. */
  get leading(): boolean {
    return this.held.has(Math.floor(this.now() / this.epochMs));
  }

  start(): void {
    const tick = (): void => {
      void this.tick().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, Math.max(50, this.epochMs / 10));
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held.clear();
    this.report();
    await Promise.resolve();
  }

  private async tick(): Promise<void> {
    const now = this.now();
    const epoch = Math.floor(now / this.epochMs);
    const into = now - epoch * this.epochMs;
    // the holder renews early; others wait for a grace after the epoch began
    if (!this.held.has(epoch) && into >= this.epochMs / 5) await this.claim(epoch);
    if (this.held.has(epoch) && into >= this.epochMs / 2) await this.claim(epoch + 1);
    for (const e of this.held) if (e < epoch) this.held.delete(e);
    this.report();
  }

  private async claim(epoch: number): Promise<void> {
    if (this.held.has(epoch)) return;
    const h = natsHeaders();
    h.set('Nats-Expected-Last-Subject-Sequence', '0');
    // the same id for every contender: of racing appends exactly one is stored, the others are told
    // `duplicate` and read who holds the epoch
    h.set('Nats-Msg-Id', `lease.${this.o.name}.${epoch}`);
    try {
      const ack = await this.js.publish(subject(this.o.name, epoch), this.o.holder, {
        headers: h,
        timeout: 2_000,
      });
      if (!ack.duplicate || (await this.holderOf(epoch)) === this.o.holder) this.held.add(epoch);
    } catch {
      // wrong last sequence: somebody else holds the epoch; other failures: try again next tick
    }
  }

  private async holderOf(epoch: number): Promise<string | undefined> {
    const jsm = await jetstreamManager(this.nc);
    const m = await jsm.streams.getMessage(LEASE_STREAM, { last_by_subj: subject(this.o.name, epoch) });
    return m?.string();
  }

  private report(): void {
    const leading = this.leading;
    if (leading !== this.leadingNow) {
      this.leadingNow = leading;
      this.o.onChange?.(leading);
    }
  }
}
