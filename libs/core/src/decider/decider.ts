/** A message: an event (past tense) or a command (imperative). */
export type Message<Type extends string = string, Data = unknown> = Readonly<{ type: Type; data: Data }>;

/** What a command brings from outside so that `decide` stays pure: time, ids, the caller. */
export interface CommandMetadata {
  readonly now: Date;
  /** Unique per logical request; a repeat of a handled request id is skipped by the decider. */
  readonly requestId: string;
  readonly actor: string;
}

export type Command<Type extends string = string, Data = unknown> = Readonly<{
  type: Type;
  data: Data;
  metadata: CommandMetadata;
}>;

/**
 * A pure aggregate: `decide` turns a command and the current state into new events (or
 * throws a CpsError), `evolve` folds one event into the state. No I/O, no clock, no random.
 */
export interface Decider<C extends Command, E extends Message, S> {
  decide(command: C, state: S): E | readonly E[];
  evolve(state: S, event: E): S;
  initialState(): S;
}

export const toArray = <T>(v: T | readonly T[]): readonly T[] =>
  Array.isArray(v) ? (v as readonly T[]) : [v as T];

export const fold = <E extends Message, S>(
  decider: Pick<Decider<never, E, S>, 'evolve' | 'initialState'>,
  events: readonly E[],
): S => events.reduce((s, e) => decider.evolve(s, e), decider.initialState());
