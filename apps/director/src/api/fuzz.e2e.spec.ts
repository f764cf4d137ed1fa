import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@cps/core';
import type { Director } from '../director.js';
import { ADMIN_PASSWORD, DirectorHarness, type Client } from '../director.spec-helpers.js';

/**
 * Every operation of the OpenAPI document, sent input it must refuse: path parameters too long or
 * badly escaped, query parameters of the wrong type or unknown, bodies of the wrong type, with
 * unknown or mistyped fields, nested too deep, too large, malformed, or of another media type.
 * Each answer is problem+json with a 4xx status, and nothing is written. The cases are generated
 * from the document and a seeded generator: the same on every run.
 */

type Schema = {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  pattern?: string;
  maxLength?: number;
  maximum?: number;
  minimum?: number;
};
type Parameter = { name: string; in: 'path' | 'query'; schema: Schema };
type Operation = {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
};
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};

interface Case {
  readonly operationId: string;
  readonly what: string;
  readonly method: string;
  readonly path: string;
  readonly body?: string | Buffer;
  /** `null`: the body goes without a content type. */
  readonly contentType?: string | null;
  /** The status and code the refusal must have, when one is certain. */
  readonly status?: number;
  readonly code?: string;
  /** An issue whose path starts so must name the offending input. */
  readonly issueAt?: string;
}

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

/** A linear congruential generator: seeded, so every run sends the same cases. */
const generator = (seed: number) => () => {
  seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
  return seed / 4_294_967_296;
};

const nested = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
const MIB = 1024 * 1024;

/** A value of another JSON type than the one a schema wants (undefined: any value may pass). */
const wrongFor = (s: Schema): unknown => {
  switch (s.type) {
    case 'string':
      return 12_345;
    case 'integer':
    case 'number':
      return 'NaN';
    case 'boolean':
      return 'yes';
    case 'array':
      return { not: 'a list' };
    case 'object':
      return ['not', 'an', 'object'];
    default:
      return undefined;
  }
};

describe('fuzzing every route of the OpenAPI document', () => {
  let h: DirectorHarness;
  let d: Director;
  let admin: Client;
  let ca: string;
  let doc: Document;
  /** A valid value for each path parameter: the refusals come from the value under test. */
  const valid: Record<string, string> = {
    node: 'n1',
    method: 'run',
    id: 'op0123456789a',
    serial: 'ab',
    version: 'v1',
  };

  const send = (c: Case, token: string): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const body = c.body === undefined ? undefined : Buffer.from(c.body);
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (body) headers['content-length'] = String(body.length);
      if (body && c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
      const req = httpsRequest(
        new URL(c.path, d.url),
        { method: c.method, headers, ca, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (b: Buffer) => chunks.push(b));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: String(res.headers['content-type'] ?? ''),
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    ca = [h.nats.secrets.busCa.certPem, ...h.nats.secrets.busCa.chainPem].join('');
    admin = await h.signIn(d, 'admin', ADMIN_PASSWORD);
    const alice = await h.user(d, 'alice');
    const app = await alice.post('/v1/applications', { name: 'fuzzed' });
    const svc = await alice.post('/v1/applications/fuzzed/services', { type: 'generic', name: 'svc' });
    expect([app.status, svc.status]).toEqual([201, 201]);
    Object.assign(valid, {
      app: app.body.appId as string,
      svc: svc.body.serviceId as string,
      user: (await alice.get('/v1/me')).body.userId as string,
    });
    doc = (await admin.get('/openapi.json')).body as Document;
  });
  afterAll(async () => h?.cleanup());

  /** The cases of one operation. */
  const casesOf = (method: string, template: string, op: Operation, random: () => number): Case[] => {
    const out: Case[] = [];
    const add = (c: Omit<Case, 'operationId' | 'method'> & { method?: string }) =>
      out.push({ operationId: op.operationId, method: method.toUpperCase(), ...c });
    const at = (overrides: Record<string, string> = {}, query = '') =>
      template.replace(
        /\{(\w+)\}/g,
        (_, name: string) => overrides[name] ?? encodeURIComponent(valid[name]!),
      ) + query;
    const junk = (length: number) =>
      Array.from({ length }, () => String.fromCodePoint(0x20 + Math.floor(random() * 0x2fd0))).join('');
    const params = op.parameters ?? [];

    // path parameters: badly escaped, too long, off their pattern
    const pathParams = params.filter((p) => p.in === 'path');
    if (pathParams.length === 0)
      add({ what: 'a bad escape in the path', path: `${template}%zz`, status: 400, issueAt: 'path' });
    for (const p of pathParams) {
      for (const bad of ['%zz', 'a%', '%E0%A4%A'])
        add({ what: `${p.name}: escape ${bad}`, path: at({ [p.name]: bad }), status: 400, issueAt: 'path' });
      add({
        what: `${p.name}: 129 characters`,
        path: at({ [p.name]: 'a'.repeat(129) }),
        status: 400,
        issueAt: 'path',
      });
      const long = encodeURIComponent(junk(129 + Math.floor(random() * 1_000)));
      add({ what: `${p.name}: long junk`, path: at({ [p.name]: long }), status: 400, issueAt: 'path' });
      // past what the HTTP parser takes: refused before routing
      add({
        what: `${p.name}: 20,000 characters`,
        path: at({ [p.name]: 'a'.repeat(20_000) }),
        status: 431,
        code: 'payload_too_large',
      });
      if (p.schema.pattern)
        add({
          what: `${p.name}: off its pattern`,
          path: at({ [p.name]: 'Not%20It!' }),
          status: 400,
          issueAt: `path.${p.name}`,
        });
    }

    // query parameters: of the wrong type, out of range, too long, repeated, unknown
    const queryParams = params.filter((p) => p.in === 'query');
    for (const p of queryParams) {
      const s = p.schema;
      const values =
        s.type === 'integer'
          ? [
              'abc',
              '0.5',
              '1e400',
              String((s.minimum ?? 0) - 1),
              String((s.maximum ?? 1e9) + 1),
              '9'.repeat(400),
            ]
          : s.maxLength !== undefined
            ? ['x'.repeat(s.maxLength + 1)]
            : [];
      for (const v of values)
        add({
          what: `?${p.name}=${v.slice(0, 12)}`,
          path: at({}, `?${p.name}=${v}`),
          status: 400,
          issueAt: `query.${p.name}`,
        });
      if (s.type === 'integer')
        add({
          what: `?${p.name} twice`,
          path: at({}, `?${p.name}=1&${p.name}=2`),
          status: 400,
          issueAt: `query.${p.name}`,
        });
    }
    if (queryParams.length > 0)
      add({
        what: 'an unknown query field',
        path: at({}, '?zzUnknown=1'),
        status: 400,
        issueAt: 'query.zzUnknown',
      });

    // bodies: a GET has none (HTTP ignores one)
    if (method === 'get') return out;
    const content = op.requestBody?.content ?? {};
    const takesJson = 'application/json' in content;
    const takesBody = Object.keys(content).length > 0;
    const path = at();
    const json = (what: string, body: string, expected: Partial<Case> = {}) =>
      add({ what, path, body, contentType: 'application/json', ...expected });
    const refusal = takesJson ? { status: 400 } : takesBody ? { status: 415 } : { status: 400, issueAt: '$' };
    if (takesBody) add({ what: 'no body', path });
    for (const v of ['null', '[]', '0', '"text"', 'true', '[{}]', JSON.stringify(junk(20))])
      json(`body ${v.slice(0, 12)}`, v, refusal);
    json('an unknown field', '{"zzUnknown":1}', refusal);
    json('JSON nested 40 deep', `{"zzDeep":${nested(40)}}`, { status: 400, issueAt: '$.zzDeep' });
    json('JSON nested 100,000 deep', nested(100_000), { status: 400, issueAt: '$' });
    json('malformed JSON', '{"a":', { status: 400, issueAt: '$' });
    json('an empty JSON body', '', { status: 400 });
    json('a prototype key', '{"__proto__":{"admin":true}}', { status: 400 });
    json('a body over the limit', `{"a":"${'x'.repeat(MIB + 10)}"}`, {
      status: 413,
      code: 'payload_too_large',
    });
    json(
      '20,000 unknown fields',
      JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]))),
      // too many for a route, or too large a manifest
      takesJson ? {} : refusal,
    );
    if (takesJson) {
      let schema = content['application/json']!.schema;
      if (schema.$ref) schema = doc.components.schemas[schema.$ref.split('/').at(-1)!]!;
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        const wrong = wrongFor(prop.$ref ? doc.components.schemas[prop.$ref.split('/').at(-1)!]! : prop);
        if (wrong !== undefined)
          json(`${name}: of the wrong type`, JSON.stringify({ [name]: wrong }), {
            status: 400,
            issueAt: `$.${name}`,
          });
      }
    }
    // media types the route does not take (JSON refused above where it takes none)
    for (const [contentType, body] of [
      ['text/plain', '{}'],
      ['application/octet-stream', junk(64)],
      ['application/x-www-form-urlencoded', 'a=1'],
      ['application/xml', '<a/>'],
      ['multipart/form-data; boundary=zz', '--zz--'],
      [null, '{}'],
    ] as const)
      if (!(contentType !== null && contentType.split(';')[0]! in content))
        add({
          what: `a ${contentType ?? 'typeless'} body`,
          path,
          body,
          contentType,
          status: 415,
          code: 'unsupported_media_type',
        });
    return out;
  };

  it('answers every case with a 4xx problem+json, writing nothing', async () => {
    const random = generator(0xc95);
    const cases = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) => casesOf(method, path, op, random)),
    );
    const operations = Object.values(doc.paths).flatMap((ops) =>
      Object.values(ops).map((o) => o.operationId),
    );
    expect(new Set(cases.map((c) => c.operationId))).toEqual(new Set(operations));

    const head = await d.core.store.head();
    const nodes = (await h.cloud.list()).length;
    const failures: string[] = [];
    for (const c of cases) {
      const a = await send(c, admin.token!);
      const where = `${c.operationId} ${c.method} ${c.path.slice(0, 80)} [${c.what}]: ${a.status} ${a.text.slice(0, 300)}`;
      // validate answers a manifest's issues: that is its job
      if (c.operationId === 'validateManifest' && a.status === 200) {
        if ((JSON.parse(a.text) as { valid: boolean }).valid !== false) failures.push(where);
        continue;
      }
      let p: { status?: unknown; code?: unknown; requestId?: unknown; issues?: { path: string }[] } = {};
      try {
        p = JSON.parse(a.text) as typeof p;
      } catch {
        // reported below
      }
      const ok =
        a.status >= 400 &&
        a.status < 500 &&
        a.contentType.startsWith('application/problem+json') &&
        p.status === a.status &&
        typeof p.code === 'string' &&
        p.code in ErrorCodes &&
        typeof p.requestId === 'string' &&
        (c.status === undefined || a.status === c.status) &&
        (c.code === undefined || p.code === c.code) &&
        (c.issueAt === undefined || (p.issues ?? []).some((i) => i.path.startsWith(c.issueAt!)));
      if (!ok) failures.push(where);
    }
    expect(failures).toEqual([]);
    expect(await d.core.store.head()).toBe(head);
    expect(await h.cloud.list()).toHaveLength(nodes);
    expect(cases.length).toBeGreaterThan(500);
  }, 60_000);
});
