import { z } from 'zod';
import { ErrorCodes } from '@cps/core';
import type { RouteDefinition } from './route.js';
import { ProblemSchema } from './schemas.js';

type Json = Record<string, unknown>;

/** Error codes any route may answer (besides those its definition lists). */
export const COMMON_ERRORS = [
  'validation',
  'unauthenticated',
  'forbidden',
  'not_found',
  'payload_too_large',
  'internal',
  'unavailable',
] as const;

const statusText: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted: follow the operation at Location',
  204: 'No content',
};

/**
 * Turns zod schemas into OpenAPI 3.1 schema objects (JSON Schema 2020-12), hoisting schemas that
 * carry an `id` into `components.schemas` and pointing every use at them.
 */
class SchemaCollector {
  readonly components: Record<string, Json> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): Json {
    const js = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
    const defs = (js['$defs'] ?? {}) as Record<string, Json>;
    const rename = new Map<string, string>();
    for (const [id, def] of Object.entries(defs)) {
      const name = this.place(id, def, io);
      rename.set(id, name);
    }
    delete js['$defs'];
    delete js['$schema'];
    const fixed = this.refs(js, rename) as Json;
    // a schema that is itself a component comes back as its definition: refer to it instead
    const id = (schema.meta() as { id?: string } | undefined)?.id;
    if (id && typeof fixed['$ref'] === 'string' && Object.keys(fixed).length === 1) return fixed;
    if (id) return { $ref: `#/components/schemas/${this.place(id, fixed, io)}` };
    for (const [name, def] of Object.entries(this.components))
      this.components[name] = this.refs(def, rename) as Json;
    return fixed;
  }

  private place(id: string, def: Json, io: 'input' | 'output'): string {
    const clean = this.refs(def, new Map()) as Json;
    const existing = this.components[id];
    if (!existing || JSON.stringify(existing) === JSON.stringify(clean)) {
      this.components[id] = clean;
      return id;
    }
    const alt = io === 'input' ? `${id}Input` : `${id}Output`;
    this.components[alt] = clean;
    return alt;
  }

  private refs(v: unknown, rename: ReadonlyMap<string, string>): unknown {
    if (Array.isArray(v)) return v.map((x) => this.refs(x, rename));
    if (v === null || typeof v !== 'object') return v;
    const out: Json = {};
    for (const [k, x] of Object.entries(v as Json)) {
      if (k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/')) {
        const id = x.slice('#/$defs/'.length);
        out[k] = `#/components/schemas/${rename.get(id) ?? id}`;
      } else if (k !== '$schema') out[k] = this.refs(x, rename);
    }
    return out;
  }
}

const parameters = (c: SchemaCollector, schema: z.ZodObject, where: 'path' | 'query'): Json[] => {
  const js = c.convert(schema, 'input');
  const props = (js['properties'] ?? {}) as Record<string, Json>;
  const required = new Set((js['required'] ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: s,
  }));
};

/** The OpenAPI 3.1 document of routes, in their order: each with its inputs, its answer and its errors. */
export const buildOpenApi = (routes: readonly RouteDefinition[], info: { version: string }): Json => {
  const c = new SchemaCollector();
  const problem = c.convert(ProblemSchema, 'output');
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const responses: Record<string, Json> = {};
    responses[String(r.status)] =
      r.status === 204 || !r.response
        ? { description: statusText[r.status] }
        : {
            description: statusText[r.status],
            content: {
              [r.produces ?? 'application/json']: {
                schema: r.produces ? { type: 'string' } : c.convert(r.response, 'output'),
              },
            },
            ...(r.status === 202
              ? { headers: { Location: { description: 'the operation', schema: { type: 'string' } } } }
              : {}),
          };
    const codes = [
      ...new Set([...COMMON_ERRORS, ...(r.method === 'GET' ? [] : ['unsupported_media_type']), ...r.errors]),
    ].filter((code) => code in ErrorCodes);
    const byStatus = new Map<number, string[]>();
    for (const code of codes) {
      const status = ErrorCodes[code as keyof typeof ErrorCodes].status;
      if (r.auth === 'none' && (code === 'unauthenticated' || code === 'forbidden')) continue;
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0]))
      responses[String(status)] = {
        description: `error: ${list.join(', ')}`,
        content: { 'application/problem+json': { schema: problem } },
      };
    const op: Json = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      security: r.auth === 'none' ? [] : [{ bearer: [] }, { clientCertificate: [] }],
      parameters: [...parameters(c, r.params, 'path'), ...parameters(c, r.query, 'query')],
      responses,
    };
    const body = r.body;
    if (body)
      op['requestBody'] = {
        required: true,
        content: Object.fromEntries(
          (r.consumes ?? ['application/json']).map((type) => [
            type,
            {
              schema:
                type === 'application/json'
                  ? c.convert(body, 'input')
                  : { type: 'string', contentMediaType: type },
            },
          ]),
        ),
      };
    if (r.auth === 'admin') op['description'] = 'Admins only.';
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'cps director API',
      version: info.version,
      description:
        'The single gateway of a cps platform: users, credentials, applications, services and their nodes. Errors are application/problem+json with a stable `code` and `issues[{path, code, message}]`.',
    },
    servers: [{ url: '/' }],
    tags: [...new Set(routes.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: c.components,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'a session token (POST /v1/sessions) or an API token',
        },
        clientCertificate: { type: 'mutualTLS', description: 'a certificate from POST /v1/certificates' },
      },
    },
  };
};
