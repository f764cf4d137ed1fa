import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineCommand } from '../rpc/command.js';

/** What more than one party of the protocol says: the shapes a manager and its agents share. */

/** A node's port range (both ends included). */
export const PortsSchema = z.object({
  from: z.number().int().min(1).max(65_535),
  to: z.number().int().min(1).max(65_535),
});
/** The life-cycle states of a node as a manager reports and configures them. */
export const NodeStateSchema = z.enum(['requested', 'starting', 'running', 'failed', 'removing', 'removed']);
export const EndpointSchema = z.object({
  address: z.string().max(253),
  port: z.number().int().min(1).max(65_535),
  nodeId: IdSchema.optional(),
});
export const LinkSchema = z.object({
  serviceId: IdSchema,
  type: IdSchema.optional(),
  endpoints: z.record(IdSchema, EndpointSchema),
  /** What the linked service made for the linking one (its manager seals them before recording). */
  credentials: z.record(z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/), z.string().max(4_096)).optional(),
});
/**
 * Where a node mounts a volume: a path relative to its work directory, 1 to 4 names, none `.` or
 * `..` (so never absolute, never outside it).
 */
export const MountPathSchema = z
  .string()
  .max(260)
  .regex(
    /^(?!\.{1,2}(\/|$))[A-Za-z0-9._-]{1,64}(\/(?!\.{1,2}(\/|$))[A-Za-z0-9._-]{1,64}){0,3}$/,
    'a path inside the work directory: 1 to 4 names of letters, digits, . _ -, none . or .., no leading /',
  );
/** A volume of a linked storage service, mounted by the nodes of the linking service. */
export const VolumeMountSchema = z.object({
  /** The link (by its name) to the storage service. */
  link: IdSchema,
  volume: IdSchema,
  mount: MountPathSchema,
});
/** The version name of a code archive (a file name in the service's bucket). */
export const ArchiveVersionSchema = z
  .string()
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]*$/);

/** What a request for log lines names: one workload (else all) and how much of their tail. */
export const LogTailSchema = z.object({
  workload: IdSchema.optional(),
  tailBytes: z.number().int().min(1).max(1_048_576).default(65_536),
});
/** Log lines, oldest first. */
export const LogTextSchema = z.object({ text: z.string() });

/**
 * A plugin method, by name; `args` is validated against the method's own schema by the handler.
 * Served by managers (from the director) and by agents (from their manager).
 */
export const callMethod = defineCommand(
  'call',
  z.object({ method: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/), args: z.unknown() }),
  z.object({ result: z.unknown() }),
);
