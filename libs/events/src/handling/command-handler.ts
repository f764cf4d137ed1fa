import { hasErrorCode, toArray, type Command, type Decider, type Message } from '@cps/core';
import type { SnapshotStore } from '../snapshots/snapshots.js';
import type { EventStore } from '../store/types.js';

/** An aggregate folded in memory: the single writer keeps it between commands. */
export interface Loaded<S> {
  readonly state: S;
  readonly version: number;
  readonly position: number;
  /** Recent request ids already handled (newest last, bounded). */
  readonly handled: readonly string[];
}

export interface CommandHandlerOptions<C extends Command> {
  /** Which aggregate a command addresses, unless `handle` is told. */
  readonly aggregateOf?: (command: C) => string;
  /** Read-decide-append attempts on a concurrency conflict (default 5). */
  readonly maxAttempts?: number;
  readonly snapshots?: SnapshotStore;
  /** Write a snapshot every N versions (default 50). */
  readonly snapshotEvery?: number;
  /** Request ids remembered per aggregate (default 1,000). */
  readonly rememberRequests?: number;
}

export interface HandleResult<E extends Message, S> {
  readonly events: readonly E[];
  readonly state: S;
  readonly version: number;
  /** True when this request id had been handled before: nothing was appended. */
  readonly repeated: boolean;
}

/**
 * Runs a pure decider against an event store: load (memory, then snapshot + newer events), skip a
 * request id seen before, decide, append with the expected version, retry on conflict.
 */
export class CommandHandler<C extends Command, E extends Message, S> {
  private readonly cache = new Map<string, Loaded<S>>();

  constructor(
    private readonly store: EventStore,
    private readonly decider: Decider<C, E, S>,
    private readonly options: CommandHandlerOptions<C>,
  ) {}

  async handle(command: C, aggregate = this.options.aggregateOf?.(command)): Promise<HandleResult<E, S>> {
    if (aggregate === undefined) throw new Error('CommandHandler: no aggregate for this command');
    const attempts = this.options.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      const current = await this.load(aggregate);
      if (current.handled.includes(command.metadata.requestId)) {
        return { events: [], state: current.state, version: current.version, repeated: true };
      }
      const events = toArray(this.decider.decide(command, current.state));
      if (events.length === 0)
        return { events, state: current.state, version: current.version, repeated: false };
      try {
        const r = await this.store.append(aggregate, events, {
          expectedVersion: current.version,
          metadata: {
            actor: command.metadata.actor,
            correlationId: command.metadata.requestId,
            causationId: command.metadata.requestId,
            at: command.metadata.now.toISOString(),
          },
        });
        const next = this.remember(current, events, command.metadata.requestId, r.version, r.position);
        this.cache.set(aggregate, next);
        await this.maybeSnapshot(aggregate, current.version, next);
        return { events, state: next.state, version: next.version, repeated: false };
      } catch (e) {
        this.cache.delete(aggregate);
        if (!hasErrorCode(e, 'concurrency') || attempt >= attempts) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  }

  /** The aggregate's current state (from memory when this process wrote it last). */
  async load(aggregate: string): Promise<Loaded<S>> {
    const cached = this.cache.get(aggregate);
    if (cached) return cached;
    const snap = await this.options.snapshots?.get<{ state: S }>(aggregate);
    let loaded: Loaded<S> = snap
      ? { state: snap.state.state, version: snap.version, position: snap.position, handled: snap.handled }
      : { state: this.decider.initialState(), version: 0, position: 0, handled: [] };
    const read = await this.store.readAggregate(aggregate, {
      fromVersion: loaded.version,
      fromPosition: loaded.position,
    });
    for (const e of read.events) {
      loaded = this.remember(
        loaded,
        [e as unknown as E],
        e.metadata.causationId,
        e.aggregateVersion,
        e.position.commit,
      );
    }
    this.cache.set(aggregate, loaded);
    return loaded;
  }

  /** Forget the in-memory state (e.g. after a restart is simulated in tests). */
  evict(aggregate?: string): void {
    if (aggregate) this.cache.delete(aggregate);
    else this.cache.clear();
  }

  private remember(
    from: Loaded<S>,
    events: readonly E[],
    requestId: string,
    version: number,
    position: number,
  ): Loaded<S> {
    const limit = this.options.rememberRequests ?? 1_000;
    const handled =
      from.handled.at(-1) === requestId ? from.handled : [...from.handled, requestId].slice(-limit);
    return {
      state: events.reduce((s, e) => this.decider.evolve(s, e), from.state),
      version,
      position,
      handled,
    };
  }

  private async maybeSnapshot(aggregate: string, before: number, after: Loaded<S>): Promise<void> {
    const every = this.options.snapshotEvery ?? 50;
    if (!this.options.snapshots || Math.floor(after.version / every) === Math.floor(before / every)) return;
    await this.options.snapshots.put(aggregate, {
      version: after.version,
      position: after.position,
      state: { state: after.state },
      handled: after.handled,
    });
  }
}
