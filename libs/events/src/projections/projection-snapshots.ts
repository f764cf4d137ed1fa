import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Position } from '../store/types.js';

/** A projection's state as of `position` (the last event it had handled), in `version`'s shape. */
export interface ProjectionSnapshot<S = unknown> {
  readonly version: number;
  readonly position: Position;
  readonly state: S;
}

/**
 * Where read models keep snapshots of themselves, so that a process starting on a long history
 * loads the snapshot and replays only what came after it. A snapshot is only an optimisation: a
 * missing, unreadable or other-version one means a full replay.
 */
export interface ProjectionSnapshotStore {
  load(name: string): Promise<ProjectionSnapshot | undefined>;
  /** Encodes `snapshot` before it first awaits: the caller may go on changing the state. */
  save(name: string, snapshot: ProjectionSnapshot): Promise<void>;
}

/** The JetStream object-store bucket of projection snapshots (directors only). */
export const PROJECTION_BUCKET = 'cps_projections';

export class InMemoryProjectionSnapshots implements ProjectionSnapshotStore {
  private readonly m = new Map<string, string>();
  load(name: string): Promise<ProjectionSnapshot | undefined> {
    const s = this.m.get(name);
    return Promise.resolve(s === undefined ? undefined : (JSON.parse(s) as ProjectionSnapshot));
  }
  save(name: string, snapshot: ProjectionSnapshot): Promise<void> {
    this.m.set(name, JSON.stringify(snapshot));
    return Promise.resolve();
  }
}

/** Snapshots as objects of a JetStream object store: any size, chunked, replicated like the stream. */
export class ObjectStoreProjectionSnapshots implements ProjectionSnapshotStore {
  private os: Promise<ObjectStore> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: { readonly replicas?: number } = {},
  ) {}

  async load(name: string): Promise<ProjectionSnapshot | undefined> {
    const data = await (await this.bucket()).getBlob(name);
    if (!data) return undefined;
    const s = JSON.parse(new TextDecoder().decode(data)) as Partial<ProjectionSnapshot>;
    return typeof s.version === 'number' && s.position && typeof s.position.commit === 'number'
      ? (s as ProjectionSnapshot)
      : undefined;
  }

  save(name: string, snapshot: ProjectionSnapshot): Promise<void> {
    const data = new TextEncoder().encode(JSON.stringify(snapshot));
    return this.bucket().then(async (os) => {
      await os.putBlob({ name }, data);
    });
  }

  private bucket(): Promise<ObjectStore> {
    this.os ??= new Objm(this.nc).create(PROJECTION_BUCKET, {
      replicas: this.o.replicas ?? 1,
      description: 'snapshots of read models (directors)',
    });
    const os = this.os;
    os.catch(() => (this.os = undefined));
    return os;
  }
}
