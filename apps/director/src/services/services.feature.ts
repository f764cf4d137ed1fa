import type { DirectorFeature } from '../feature.js';
import { SERVICE_OPERATIONS, SERVICES, ServicesController } from './services.controller.js';
import { serviceRoutes } from './services.routes.js';

/**
 * Services: the service types, the services of an application and the gateway to their managers
 * (nodes, logs, history, method calls, code archives); starting, stopping and removing one are
 * operations. Managers are started and ended through the Provisioner (`Supervisor`).
 */
export const serviceFeature: DirectorFeature = {
  name: 'services',
  routes: serviceRoutes,
  create: (ctx) => ({
    controllers: [ServicesController],
    providers: [
      { provide: SERVICES, useValue: ctx.services },
      { provide: SERVICE_OPERATIONS, useValue: ctx.serviceOperations },
    ],
    operations: ctx.serviceOperations.kinds,
    // links follow the endpoints of the services they name
    leading: () => ctx.services.linkKeeper(),
  }),
};
