import type { DirectorFeature } from '../feature.js';
import { HISTORY, HISTORY_AUTHENTICATOR, HistoryController } from './history.controller.js';
import { History } from './history.js';
import { historyRoutes } from './history.routes.js';

/**
 * The event history: `GET /v1/events` (pages, filtered by application, service, type and time)
 * and `GET /v1/events/stream` (the same, live, as Server-Sent Events). Each user reads only the
 * events of what they own, with every secret redacted; admins read all of it.
 */
export const historyFeature: DirectorFeature = {
  name: 'history',
  routes: historyRoutes,
  create: (ctx) => {
    const history = new History({
      store: ctx.core.store,
      directory: ctx.core.directory,
      caughtUp: (position) => ctx.core.caughtUp(position),
      log: ctx.log,
    });
    return {
      controllers: [HistoryController],
      providers: [
        { provide: HISTORY, useValue: history },
        { provide: HISTORY_AUTHENTICATOR, useValue: ctx.accounts },
      ],
      stop: () => history.stop(),
    };
  },
};
