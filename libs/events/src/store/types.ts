/**
 * The event store port. One aggregate = one ordered stream of events (its "aggregate key", e.g.
 * `svc.a1.s1`, which becomes the JetStream subject `cps.evt.svc.a1.s1`). Appends are atomic per
 * call: all events of one append land together or none does.
 */
export interface EventMetadata {
  readonly eventId: string;
  /** ISO-8601 time the event was recorded. */
  readonly at: string;
  readonly actor: string;
  readonly correlationId: string;
  /** The request (command) id that caused this event: deciders skip a repeat of it. */
  readonly causationId: string;
}

/** An event as a decider emits it: type, schema version of `data`, data. */
export interface NewEvent<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
  /** Schema version of `data` (defaults to the catalog's latest, or 1). */
  readonly version?: number;
}

export interface Position {
  /** The commit's position in the global log (JetStream stream sequence). */
  readonly commit: number;
  /** Index of the event inside its commit. */
  readonly index: number;
}

export interface RecordedEvent<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly version: number;
  readonly data: Data;
  readonly metadata: EventMetadata;
  readonly aggregate: string;
  /** 1-based position of this event in its aggregate. */
  readonly aggregateVersion: number;
  readonly position: Position;
  /** True for the last event of its commit: everything appended together has now been seen. */
  readonly endOfCommit: boolean;
}

export type ExpectedVersion = number | 'any';

export interface AppendOptions {
  /** The aggregate version the caller decided on; 0 means "must not exist yet". */
  readonly expectedVersion: ExpectedVersion;
  readonly metadata: Omit<EventMetadata, 'eventId' | 'at'> & {
    readonly at?: string;
    readonly eventIds?: readonly string[];
  };
}

export interface AppendResult {
  readonly version: number;
  readonly position: number;
}

export interface AggregateRead {
  readonly version: number;
  /** Global position of the aggregate's last commit (0 when empty). */
  readonly position: number;
  readonly events: readonly RecordedEvent[];
}

export interface Subscription {
  stop(): Promise<void>;
  /** Resolves when the subscription ends; rejects if it failed. */
  readonly done: Promise<void>;
}

export interface EventStore {
  /** Appends atomically; raises `ConcurrencyError` when `expectedVersion` is stale. */
  append(aggregate: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult>;
  /** All events of one aggregate after `fromVersion` (exclusive, default 0). */
  readAggregate(
    aggregate: string,
    options?: { fromVersion?: number; fromPosition?: number },
  ): Promise<AggregateRead>;
  /** Events of every aggregate after global commit position `after` (exclusive), up to `limit`. */
  readAll(options?: { after?: number; limit?: number }): Promise<readonly RecordedEvent[]>;
  /** Catch up from `after`, then follow live; `handler` sees each event once, in order. */
  subscribeAll(after: number, handler: (e: RecordedEvent) => Promise<void> | void): Subscription;
  /** Global position of the last commit. */
  head(): Promise<number>;
}
