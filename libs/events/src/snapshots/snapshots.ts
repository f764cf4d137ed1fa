import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { SNAPSHOT_BUCKET } from '@cps/bus';

/** A folded aggregate: its state (JSON-serialisable), version, position, recent request ids. */
export interface Snapshot<S = unknown> {
  readonly version: number;
  readonly position: number;
  readonly state: S;
  readonly handled: readonly string[];
}

export interface SnapshotStore {
  get<S>(aggregate: string): Promise<Snapshot<S> | undefined>;
  put<S>(aggregate: string, snapshot: Snapshot<S>): Promise<void>;
}

export class InMemorySnapshotStore implements SnapshotStore {
  private readonly m = new Map<string, string>();
  async get<S>(aggregate: string): Promise<Snapshot<S> | undefined> {
    const v = this.m.get(aggregate);
    return Promise.resolve(v === undefined ? undefined : (JSON.parse(v) as Snapshot<S>));
  }
  async put<S>(aggregate: string, snapshot: Snapshot<S>): Promise<void> {
    this.m.set(aggregate, JSON.stringify(snapshot));
    return Promise.resolve();
  }
}

/** Creates the snapshot bucket (administrative: directors and bootstrap). */
export const ensureSnapshotBucket = async (nc: NatsConnection, replicas = 1): Promise<void> => {
  await new Kvm(nc).create(SNAPSHOT_BUCKET, { history: 1, replicas, allow_direct: true });
};

/**
 * Snapshots in the JetStream KV bucket `cps_snapshots`, one key per aggregate. Reads and writes use
 * subject-scoped API calls only (direct get by key, publish on `$KV.<bucket>.<key>`).
 */
export class KvSnapshotStore implements SnapshotStore {
  private kv: Promise<KV> | undefined;

  constructor(private readonly nc: NatsConnection) {}

  async get<S>(aggregate: string): Promise<Snapshot<S> | undefined> {
    const e = await (await this.bucket()).get(aggregate);
    if (!e || e.operation !== 'PUT' || e.length === 0) return undefined;
    return e.json<Snapshot<S>>();
  }

  async put<S>(aggregate: string, snapshot: Snapshot<S>): Promise<void> {
    await (await this.bucket()).put(aggregate, JSON.stringify(snapshot));
  }

  private bucket(): Promise<KV> {
    this.kv ??= new Kvm(this.nc).open(SNAPSHOT_BUCKET, { allow_direct: true });
    return this.kv;
  }
}
