import type { DirectorFeature } from '../feature.js';
import { OPERATIONS, OperationsController } from './operations.controller.js';
import { operationRoutes } from './operations.routes.js';

/**
 * Long operations: each kind defined once (`defineOperation`, in the feature it belongs to), run by
 * `Operations`, read at `GET /v1/operations/{id}`. The leader takes over those whose director is gone;
 * a director that stops lets its own go, left running for the leader.
 */
export const operationFeature: DirectorFeature = {
  name: 'operations',
  routes: operationRoutes,
  create: (ctx) => ({
    controllers: [OperationsController],
    providers: [{ provide: OPERATIONS, useValue: ctx.operations }],
    leading: () => ctx.operations.leading(),
    stop: () => ctx.operations.stop(),
  }),
};
