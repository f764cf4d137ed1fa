import { ConcurrencyError } from '@cps/core';
import { eventsOfCommit, lastVersionOf, type Commit } from './commit.js';
import { buildCommit, checkAggregate, type StoreOptions } from './prepare.js';
import type {
  AggregateRead,
  AppendOptions,
  AppendResult,
  EventStore,
  NewEvent,
  RecordedEvent,
  Subscription,
} from './types.js';

/** The in-memory event store: same contract as JetStream, for unit tests and tools. */
export class InMemoryEventStore implements EventStore {
  private readonly log: Commit[] = [];
  private readonly heads = new Map<string, { version: number; position: number }>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: StoreOptions = {}) {}

  async append(aggregate: string, events: readonly NewEvent[], o: AppendOptions): Promise<AppendResult> {
    checkAggregate(aggregate);
    const head = this.heads.get(aggregate) ?? { version: 0, position: 0 };
    const expected = o.expectedVersion === 'any' ? head.version : o.expectedVersion;
    if (expected !== head.version) {
      const landed = this.log.find((c) => c.a === aggregate && c.v === expected + 1);
      const first = o.metadata.eventIds?.[0];
      if (landed && first !== undefined && landed.e[0]?.metadata.eventId === first) {
        return { version: lastVersionOf(landed), position: this.log.indexOf(landed) + 1 };
      }
      throw new ConcurrencyError(
        `${aggregate} is at version ${head.version}, expected ${expected}`,
        expected,
        head.version,
      );
    }
    const commit = buildCommit(aggregate, expected + 1, events, o, this.options);
    this.log.push(commit);
    const result = { version: lastVersionOf(commit), position: this.log.length };
    this.heads.set(aggregate, result);
    for (const l of this.listeners) l();
    return Promise.resolve(result);
  }

  async readAggregate(aggregate: string, o: { fromVersion?: number } = {}): Promise<AggregateRead> {
    checkAggregate(aggregate);
    const from = o.fromVersion ?? 0;
    const events: RecordedEvent[] = [];
    this.log.forEach((c, i) => {
      if (c.a === aggregate) events.push(...this.read(c, i + 1).filter((e) => e.aggregateVersion > from));
    });
    const head = this.heads.get(aggregate) ?? { version: 0, position: 0 };
    return Promise.resolve({ version: head.version, position: head.position, events });
  }

  async readAll(o: { after?: number; limit?: number } = {}): Promise<readonly RecordedEvent[]> {
    const after = o.after ?? 0;
    const commits = this.log.slice(after, o.limit === undefined ? undefined : after + o.limit);
    return Promise.resolve(commits.flatMap((c, i) => this.read(c, after + i + 1)));
  }

  subscribeAll(after: number, handler: (e: RecordedEvent) => Promise<void> | void): Subscription {
    let position = after;
    let stopped = false;
    let wake: (() => void) | undefined;
    const listener = (): void => wake?.();
    this.listeners.add(listener);
    const done = (async () => {
      while (!stopped) {
        if (position < this.log.length) {
          const commit = this.log[position] as Commit;
          position++;
          for (const e of this.read(commit, position)) await handler(e);
        } else {
          await new Promise<void>((r) => (wake = r));
        }
      }
    })().finally(() => this.listeners.delete(listener));
    return {
      done,
      stop: async () => {
        stopped = true;
        wake?.();
        await done.catch(() => undefined);
      },
    };
  }

  async head(): Promise<number> {
    return Promise.resolve(this.log.length);
  }

  private read(c: Commit, position: number): RecordedEvent[] {
    const events = eventsOfCommit(c, position);
    return this.options.catalog ? events.map((e) => this.options.catalog!.read(e)) : events;
  }
}
