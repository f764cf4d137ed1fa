import { z } from 'zod';
import type { RecordedEvent } from './types.js';

/** The stored form of one append: the events of one aggregate that landed together. */
export const CommitSchema = z.object({
  a: z.string(),
  v: z.number().int().positive(),
  e: z
    .array(
      z.object({
        type: z.string(),
        version: z.number().int().positive(),
        data: z.unknown(),
        metadata: z.object({
          eventId: z.string(),
          at: z.string(),
          actor: z.string(),
          correlationId: z.string(),
          causationId: z.string(),
        }),
      }),
    )
    .min(1),
});
export type Commit = z.infer<typeof CommitSchema>;

export const msgIdOf = (aggregate: string, firstVersion: number): string => `${aggregate}:${firstVersion}`;

export const eventsOfCommit = (c: Commit, position: number): RecordedEvent[] =>
  c.e.map((e, index) => ({
    type: e.type,
    version: e.version,
    data: e.data,
    metadata: e.metadata,
    aggregate: c.a,
    aggregateVersion: c.v + index,
    position: { commit: position, index },
    endOfCommit: index === c.e.length - 1,
  }));

export const lastVersionOf = (c: Commit): number => c.v + c.e.length - 1;

const AGGREGATE = /^[a-z0-9][a-z0-9_-]{0,62}(\.[a-z0-9][a-z0-9_-]{0,62}){1,5}$/;
export const isAggregateKey = (s: string): boolean => AGGREGATE.test(s);
