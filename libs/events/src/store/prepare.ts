import { randomUUID } from 'node:crypto';
import { ValidationError } from '@cps/core';
import type { EventCatalog } from '../catalog/catalog.js';
import { isAggregateKey, type Commit } from './commit.js';
import type { AppendOptions, NewEvent } from './types.js';

export interface StoreOptions {
  readonly catalog?: EventCatalog;
  readonly clock?: () => Date;
}

export const checkAggregate = (aggregate: string): void => {
  if (!isAggregateKey(aggregate)) {
    throw new ValidationError(`not an aggregate key: ${JSON.stringify(aggregate)}`, [
      {
        path: '$.aggregate',
        code: 'invalid_aggregate',
        message: 'expected <type>.<id>[.<id>...] of lowercase ids',
      },
    ]);
  }
};

/** Builds the commit of one append (validation, versions, metadata) for any store implementation. */
export const buildCommit = (
  aggregate: string,
  firstVersion: number,
  events: readonly NewEvent[],
  o: AppendOptions,
  s: StoreOptions,
): Commit => {
  checkAggregate(aggregate);
  if (events.length === 0)
    throw new ValidationError('nothing to append', [
      { path: '$.events', code: 'empty', message: 'at least one event' },
    ]);
  const at = o.metadata.at ?? (s.clock ?? (() => new Date()))().toISOString();
  return {
    a: aggregate,
    v: firstVersion,
    e: events.map((e, i) => {
      const p = s.catalog ? s.catalog.prepare(e) : { type: e.type, version: e.version ?? 1, data: e.data };
      return {
        ...p,
        metadata: {
          eventId: o.metadata.eventIds?.[i] ?? randomUUID(),
          at,
          actor: o.metadata.actor,
          correlationId: o.metadata.correlationId,
          causationId: o.metadata.causationId,
        },
      };
    }),
  };
};
