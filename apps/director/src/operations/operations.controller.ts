import { Controller, Inject } from '@nestjs/common';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Route } from '../api/route.decorator.js';
import type { Principal } from '../api/request.js';
import type { Operations } from './operations.js';
import { operationRoutes } from './operations.routes.js';

type R = typeof operationRoutes;

/** Injection token of the {@link Operations} service. */
export const OPERATIONS = Symbol('Operations');

/** `GET /v1/operations/{id}`: a long operation, the director's or a manager's. */
@Controller()
export class OperationsController {
  constructor(@Inject(OPERATIONS) private readonly operations: Operations) {}

  @Route(operationRoutes.getOperation)
  operation(
    @Input() i: RouteInput<R['getOperation']>,
    @Caller() p: Principal,
  ): RouteOutput<R['getOperation']> {
    return this.operations.view(p, i.params.id);
  }
}
