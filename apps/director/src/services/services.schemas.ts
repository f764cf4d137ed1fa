import { z } from 'zod';
import { ID_PATTERN } from '@cps/core';
import { NameSchema, RefSchema, TimeSchema } from '../api/schemas.js';
import { AppParamsSchema, ServiceSummarySchema } from '../applications/applications.schemas.js';
import { EndpointSchema, LinkSchema, MountPathSchema, NodeInfoSchema } from '@cps/bus';

/** `{app}/services/{svc}` in paths. */
export const SvcParamsSchema = AppParamsSchema.extend({ svc: RefSchema });

export const ServiceSchema = ServiceSummarySchema.extend({
  appId: z.string(),
  archive: z.object({ version: z.string(), size: z.number(), digest: z.string() }).optional(),
  nodes: z.record(z.string(), z.number()).describe('nodes per role'),
  managerRunning: z.boolean(),
  endpoints: z
    .record(z.string(), EndpointSchema)
    .describe('where the service is reached, by purpose (`redis` on its primary, `http` on its proxy)'),
  links: z
    // a link's credentials stay with its nodes
    .record(z.string(), LinkSchema.omit({ credentials: true }))
    .describe('the services it links, by link name, with their endpoints as its nodes know them'),
}).meta({ id: 'Service' });
export const NewServiceSchema = z.strictObject({
  type: z.string().min(1).max(64),
  name: NameSchema,
  cloud: z.string().min(1).max(64).default('local'),
  config: z.record(z.string(), z.unknown()).default({}),
  links: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a link name'), RefSchema)
    .default({})
    .describe(
      'link name -> a service of the same application (id or name): its endpoints reach this service’s nodes',
    ),
  volumes: z
    .array(
      z.strictObject({
        storage: RefSchema.describe('a storage service of the same application (id or name)'),
        volume: z.string().regex(ID_PATTERN, 'a volume name: [a-z0-9][a-z0-9_-]*').max(64),
        mount: MountPathSchema.describe('where the nodes see it, relative to their work directory'),
      }),
    )
    .max(16)
    .default([])
    .describe('volumes of storage services its nodes mount before their workloads start (host mode)'),
});
export const PatchServiceSchema = z.strictObject({ name: NameSchema });

const RoleCounts = z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), z.number().int().min(1).max(100));
export const AddNodesSchema = z.strictObject({
  nodes: RoleCounts.refine((r) => Object.keys(r).length > 0, 'at least one role'),
  cloud: z.string().min(1).max(64).default('local'),
});
export const RemoveNodesSchema = z.union([
  z.strictObject({
    nodeIds: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/))
      .min(1)
      .max(1000),
  }),
  z.strictObject({ nodes: RoleCounts }),
]);
export const NodeSchema = NodeInfoSchema.meta({ id: 'Node' });
export const NodesSchema = z.object({ nodes: z.array(NodeSchema) });
export const LogsQuerySchema = z.strictObject({
  node: z.string().max(64).optional(),
  workload: z.string().max(64).optional(),
  tailBytes: z.coerce.number().int().min(1).max(1_048_576).default(65_536),
});
export const LogsSchema = z.object({ text: z.string() });
export const HistorySchema = z.object({
  history: z.array(z.object({ at: z.string(), from: z.string(), to: z.string(), reason: z.string() })),
  operations: z.array(
    z.object({ at: z.string(), operationId: z.string(), event: z.string(), reason: z.string().optional() }),
  ),
});
export const CallResultSchema = z.object({ result: z.unknown() });
export const ArchiveSchema = z.object({
  version: z.string(),
  size: z.number(),
  digest: z.string().describe('SHA-256 of the content, lowercase hex'),
  current: z.boolean().describe('whether it is the service’s code now'),
});

/** `?enable=` of an upload: whether the stored version becomes the service's code at once. */
export const UploadArchiveQuerySchema = z.strictObject({
  enable: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true')
    .describe('`false`: store the version only; make it current later with its `enable` route'),
});

/** `{version}` in paths: an archive version, by the rule the archive store keeps (`checkArchiveVersion`). */
export const ArchiveParamsSchema = SvcParamsSchema.extend({
  version: z
    .string()
    .max(64)
    .regex(ID_PATTERN, 'an archive version: [a-z0-9][a-z0-9_-]*, 1 to 63 characters'),
});

/** One stored version of a service's code. */
export const ArchiveVersionSchema = z
  .object({
    version: z.string(),
    size: z.number(),
    digest: z.string().describe('SHA-256 of the content, lowercase hex'),
    stored: TimeSchema,
    current: z.boolean().describe('whether it is the service’s code now'),
  })
  .meta({ id: 'ArchiveVersion' });
export const ArchiveVersionsSchema = z.object({
  versions: z.array(ArchiveVersionSchema).describe('oldest first'),
});

export const ServiceTypeSchema = z
  .object({
    type: z.string(),
    description: z.string(),
    roles: z.array(z.string()),
    defaultRoles: z.record(z.string(), z.number()),
    configSchema: z.unknown().describe('JSON Schema'),
    manifestKeys: z.unknown().describe('JSON Schema'),
    methods: z.array(
      z.object({ name: z.string(), description: z.string(), args: z.unknown(), result: z.unknown() }),
    ),
  })
  .meta({ id: 'ServiceType' });
