import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Position } from '../store/types.js';
import type { CheckpointStore } from './runner.js';

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

/** A read model that can be snapshotted: its whole state as a plain value, and back. */
export interface SnapshottableProjection<S> {
  readonly name: string;
  /** The shape of `S`: a snapshot of another version is ignored (a full replay instead). */
  readonly snapshotVersion: number;
  snapshot(): S;
  restore(state: S): void;
}

/**
 * Snapshots of one projection. Give `checkpoints` to its `ProjectionRunner`: at start it restores
 * the latest usable snapshot (of this version, not past the stream's head) and the runner replays
 * only what follows; a missing or unreadable one means a full replay. `save` stores the state with
 * the runner's position.
 */
export class ProjectionSnapshotter<S> {
  /** Where the restored snapshot left off, when the projection started from one. */
  restoredFrom: Position | undefined;
  private savedAt = 0;

  constructor(
    private readonly store: ProjectionSnapshotStore,
    private readonly projection: SnapshottableProjection<S>,
    private readonly o: {
      readonly head: () => Promise<number>;
      readonly onUnreadable?: (err: unknown) => void;
    },
  ) {}

  readonly checkpoints: CheckpointStore = {
    load: async () => {
      const [snap, head] = await Promise.all([
        this.store.load(this.projection.name).catch((err: unknown) => {
          this.o.onUnreadable?.(err);
          return undefined;
        }),
        this.o.head(),
      ]);
      if (!snap || snap.version !== this.projection.snapshotVersion || snap.position.commit > head)
        return undefined;
      this.projection.restore(snap.state as S);
      this.restoredFrom = snap.position;
      this.savedAt = snap.position.commit;
      return snap.position;
    },
    save: () => undefined,
  };

  /**
   * Saves the projection's state as of `position` (the runner's: read it in the same turn as this
   * call), when at least `minCommits` (at least one) commits came since the last snapshot saved or
   * restored here. Answers whether it saved one.
   */
  async save(position: Position | undefined, minCommits = 1): Promise<boolean> {
    if (!position || position.commit - this.savedAt < Math.max(minCommits, 1)) return false;
    await this.store.save(this.projection.name, {
      version: this.projection.snapshotVersion,
      position,
      state: this.projection.snapshot(),
    });
    this.savedAt = Math.max(this.savedAt, position.commit);
    return true;
  }
}
