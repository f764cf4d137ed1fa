import { z } from 'zod';
import { defineRoute } from '../api/route.js';
import { AppParamsSchema } from '../applications/applications.schemas.js';
import {
  ApplicationAtQuerySchema,
  ApplicationAtSchema,
  EventPageSchema,
  EventsQuerySchema,
  EventStreamQuerySchema,
} from './history.schemas.js';

/** The routes of the event history: a page of it, its live stream, and an application at a past moment. */
export const historyRoutes = {
  listEvents: defineRoute({
    operationId: 'listEvents',
    method: 'GET',
    path: '/v1/events',
    summary:
      'The event history you may see (admins: all of it), oldest first, secrets redacted; page with `after` = `nextCursor`',
    tag: 'events',
    query: EventsQuerySchema,
    response: EventPageSchema,
  }),
  streamEvents: defineRoute({
    operationId: 'streamEvents',
    method: 'GET',
    path: '/v1/events/stream',
    summary:
      'The same events as Server-Sent Events, live; resumes after `Last-Event-ID` (or `after`), else starts at `since`, else now',
    tag: 'events',
    query: EventStreamQuerySchema,
    response: z.string().describe('`id: <cursor>`, `event: <type>`, `data: <HistoryEvent as JSON>`'),
    produces: 'text/event-stream',
  }),
  applicationAt: defineRoute({
    operationId: 'applicationAt',
    method: 'GET',
    path: '/v1/applications/{app}/history',
    summary:
      'An application’s services and nodes as they were just after an event (`at`) or at a time, rebuilt from its events',
    tag: 'events',
    params: AppParamsSchema,
    query: ApplicationAtQuerySchema,
    response: ApplicationAtSchema,
  }),
} as const;
