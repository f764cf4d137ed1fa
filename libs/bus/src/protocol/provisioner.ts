import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineCommand } from '../rpc/command.js';

/**
 * What the Provisioner (on the leading director) serves. A manager asks for the nodes of its service
 * at `subjects.provisioner(app, svc)`: `createNode`, `destroyNode`.
 */
export const createNode = defineCommand(
  'create',
  z.object({
    nodeId: IdSchema,
    kind: z.enum(['agent']),
    serviceType: IdSchema,
    role: IdSchema,
    cloud: z.string().min(1).max(64).default('local'),
  }),
  z.object({
    nodeId: z.string(),
    instanceId: z.string(),
    address: z.string().optional(),
    ports: z.object({ from: z.number(), to: z.number() }).optional(),
  }),
);
/**
 * A supervisor (a director) asks for the manager process of a service, on
 * `subjects.managerProvisioner(app, svc)`: a subject only directors may publish to.
 */
export const createManagerNode = defineCommand(
  'create',
  z.object({
    nodeId: IdSchema,
    serviceType: IdSchema,
    cloud: z.string().min(1).max(64).default('local'),
  }),
  createNode.reply,
);
export const destroyNode = defineCommand(
  'destroy',
  z.object({ nodeId: IdSchema }),
  z.object({ nodeId: z.string(), destroyed: z.boolean() }),
);
