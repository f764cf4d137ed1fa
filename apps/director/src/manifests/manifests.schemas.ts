import { z } from 'zod';
import { NameSchema } from '../api/schemas.js';
import { MAX_SERVICES } from '../applications/app-decider.js';

/** The largest manifest accepted, in bytes of its text (JSON as sent, or the YAML text). */
export const MAX_MANIFEST_BYTES = 256 * 1024;

const Url = z
  .url({ protocol: /^https?$/, error: 'an http(s) URL' })
  .max(2048)
  .describe('http(s) URL');

const UPLOAD = /^upload:\S{1,255}$/;

/** An archive: an http(s) URL to download, or `upload:<name>`, an archive the client uploads. */
const ArchiveRef = z
  .string()
  .max(2048)
  .superRefine((v, ctx) => {
    if (UPLOAD.test(v) || Url.safeParse(v).success) return;
    ctx.addIssue({
      code: 'invalid_format',
      format: 'url',
      input: v,
      message: 'an http(s) URL, or upload:<name> for an archive the client uploads',
    });
  });

/** A node count: a number, or a numeric string as ConPaaS's manifests wrote them (`"2"`). */
const Count = z.union(
  [z.number().int().min(0).max(100), z.string().regex(/^(?:100|[1-9]?[0-9])$/, 'a count from 0 to 100')],
  {
    error: 'a count from 0 to 100 (number or numeric string)',
  },
);

/**
 * The keys every manifest service entry may carry: ConPaaS's (`Type`, `ServiceName`, `Cloud`,
 * `Start`, `StartupScript`, `StartupInstances`, and `Archive`, `Dump`, `Password` that its service
 * types shared) and cps's `Config` (the service's settings, checked against the type's
 * `configSchema`). Type-specific keys are checked against the type's `manifestKeys`; keys that no
 * registered type declares are refused.
 */
export const ManifestServiceSchema = z
  .object({
    ServiceName: NameSchema.optional().describe(
      'unique within the manifest; default: the type (then `<type>-2`, ...)',
    ),
    Type: z.string().min(1).max(64).describe('a registered service type (GET /v1/service-types)'),
    Cloud: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('a cloud of GET /v1/clouds; `default` or absent: the first one'),
    Start: z
      .union([z.boolean(), z.literal(0), z.literal(1)], { error: '0, 1, true or false' })
      .optional()
      .describe('1 or true: start the service once added (default 0)'),
    Archive: ArchiveRef.optional().describe(
      'code archive, downloaded from an allowed source; `upload:<name>`: the client uploads it to the service once added, and nothing starts before (`cps deploy` does so for local files)',
    ),
    Dump: Url.optional(),
    Password: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe('a secret: never stored in clear, never exported'),
    StartupScript: Url.optional(),
    Links: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a link name'), NameSchema)
      .optional()
      .describe(
        'cps: link name -> the ServiceName of another service of this manifest, whose endpoints reach this service’s nodes (no cycles)',
      ),
    Volumes: z
      .array(z.unknown())
      .optional()
      .describe(
        'cps: for a storage service, the volumes it makes ([{ Name, Replicas, Quota }]); for any other, the volumes its nodes mount ([{ Storage: a storage ServiceName, Volume, Mount: a path in the work directory }], host mode)',
      ),
    StartupInstances: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a role name'), Count)
      .optional()
      .describe('nodes per role once started'),
    Config: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        'cps: the service settings (the type’s configSchema); secret fields hold values, not references',
      ),
  })
  .catchall(z.unknown())
  .describe('one service; besides these keys, only those of its type’s manifestKeys')
  .meta({ id: 'ManifestService' });

/** An application manifest (ConPaaS's format, JSON or YAML). */
export const ManifestSchema = z
  .strictObject({
    Application: NameSchema.optional().describe(
      'the application’s name; absent: derived from Description, else `application`',
    ),
    Description: z.string().max(1000).optional(),
    Services: z.array(ManifestServiceSchema).min(1).max(MAX_SERVICES).describe('in dependency order'),
  })
  .meta({ id: 'Manifest' });

/** A manifest in YAML, sent as JSON (`{"yaml": "<text>"}`). */
export const ManifestYamlSchema = z
  .strictObject({ yaml: z.string().describe('the manifest as YAML text') })
  .meta({ id: 'ManifestYaml' });

/**
 * The request body of validate and deploy, for the OpenAPI document: a manifest or its YAML form.
 * Any JSON passes this schema and the handlers read the body as sent: their answer names every
 * problem with its path, which a refusal at the door would not.
 */
export const ManifestRequestSchema = z
  .union([ManifestSchema, ManifestYamlSchema, z.unknown()])
  .describe('a manifest, or {"yaml": "<manifest text>"}; anything else is answered with its issues');

const IssueSchema = z.object({ path: z.string(), code: z.string(), message: z.string() });

export const ManifestValidationSchema = z
  .object({
    valid: z.boolean(),
    issues: z.array(IssueSchema).describe('every problem, with the JSON path of the offending value'),
  })
  .meta({ id: 'ManifestValidation' });

export const ManifestDeploymentSchema = z
  .object({ operationId: z.string(), appId: z.string() })
  .meta({ id: 'ManifestDeployment' });

/** The keys a service entry knows whatever its type. */
export const COMMON_SERVICE_KEYS: ReadonlySet<string> = new Set([
  'ServiceName',
  'Type',
  'Cloud',
  'Start',
  'StartupScript',
  'StartupInstances',
  'Config',
  'Links',
]);

/**
 * The service entry schema of a platform: the documented keys plus the `manifestKeys` its
 * registered types declare, every other key refused with its path.
 */
export const serviceEntrySchema = (typeKeys: Iterable<string>) => {
  const extra: Record<string, z.ZodType> = {};
  for (const k of typeKeys) if (!(k in ManifestServiceSchema.shape)) extra[k] = z.unknown().optional();
  return z.strictObject({ ...ManifestServiceSchema.shape, ...extra });
};

/** The top level alone (each service entry is checked on its own, so all of them are). */
export const ManifestEnvelopeSchema = z.strictObject({
  ...ManifestSchema.shape,
  Services: z.array(z.unknown()).min(1).max(MAX_SERVICES),
});
