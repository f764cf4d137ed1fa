import type { DirectorFeature } from '../feature.js';
import { PLATFORM, PlatformController } from './platform.controller.js';
import { Platform } from './platform.js';
import { platformRoutes } from './platform.routes.js';

/** The platform itself: liveness, readiness (the bus), Prometheus metrics, the OpenAPI document. */
export const platformFeature: DirectorFeature = {
  name: 'platform',
  routes: platformRoutes,
  create: (ctx) => ({
    controllers: [PlatformController],
    providers: [
      {
        provide: PLATFORM,
        useValue: new Platform(ctx.metrics, {
          openapi: ctx.openapi,
          ready: () => ({ bus: ctx.bus.connection.isClosed() ? 'closed' : 'ok', readModel: 'ok' }),
        }),
      },
    ],
  }),
};
