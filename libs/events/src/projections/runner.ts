import type { EventStore, Position, RecordedEvent, Subscription } from '../store/types.js';

/** A read model fed by every event of the store, in order. */
export interface Projection {
  readonly name: string;
  handle(event: RecordedEvent): Promise<void> | void;
}

export interface CheckpointStore {
  load(name: string): Promise<Position | undefined>;
  /** May answer synchronously (nothing to wait for). */
  save(name: string, position: Position): Promise<void> | void;
}

export class InMemoryCheckpoints implements CheckpointStore {
  private readonly m = new Map<string, Position>();
  async load(name: string): Promise<Position | undefined> {
    return Promise.resolve(this.m.get(name));
  }
  save(name: string, p: Position): void {
    this.m.set(name, p);
  }
}

/**
 * Catches a projection up from its checkpoint, then follows live events. The checkpoint is the
 * position of the last handled event; a restart resumes after it (at-least-once per commit is
 * avoided by skipping events at or before the checkpoint inside the resumed commit).
 */
export class ProjectionRunner {
  private sub: Subscription | undefined;
  private last: Position | undefined;
  private waiters: { position: number; resolve: () => void }[] = [];
  /** Highest commit whose events have all been handled (or were handled before the checkpoint). */
  private completed = 0;

  constructor(
    private readonly store: EventStore,
    private readonly projection: Projection,
    private readonly checkpoints: CheckpointStore = new InMemoryCheckpoints(),
  ) {}

  get position(): Position | undefined {
    return this.last;
  }

  /** Starts; resolves once every event present at start has been handled. */
  async start(): Promise<void> {
    this.last = await this.checkpoints.load(this.projection.name);
    const head = await this.store.head();
    const from = this.last ? this.last.commit - 1 : 0;
    const caughtUp = this.waitFor(head);
    const after = (e: RecordedEvent): void => {
      if (e.endOfCommit) {
        this.completed = Math.max(this.completed, e.position.commit);
        if (this.waiters.length > 0)
          this.waiters = this.waiters.filter((w) =>
            w.position <= this.completed ? (w.resolve(), false) : true,
          );
      }
    };
    // synchronous projections and checkpoints take no turn of the event loop per event
    this.sub = this.store.subscribeAll(from, (e) => {
      if (this.handledBefore(e)) return after(e);
      const handled = this.projection.handle(e);
      const saved = (): Promise<void> | void => {
        this.last = e.position;
        const s = this.checkpoints.save(this.projection.name, e.position);
        if (s) return s.then(() => after(e));
        after(e);
      };
      return handled ? handled.then(saved) : saved();
    });
    await caughtUp;
  }

  /** Resolves once the projection has handled every event of the commit at `position`. */
  waitFor(position: number): Promise<void> {
    if (position <= this.completed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ position, resolve }));
  }

  private handledBefore(e: RecordedEvent): boolean {
    const l = this.last;
    return (
      l !== undefined &&
      (e.position.commit < l.commit || (e.position.commit === l.commit && e.position.index <= l.index))
    );
  }

  async stop(): Promise<void> {
    await this.sub?.stop();
  }
}
