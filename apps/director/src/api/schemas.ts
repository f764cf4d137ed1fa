import { z } from 'zod';
import { NodeInfoSchema } from '@cps/services';

/** The wire shapes of the director's API, shared by the routes and the OpenAPI document. */

/** A user's own name for an application or service: letters, digits, spaces, `.`, `_`, `-`. */
export const NameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9._-])?$/, 'letters, digits, space . _ -; 1-64');
export const UsernameSchema = z
  .string()
  .min(2)
  .max(32)
  .regex(/^[a-z][a-z0-9_-]*$/, 'lowercase letters, digits, _ and -, starting with a letter');
export const PasswordSchema = z.string().min(8).max(256);
/** The longest path parameter of any route, characters (decoded): the router refuses longer ones. */
export const MAX_PATH_PARAM_LENGTH = 128;
/** `{app}`, `{svc}` in paths: the id, or the caller's name for it. */
export const RefSchema = z.string().min(1).max(MAX_PATH_PARAM_LENGTH);
const Description = z.string().max(1000);
const Time = z.string().describe('ISO-8601 time');

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string().describe('stable error code'),
    detail: z.string(),
    issues: z
      .array(z.object({ path: z.string(), code: z.string(), message: z.string() }))
      .optional()
      .describe('one entry per offending field (the first 100; `detail` says how many there were)'),
    requestId: z.string(),
  })
  .meta({ id: 'Problem' });

export const UserSchema = z
  .object({
    userId: z.string(),
    username: z.string(),
    role: z.enum(['admin', 'user']),
    credit: z.number().int(),
    createdAt: Time,
  })
  .meta({ id: 'User' });

export const LoginSchema = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(256),
});
export const SessionSchema = z
  .object({ token: z.string(), tokenId: z.string(), expiresAt: Time, user: UserSchema })
  .meta({ id: 'Session' });

export const RegisterSchema = z.strictObject({
  username: UsernameSchema,
  password: PasswordSchema,
  role: z.enum(['admin', 'user']).default('user'),
  credit: z.number().int().min(0).max(1_000_000).optional(),
});
export const CreditSchema = z.strictObject({
  amount: z
    .number()
    .int()
    .min(-1_000_000)
    .max(1_000_000)
    .refine((n) => n !== 0, 'not zero'),
  reason: z.string().max(200).default(''),
});

export const TokenSchema = z
  .object({
    tokenId: z.string(),
    kind: z.enum(['session', 'api']),
    name: z.string(),
    scopes: z.array(z.enum(['read', 'write', 'admin'])),
    createdAt: Time,
    expiresAt: Time,
    revoked: z.boolean(),
  })
  .meta({ id: 'Token' });
export const NewTokenSchema = z.strictObject({
  name: NameSchema,
  scopes: z
    .array(z.enum(['read', 'write', 'admin']))
    .min(1)
    .max(3)
    .default(['read', 'write']),
  ttlDays: z.number().int().min(1).max(3650).default(90),
});
export const CreatedTokenSchema = TokenSchema.extend({
  token: z.string().describe('the secret: shown once, never stored'),
}).meta({ id: 'CreatedToken' });

export const ServiceSummarySchema = z
  .object({
    serviceId: z.string(),
    name: z.string(),
    type: z.string(),
    cloud: z.string(),
    state: z.string().describe('INIT, PROLOGUE, RUNNING, ADAPTING, EPILOGUE, STOPPED, ERROR'),
  })
  .meta({ id: 'ServiceSummary' });

export const ApplicationSchema = z
  .object({
    appId: z.string(),
    name: z.string(),
    description: z.string(),
    owner: z.string(),
    createdAt: Time,
    services: z.array(ServiceSummarySchema),
  })
  .meta({ id: 'Application' });

/** Where a page of applications ends: the last one's name and id (opaque to clients). */
export interface AppCursor {
  readonly name: string;
  readonly appId: string;
}
export const encodeAppCursor = (c: AppCursor): string =>
  Buffer.from(JSON.stringify([c.name, c.appId])).toString('base64url');

/** `GET /v1/applications`: pages ordered by name (then id), `after` a previous `nextCursor`. */
export const ApplicationsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100).describe('applications per page'),
  after: z
    .string()
    .max(400)
    .transform((s, ctx): AppCursor => {
      try {
        const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
        if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string'))
          return { name: v[0] as string, appId: v[1] as string };
      } catch {
        // not ours: reported below
      }
      ctx.addIssue({ code: 'custom', message: 'not a cursor this API handed out' });
      return z.NEVER;
    })
    .optional()
    .describe('continue after this cursor (a previous `nextCursor`)'),
});

export const ApplicationPageSchema = z
  .object({
    applications: z.array(ApplicationSchema).describe('ordered by name, then id'),
    nextCursor: z.string().optional().describe('more follow: pass it as `after` (absent: the last page)'),
  })
  .meta({ id: 'ApplicationPage' });
export const NewApplicationSchema = z.strictObject({
  name: NameSchema,
  description: Description.default(''),
});
export const PatchApplicationSchema = z
  .strictObject({ name: NameSchema.optional(), description: Description.optional() })
  .refine((p) => p.name !== undefined || p.description !== undefined, 'name or description');

export const ServiceSchema = ServiceSummarySchema.extend({
  appId: z.string(),
  archive: z.object({ version: z.string(), size: z.number(), digest: z.string() }).optional(),
  nodes: z.record(z.string(), z.number()).describe('nodes per role'),
  managerRunning: z.boolean(),
}).meta({ id: 'Service' });
export const NewServiceSchema = z.strictObject({
  type: z.string().min(1).max(64),
  name: NameSchema,
  cloud: z.string().min(1).max(64).default('local'),
  config: z.record(z.string(), z.unknown()).default({}),
});
export const PatchServiceSchema = z.strictObject({ name: NameSchema });

export const OperationSchema = z
  .object({
    operationId: z.string(),
    kind: z.string(),
    state: z.enum(['running', 'succeeded', 'failed']),
    appId: z.string().optional(),
    serviceId: z.string().optional(),
    startedAt: Time,
    finishedAt: Time.optional(),
    reason: z.string().optional(),
    steps: z.array(z.string()).optional().describe('progress of a director operation'),
  })
  .meta({ id: 'Operation' });
export const AcceptedSchema = z.object({ operationId: z.string() }).meta({ id: 'Accepted' });

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
export const ArchiveSchema = z.object({ version: z.string(), size: z.number(), digest: z.string() });

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

export const CloudSchema = z.object({ name: z.string(), kind: z.string(), default: z.boolean() });
export const ResourceSchema = z.object({
  nodeId: z.string(),
  kind: z.enum(['manager', 'agent']),
  appId: z.string(),
  serviceId: z.string(),
  role: z.string().optional(),
  cloud: z.string(),
  status: z.string(),
  since: Time,
  hours: z.number().int().describe('node-hours so far (started hours)'),
  cost: z.number().int().describe('credits: one per started node-hour'),
});

export const HealthSchema = z.object({
  status: z.enum(['ok', 'starting', 'degraded']),
  checks: z.record(z.string(), z.string()),
});
