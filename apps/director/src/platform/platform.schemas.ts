import { z } from 'zod';

export const HealthSchema = z.object({
  status: z.enum(['ok', 'starting', 'degraded']),
  checks: z.record(z.string(), z.string()),
});
