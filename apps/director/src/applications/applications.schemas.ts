import { z } from 'zod';
import { NameSchema, RefSchema, TimeSchema } from '../api/schemas.js';

const Description = z.string().max(1000);

/** `{app}` in paths. */
export const AppParamsSchema = z.object({ app: RefSchema });

export const ServiceSummarySchema = z
  .object({
    serviceId: z.string(),
    name: z.string(),
    type: z.string(),
    cloud: z.string(),
    state: z.string().describe('INIT, PROLOGUE, RUNNING, ADAPTING, EPILOGUE, STOPPED, ERROR'),
    nodes: z
      .record(z.string(), z.number().int())
      .describe('its agent nodes per role (requested to removing)'),
  })
  .meta({ id: 'ServiceSummary' });

export const ApplicationSchema = z
  .object({
    appId: z.string(),
    name: z.string(),
    description: z.string(),
    owner: z.string(),
    createdAt: TimeSchema,
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

export const ApplicationLogsQuerySchema = z.strictObject({
  tailBytes: z.coerce.number().int().min(1).max(1_048_576).default(16_384),
});
export const ApplicationLogsSchema = z.object({
  services: z.array(
    z.object({ serviceId: z.string(), name: z.string(), state: z.string(), text: z.string() }),
  ),
});
