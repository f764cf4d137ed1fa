import { Controller, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Route } from '../api/route.decorator.js';
import type { Authenticator } from '../api/route.guard.js';
import type { CpsRequest, Principal } from '../api/request.js';
import { takeOverReply } from '../api/raw-reply.js';
import type { History } from './history.js';
import { historyRoutes } from './history.routes.js';

type R = typeof historyRoutes;

/** Injection token of the {@link History} service. */
export const HISTORY = Symbol('History');

/** The token of the authenticator a stream asks again at every keepalive. */
export const HISTORY_AUTHENTICATOR = Symbol('HistoryAuthenticator');

/** `GET /v1/events`, its live form `GET /v1/events/stream`, and an application at a past moment. */
@Controller()
export class HistoryController {
  constructor(
    @Inject(HISTORY) private readonly history: History,
    @Inject(HISTORY_AUTHENTICATOR) private readonly auth: Authenticator,
  ) {}

  @Route(historyRoutes.listEvents)
  list(
    @Input() i: RouteInput<R['listEvents']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['listEvents']>> {
    return this.history.page(p, i.query);
  }

  @Route(historyRoutes.applicationAt)
  applicationAt(
    @Input() i: RouteInput<R['applicationAt']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['applicationAt']>> {
    return this.history.applicationAt(p, i.params.app, i.query);
  }

  /** Takes the response over from the framework: headers now, then one SSE message per event. */
  @Route(historyRoutes.streamEvents)
  async stream(
    @Input() i: RouteInput<R['streamEvents']>,
    @Caller() p: Principal,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const req = reply.request as CpsRequest;
    const given = req.headers['last-event-id'];
    const stream = await this.history.prepareStream(p, i.query, Array.isArray(given) ? given[0] : given);
    const res = takeOverReply(reply, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    res.write(': events\n\n');
    req.raw.socket.setNoDelay(true);
    stream.start(res, {
      stillAllowed: async () => {
        const again = await this.auth.authenticate(req).catch(() => undefined);
        return again?.userId === p.userId;
      },
      context: { requestId: req.cps.requestId, route: 'streamEvents', actor: `user:${p.userId}` },
    });
  }
}
