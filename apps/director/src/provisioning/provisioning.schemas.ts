import { z } from 'zod';
import { TimeSchema } from '../api/schemas.js';

export const CloudSchema = z.object({
  name: z.string(),
  kind: z.string().describe('its driver: local, ec2 or opennebula'),
  mode: z
    .string()
    .optional()
    .describe('how it makes nodes, when it has several ways (local: host or process)'),
  default: z.boolean(),
});
export const ResourceSchema = z.object({
  nodeId: z.string(),
  kind: z.enum(['manager', 'agent']),
  appId: z.string(),
  serviceId: z.string(),
  role: z.string().optional(),
  cloud: z.string(),
  status: z.string(),
  since: TimeSchema,
  hours: z.number().int().describe('node-hours so far (started hours)'),
  cost: z.number().int().describe('credits: one per started node-hour'),
});
