import { z } from 'zod';
import { RefSchema } from '../api/schemas.js';
import { parseCursor } from './cursor.js';

/** The largest page of `GET /v1/events`. */
export const MAX_PAGE = 500;

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

/** An ISO-8601 date or date-time with its zone (`2025-01-31`, `2025-01-31T12:00:00Z`): epoch ms. */
const Time = z
  .string()
  .max(40)
  .refine((s) => ISO_TIME.test(s) && !Number.isNaN(Date.parse(s)), {
    message: 'an ISO-8601 time with its zone, e.g. 2025-01-31T12:00:00Z',
  })
  .transform((s) => Date.parse(s));

const EventType = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'an event type, e.g. ApplicationCreated');

/** `type=A&type=B` or `type=A,B`: a set of event types. */
const Types = z
  .union([z.string(), z.array(z.string())])
  .transform((v) =>
    (Array.isArray(v) ? v : [v])
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  )
  .pipe(z.array(EventType).min(1).max(50));

/** A cursor from a previous answer (`nextCursor`, an event's `cursor`, an SSE `id`). */
export const CursorSchema = z
  .string()
  .max(40)
  .transform((s, ctx) => {
    const c = parseCursor(s);
    if (!c) {
      ctx.addIssue({ code: 'custom', message: 'not a cursor this API handed out' });
      return z.NEVER;
    }
    return c;
  });

const filters = {
  application: RefSchema.optional().describe('an application: its id, or your name for it'),
  service: RefSchema.optional().describe('a service: its id, or its name within `application`'),
  type: Types.optional().describe('event types: repeat the parameter, or separate with commas'),
  since: Time.optional().describe('events recorded at or after this time'),
  until: Time.optional().describe('events recorded before this time'),
  after: CursorSchema.optional().describe('continue after this cursor (a previous `nextCursor`)'),
};

export const EventsQuerySchema = z.strictObject({
  ...filters,
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(100).describe('events per page'),
});
export type EventsQuery = z.output<typeof EventsQuerySchema>;

export const EventStreamQuerySchema = z.strictObject(filters);
export type EventStreamQuery = z.output<typeof EventStreamQuerySchema>;

/** One event of the history, as its reader may see it. */
export const HistoryEventSchema = z
  .object({
    id: z.string().describe('the event id'),
    cursor: z.string().describe('resume after this event (`after`, `Last-Event-ID`)'),
    position: z.object({
      commit: z.number().int().describe('position of its commit in the global log'),
      index: z.number().int().describe('index of the event inside its commit'),
    }),
    at: z.string().describe('ISO-8601 time it was recorded'),
    type: z.string(),
    aggregate: z.string().describe('the stream it belongs to: `app.<appId>`, `svc.<appId>.<serviceId>`, ...'),
    appId: z.string().optional(),
    serviceId: z.string().optional(),
    actor: z.string().describe('who caused it: `user:<id>`, `director`, `manager:<service>`, ...'),
    data: z.unknown().describe('the event data, every secret replaced by "[redacted]"'),
  })
  .meta({ id: 'HistoryEvent' });
export type HistoryEvent = z.input<typeof HistoryEventSchema>;

export const EventPageSchema = z
  .object({
    events: z.array(HistoryEventSchema).describe('oldest first'),
    nextCursor: z
      .string()
      .optional()
      .describe('more may follow: pass it as `after` (absent: the end of the history, for now)'),
  })
  .meta({ id: 'EventPage' });
export type EventPage = z.input<typeof EventPageSchema>;

/** `GET /v1/applications/{app}/history`: the moment to show, by cursor or by time (default: now). */
export const ApplicationAtQuerySchema = z
  .strictObject({
    at: CursorSchema.optional().describe('as it was just after this event (an event’s `cursor`)'),
    time: Time.optional().describe('as it was at this time'),
  })
  .refine((q) => q.at === undefined || q.time === undefined, {
    message: 'give `at` or `time`, not both',
    path: ['time'],
  });
export type ApplicationAtQuery = z.output<typeof ApplicationAtQuerySchema>;

/** An application's services and nodes at one past moment, folded from its events. */
export const ApplicationAtSchema = z
  .object({
    at: z.object({
      cursor: z.string().describe('the last event folded in (`0`: none)'),
      time: z.string().optional().describe('when that event was recorded'),
      events: z.number().int().describe('how many of the application’s events were folded in'),
    }),
    application: z
      .object({
        appId: z.string(),
        name: z.string(),
        description: z.string(),
        deleted: z.boolean(),
      })
      .optional()
      .describe('absent before it was created'),
    services: z.array(
      z.object({
        serviceId: z.string(),
        name: z.string(),
        type: z.string(),
        cloud: z.string(),
        state: z.string(),
        nodes: z.array(z.object({ nodeId: z.string(), role: z.string(), state: z.string() })),
      }),
    ),
  })
  .meta({ id: 'ApplicationAt' });
export type ApplicationAt = z.input<typeof ApplicationAtSchema>;
