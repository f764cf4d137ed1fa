import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineCommand } from '../rpc/command.js';
import {
  ArchiveVersionSchema,
  LinkSchema,
  LogTailSchema,
  LogTextSchema,
  NodeStateSchema,
  PortsSchema,
  VolumeMountSchema,
} from './common.js';

/**
 * The generic commands every agent serves (at `subjects.agent(app, svc, node)`), defined once for the
 * sender (its manager) and the handler (the agent runtime), and the heartbeat an agent sends its
 * manager. `callMethod` is in `common.ts`.
 */

const NodeViewSchema = z.object({
  nodeId: IdSchema,
  role: IdSchema,
  cloud: z.string(),
  state: NodeStateSchema,
  address: z.string().optional(),
  ports: PortsSchema.optional(),
});
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

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
    version: ArchiveVersionSchema,
    size: z.number().int().min(0).max(MAX_ARCHIVE_BYTES),
    digest: Sha256Hex,
    offset: z.number().int().min(0).max(MAX_ARCHIVE_BYTES),
    data: z.base64().max(Math.ceil(ARCHIVE_TRANSFER_CHUNK / 3) * 4),
  }),
  z.object({ received: z.number(), complete: z.boolean() }),
);

/** A file of a node's spool: one token, no path (`[a-z0-9][a-z0-9._-]*`, no `..`, at most 128). */
export const SPOOL_NAME_PATTERN = /^(?!.*\.\.)[a-z0-9][a-z0-9._-]{0,127}$/;
const SpoolName = z.string().regex(SPOOL_NAME_PATTERN);
/** Largest file a spool moves (a database backup). */
export const MAX_SPOOL_BYTES = 64 * 1024 * 1024 * 1024;
/** Raw bytes per spool piece (base64 in the message: under the default 1 MiB max_payload). */
export const SPOOL_TRANSFER_CHUNK = 512 * 1024;

/**
 * A node's spool, files in transit between an agent and its manager (a backup on its way to the
 * object store and back), in the node's private directory. The manager reads a file piece by piece
 * (`spool_read`) after asking its size and SHA-256 (`spool_info`); it writes one in order
 * (`spool_write`, checked at its last piece like `archive_chunk`); and removes it (`spool_remove`).
 */
export const spoolInfo = defineCommand(
  'spool_info',
  z.object({ name: SpoolName }),
  z.object({ size: z.number(), digest: z.string() }),
);
export const spoolRead = defineCommand(
  'spool_read',
  z.object({ name: SpoolName, offset: z.number().int().min(0).max(MAX_SPOOL_BYTES) }),
  z.object({ data: z.string() }),
);
export const spoolWrite = defineCommand(
  'spool_write',
  z.object({
    name: SpoolName,
    size: z.number().int().min(0).max(MAX_SPOOL_BYTES),
    digest: Sha256Hex,
    offset: z.number().int().min(0).max(MAX_SPOOL_BYTES),
    data: z.base64().max(Math.ceil(SPOOL_TRANSFER_CHUNK / 3) * 4),
  }),
  z.object({ received: z.number(), complete: z.boolean() }),
);
export const spoolRemove = defineCommand('spool_remove', z.object({ name: SpoolName }), z.object({}));

export const checkAgentProcess = defineCommand(
  'check_agent_process',
  z.object({}),
  z.object({
    nodeId: z.string(),
    role: z.string(),
    workloads: z.array(z.object({ name: z.string(), state: z.string(), restarts: z.number() })),
  }),
);
/** Log lines of this node's workloads. */
export const agentLogs = defineCommand('get_logs', LogTailSchema, LogTextSchema);

/**
 * The manager's configuration of one node (see `NodeConfig`), pushed whenever its agent (re)joins or
 * what the node must know changed; the agent keeps it and runs the plugin's `onConfigure`.
 */
export const configureAgent = defineCommand(
  'configure',
  z.object({
    settings: z.record(z.string(), z.unknown()),
    nodes: z.array(NodeViewSchema),
    // a node gets the credentials opened, and the environment the linked type derives from them
    links: z.record(IdSchema, LinkSchema.extend({ env: z.record(z.string(), z.string()).optional() })),
    volumes: z.array(VolumeMountSchema).max(16).optional(),
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
  ports: PortsSchema.optional(),
  /** Why this node can never become ready (its software is missing): the manager fails it with this. */
  fatal: z.string().max(500).optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
