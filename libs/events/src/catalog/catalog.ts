import { CpsError, ValidationError, issuesFromZod } from '@cps/core';
import type { z } from 'zod';
import type { NewEvent, RecordedEvent } from '../store/types.js';

/**
 * One event type: its name, the zod schema of its current `data`, its current schema version, and
 * upcasters that lift stored data from version `n` to `n + 1`.
 */
export interface EventDefinition<Type extends string = string, Schema extends z.ZodType = z.ZodType> {
  readonly type: Type;
  readonly version: number;
  readonly schema: Schema;
  readonly upcasters: Readonly<Record<number, (data: unknown) => unknown>>;
  /** Builds a new event of this type (typed data, current version). */
  (data: z.input<Schema>): NewEvent<Type, z.output<Schema>>;
}

export type EventOf<D extends EventDefinition> =
  D extends EventDefinition<infer T, infer S> ? { readonly type: T; readonly data: z.output<S> } : never;

export const defineEvent = <Type extends string, Schema extends z.ZodType>(
  type: Type,
  schema: Schema,
  options: { version?: number; upcasters?: Record<number, (data: unknown) => unknown> } = {},
): EventDefinition<Type, Schema> => {
  const version = options.version ?? 1;
  for (let v = 1; v < version; v++) {
    if (!options.upcasters?.[v]) throw new Error(`event ${type} v${version} lacks an upcaster from v${v}`);
  }
  const make = (data: z.input<Schema>): NewEvent<Type, z.output<Schema>> => ({
    type,
    version,
    data: data as z.output<Schema>,
  });
  return Object.assign(make, { type, version, schema, upcasters: options.upcasters ?? {} });
};

/** The event types one store knows: validates on append, upcasts and validates on read. */
export class EventCatalog {
  private readonly byType = new Map<string, EventDefinition>();

  constructor(definitions: readonly EventDefinition[]) {
    for (const d of definitions) {
      if (this.byType.has(d.type)) throw new Error(`event type ${d.type} defined twice`);
      this.byType.set(d.type, d);
    }
  }

  has(type: string): boolean {
    return this.byType.has(type);
  }

  /** Checks a new event against its schema; returns it with its version set. */
  prepare(e: NewEvent): Required<NewEvent> {
    const d = this.byType.get(e.type);
    if (!d)
      throw new ValidationError(`unknown event type ${e.type}`, [
        { path: '$.type', code: 'unknown_event', message: `unknown event type ${e.type}` },
      ]);
    const r = d.schema.safeParse(e.data);
    if (!r.success) throw new ValidationError(`invalid ${e.type} event`, issuesFromZod(r.error));
    return { type: e.type, version: d.version, data: r.data };
  }

  /** Lifts a stored event to the current version of its type and validates it. */
  read<E extends RecordedEvent>(e: E): E {
    const d = this.byType.get(e.type);
    if (!d) return e;
    let data = e.data;
    for (let v = e.version; v < d.version; v++) {
      const up = d.upcasters[v];
      if (!up) throw new CpsError('internal', `no upcaster for ${e.type} v${v}`);
      data = up(data);
    }
    const r = d.schema.safeParse(data);
    if (!r.success)
      throw new CpsError(
        'internal',
        `stored ${e.type} event does not match its schema`,
        issuesFromZod(r.error),
      );
    return { ...e, version: d.version, data: r.data };
  }
}
