import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineCommand } from '../rpc/command.js';
import {
  ArchiveVersionSchema,
  EndpointSchema,
  LinkSchema,
  LogTailSchema,
  LogTextSchema,
  NodeStateSchema,
} from './common.js';

/**
 * The generic commands every manager serves (at `subjects.manager(app, svc)`), defined once for the
 * sender (the director) and the handler (the manager runtime). `callMethod` is in `common.ts`.
 */

const Operation = z.object({ operationId: z.string() });
const RoleCounts = z.record(IdSchema, z.number().int().min(1).max(100));
export const NodeInfoSchema = z.object({
  nodeId: z.string(),
  role: z.string(),
  cloud: z.string(),
  state: NodeStateSchema,
  address: z.string().optional(),
  /** The node's ports: its services listen on these, from `from` on. */
  ports: z.object({ from: z.number(), to: z.number() }).optional(),
  reason: z.string().optional(),
  lastHeartbeat: z.string().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
});
export type NodeInfo = z.infer<typeof NodeInfoSchema>;

export const startupService = defineCommand(
  'startup',
  z.object({ cloud: z.string().min(1).max(64).default('local') }),
  Operation,
);
export const shutdownService = defineCommand('shutdown', z.object({}), Operation);
export const addNodes = defineCommand(
  'add_nodes',
  z.object({
    nodes: RoleCounts.refine((r) => Object.keys(r).length > 0, 'at least one role'),
    cloud: z.string().min(1).max(64).default('local'),
  }),
  Operation,
);
export const removeNodes = defineCommand(
  'remove_nodes',
  z.union([z.object({ nodeIds: z.array(IdSchema).min(1).max(1000) }), z.object({ nodes: RoleCounts })]),
  Operation,
);
export const listNodes = defineCommand(
  'list_nodes',
  z.object({}),
  z.object({ nodes: z.array(NodeInfoSchema) }),
);
export const getNodeInfo = defineCommand('get_node_info', z.object({ nodeId: IdSchema }), NodeInfoSchema);
export const getServiceInfo = defineCommand(
  'get_service_info',
  z.object({}),
  z.object({
    appId: z.string(),
    serviceId: z.string(),
    type: z.string(),
    state: z.string(),
    operation: z.object({ operationId: z.string(), kind: z.string() }).optional(),
    nodes: z.record(z.string(), z.number()),
    archive: z.object({ version: z.string(), size: z.number(), digest: z.string() }).optional(),
    endpoints: z.record(z.string(), EndpointSchema).optional(),
    links: z.record(z.string(), LinkSchema).optional(),
  }),
);

/**
 * From the director: the services this one links and their endpoints as they are now. The manager
 * records them when they changed and configures its nodes again.
 */
export const setLinks = defineCommand(
  'set_links',
  z.object({ links: z.record(IdSchema, LinkSchema) }),
  z.object({ changed: z.boolean() }),
);

/**
 * Makes an archive of the service's bucket (uploaded there by the director) the service's current
 * code; the plugin is told (`onArchiveChanged`) and hands it to its nodes.
 */
export const setArchive = defineCommand(
  'set_archive',
  z.object({ version: ArchiveVersionSchema }),
  z.object({ version: z.string(), size: z.number(), digest: z.string() }),
);

/**
 * Asked by the director of a service whose type gives credentials to the services linking it
 * (`ServiceDefinition.links`): those of the linking service `serviceId`, made if missing.
 */
export const linkCredentials = defineCommand(
  'link_credentials',
  z.object({ serviceId: IdSchema, name: IdSchema }),
  z.object({ credentials: z.record(z.string(), z.string()) }),
);

/** Log lines of one node (else of every node) of the service. */
export const getLogs = defineCommand(
  'get_logs',
  z.object({ nodeId: IdSchema.optional(), ...LogTailSchema.shape }),
  LogTextSchema,
);
export const getHistory = defineCommand(
  'get_history',
  z.object({ limit: z.number().int().min(1).max(1000).default(100) }),
  z.object({
    history: z.array(z.object({ at: z.string(), from: z.string(), to: z.string(), reason: z.string() })),
    operations: z.array(
      z.object({ at: z.string(), operationId: z.string(), event: z.string(), reason: z.string().optional() }),
    ),
  }),
);
