import type { DirectorFeature } from '../feature.js';
import {
  APPLICATION_OPERATIONS,
  APPLICATION_SERVICES,
  APPLICATIONS,
  ApplicationsController,
} from './applications.controller.js';
import { applicationRoutes } from './applications.routes.js';

/**
 * Applications: named sets of services of one user, created, renamed, listed a page at a time, and
 * started, stopped or deleted whole by an operation.
 */
export const applicationFeature: DirectorFeature = {
  name: 'applications',
  routes: applicationRoutes,
  create: (ctx) => ({
    controllers: [ApplicationsController],
    providers: [
      { provide: APPLICATIONS, useValue: ctx.applications },
      { provide: APPLICATION_OPERATIONS, useValue: ctx.applicationOperations },
      { provide: APPLICATION_SERVICES, useValue: ctx.services },
    ],
    operations: ctx.applicationOperations.kinds,
  }),
};
