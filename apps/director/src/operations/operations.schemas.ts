import { z } from 'zod';
import { TimeSchema } from '../api/schemas.js';

export const OperationSchema = z
  .object({
    operationId: z.string(),
    kind: z.string(),
    state: z.enum(['running', 'succeeded', 'failed']),
    appId: z.string().optional(),
    serviceId: z.string().optional(),
    startedAt: TimeSchema,
    finishedAt: TimeSchema.optional(),
    reason: z.string().optional(),
    steps: z.array(z.string()).optional().describe('progress of a director operation'),
  })
  .meta({ id: 'Operation' });
export const AcceptedSchema = z.object({ operationId: z.string() }).meta({ id: 'Accepted' });
