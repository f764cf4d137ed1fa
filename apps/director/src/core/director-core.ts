import { createHash } from 'node:crypto';
import { aggregateIds, type Command, type Decider, type Message } from '@cps/core';
import { CommandHandler, type EventStore, type ProjectionRunner, type SnapshotStore } from '@cps/events';
import type { PlatformSecrets } from '@cps/platform';
import type { Directory } from './directory.js';
import type { NameCommand, NameEvent, NameState } from './name-claims.js';

/** Who asks: the request id (the same when asked again) and the actor recorded on the events. */
export interface Actor {
  readonly requestId: string;
  readonly actor: string;
}

/** A stable id derived from a seed (a request id): the same seed, the same id. */
export const hashId = (prefix: string, seed: string): string =>
  `${prefix}${createHash('sha256').update(seed).digest('hex').slice(0, 12)}`;

/**
 * Runs commands against one kind of aggregate through its pure decider; the answer carries the
 * commit position, so a caller can wait for the read model to show it (read-your-writes).
 */
export class Aggregates<C extends Command, E extends Message, S> {
  private readonly handler: CommandHandler<C, E, S>;

  constructor(store: EventStore, decider: Decider<C, E, S>, snapshots?: SnapshotStore) {
    this.handler = new CommandHandler(store, decider, {
      ...(snapshots ? { snapshots, snapshotEvery: 50 } : {}),
    });
  }

  async run<T extends C['type']>(
    aggregate: string,
    type: T,
    data: Extract<C, { type: T }>['data'],
    m: { requestId: string; actor: string; now?: Date },
  ): Promise<{ events: readonly E[]; state: S; position: number }> {
    const command = {
      type,
      data,
      metadata: { now: m.now ?? new Date(), requestId: m.requestId, actor: m.actor },
    } as unknown as C;
    const r = await this.handler.handle(command, aggregate);
    const loaded = await this.handler.load(aggregate);
    return { events: r.events, state: r.state, position: loaded.position };
  }

  async state(aggregate: string): Promise<S> {
    return (await this.handler.load(aggregate)).state;
  }

  /** Drops the cached state (another director may have written since). */
  forget(aggregate: string): void {
    this.handler.evict(aggregate);
  }
}

/** Unique names by create-only claims (see `name-claims.ts`). */
export class Names {
  constructor(private readonly claims: Aggregates<NameCommand, NameEvent, NameState>) {}

  async claim(scope: string, name: string, holder: string, requestId: string): Promise<void> {
    const agg = aggregateIds.name(scope, name);
    this.claims.forget(agg);
    await this.claims.run(agg, 'Claim', { scope, name, holder }, { requestId, actor: `claim:${holder}` });
  }

  async release(scope: string, name: string, holder: string, requestId: string): Promise<void> {
    const agg = aggregateIds.name(scope, name);
    this.claims.forget(agg);
    await this.claims.run(agg, 'Release', { holder }, { requestId, actor: `claim:${holder}` });
  }
}

/** What every feature of the director stands on: the store, the read model, name claims, the clock. */
export interface DirectorCore {
  readonly store: EventStore;
  readonly directory: Directory;
  readonly runner: ProjectionRunner;
  /** Where aggregates that keep many events (users, applications) snapshot their state. */
  readonly snapshots: SnapshotStore;
  readonly names: Names;
  readonly secrets: PlatformSecrets;
  now(): Date;
  /** Resolves once the read model shows the commit at `position` (and all before it). */
  caughtUp(position: number): Promise<void>;
}
