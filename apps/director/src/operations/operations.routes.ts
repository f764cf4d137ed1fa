import { z } from 'zod';
import { defineRoute } from '../api/route.js';
import { RefSchema } from '../api/schemas.js';
import { OperationSchema } from './operations.schemas.js';

/** The routes of operations: one long operation, its progress and outcome. */
export const operationRoutes = {
  getOperation: defineRoute({
    operationId: 'getOperation',
    method: 'GET',
    path: '/v1/operations/{id}',
    summary: 'A long operation: its progress and outcome',
    tag: 'operations',
    params: z.object({ id: RefSchema }),
    response: OperationSchema,
  }),
} as const;
