import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineCommand } from '@cps/bus';

/**
 * The generic commands every manager and every agent serves, defined once for the sender (the
 * director, or the manager for agents) and the handler (the runtimes).
 */

const Operation = z.object({ operationId: z.string() });
const Ports = z.object({
  from: z.number().int().min(1).max(65_535),
  to: z.number().int().min(1).max(65_535),
});
export const EndpointSchema = z.object({
  address: z.string().max(253),
  port: z.number().int().min(1).max(65_535),
  nodeId: IdSchema.optional(),
});
export const LinkSchema = z.object({
  serviceId: IdSchema,
  type: IdSchema.optional(),
  endpoints: z.record(IdSchema, EndpointSchema),
});
const NodeViewSchema = z.object({
  nodeId: IdSchema,
  role: IdSchema,
  cloud: z.string(),
  state: z.enum(['requested', 'starting', 'running', 'failed', 'removing', 'removed']),
  address: z.string().optional(),
  ports: Ports.optional(),
});
const RoleCounts = z.record(IdSchema, z.number().int().min(1).max(100));
export const NodeInfoSchema = z.object({
  nodeId: z.string(),
  role: z.string(),
  cloud: z.string(),
  state: z.enum(['requested', 'starting', 'running', 'failed', 'removing', 'removed']),
  address: z.string().optional(),
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

const ArchiveVersion = z
  .string()
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]*$/);
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * Makes an archive of the service's bucket (uploaded there by the director) the service's current
 * code; the plugin is told (`onArchiveChanged`) and hands it to its nodes.
 */
export const setArchive = defineCommand(
  'set_archive',
  z.object({ version: ArchiveVersion }),
  z.object({ version: z.string(), size: z.number(), digest: z.string() }),
);

/** Largest archive an agent accepts (the extraction limit). */
export const MAX_ARCHIVE_BYTES = 256 * 1024 * 1024;
/** Raw bytes per `archive_chunk` (base64 in the message: well under the default 1 MiB max_payload). */
export const ARCHIVE_TRANSFER_CHUNK = 128 * 1024;

/**
 * One piece of an archive, from a manager to one of its agents (agents have no JetStream access).
 * Pieces arrive in order: `offset` is the number of bytes the agent already holds (0 restarts the
 * transfer). The agent checks size and SHA-256 when the last piece arrives.
 */
export const archiveChunk = defineCommand(
  'archive_chunk',
  z.object({
    version: ArchiveVersion,
    size: z.number().int().min(0).max(MAX_ARCHIVE_BYTES),
    digest: Sha256Hex,
    offset: z.number().int().min(0).max(MAX_ARCHIVE_BYTES),
    data: z.base64().max(Math.ceil(ARCHIVE_TRANSFER_CHUNK / 3) * 4),
  }),
  z.object({ received: z.number(), complete: z.boolean() }),
);
export const getLogs = defineCommand(
  'get_logs',
  z.object({
    nodeId: IdSchema.optional(),
    workload: IdSchema.optional(),
    tailBytes: z.number().int().min(1).max(1_048_576).default(65_536),
  }),
  z.object({ text: z.string() }),
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
/** A plugin method, by name; `args` is validated against the method's own schema by the handler. */
export const callMethod = defineCommand(
  'call',
  z.object({ method: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/), args: z.unknown() }),
  z.object({ result: z.unknown() }),
);

export const checkAgentProcess = defineCommand(
  'check_agent_process',
  z.object({}),
  z.object({
    nodeId: z.string(),
    role: z.string(),
    workloads: z.array(z.object({ name: z.string(), state: z.string(), restarts: z.number() })),
  }),
);
export const agentLogs = defineCommand(
  'get_logs',
  z.object({
    workload: IdSchema.optional(),
    tailBytes: z.number().int().min(1).max(1_048_576).default(65_536),
  }),
  z.object({ text: z.string() }),
);

/**
 * The manager's configuration of one node (see `NodeConfig`), pushed whenever its agent (re)joins or
 * what the node must know changed; the agent keeps it and runs the plugin's `onConfigure`.
 */
export const configureAgent = defineCommand(
  'configure',
  z.object({
    settings: z.record(z.string(), z.unknown()),
    nodes: z.array(NodeViewSchema),
    links: z.record(IdSchema, LinkSchema),
  }),
  z.object({ applied: z.boolean() }),
);

/** The agent's heartbeat (core NATS, every second): never stored as an event. */
export const HeartbeatSchema = z.object({
  nodeId: z.string(),
  role: z.string(),
  at: z.string(),
  ready: z.boolean(),
  metrics: z.record(z.string(), z.number()),
  /** Changes each time the agent process starts: a new one is a (re)join, to be configured. */
  boot: z.string().max(64).optional(),
  /** Where the node is now (its cloud may have moved it on a restart). */
  address: z.string().max(253).optional(),
  ports: Ports.optional(),
  /** Why this node can never become ready (its software is missing): the manager fails it with this. */
  fatal: z.string().max(500).optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
