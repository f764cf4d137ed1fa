import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineCommand } from '../rpc/command.js';

/**
 * What the Provisioner (on the leading director) serves. A manager asks for the nodes of its service
 * at `subjects.provisioner(app, svc)`: `createNode`, `destroyNode`, `issueNodeCertificate`.
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
/**
 * A manager asks for an HTTPS certificate of one node of its service from the platform's services
 * CA, for the key it made (it sends the public key only). The certificate names the address the
 * node has, and nothing the manager chooses.
 */
export const issueNodeCertificate = defineCommand(
  'certificate',
  z.object({ nodeId: IdSchema, publicKeyPem: z.string().min(1).max(16_384) }),
  z.object({
    /** The node's certificate (PEM). */
    certificate: z.string(),
    /** The services CA it chains to (PEM): what a client trusts to reach the node over HTTPS. */
    ca: z.string(),
    notAfter: z.string(),
  }),
);
