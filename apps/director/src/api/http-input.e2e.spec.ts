import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../director.js';
import { DirectorHarness, type Client, type HttpAnswer } from '../director.spec-helpers.js';

/** A JSON text of arrays nested `depth` deep around `1`. */
const nestedArrays = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

const problem = (r: HttpAnswer, status: number, code: string) => {
  expect(r.status, r.text).toBe(status);
  expect(r.headers['content-type']).toContain('application/problem+json');
  expect(r.body).toMatchObject({ status, code, requestId: expect.any(String) });
};

describe('the HTTP input the director refuses, as problem+json, writing nothing', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    alice = await h.user(d, 'alice');
  });
  afterAll(async () => h?.cleanup());

  it('refuses JSON nested too deep (naming where) and bodies of another media type on the manifest routes', async () => {
    const head = await d.core.store.head();
    for (const route of ['/v1/manifests/validate', '/v1/manifests']) {
      for (const raw of [`{"Services":${nestedArrays(5_000)}}`, `{"Services":${nestedArrays(40)}}`]) {
        const r = await alice.request('POST', route, { raw, contentType: 'application/json' });
        problem(r, 400, 'validation');
        expect(r.body.issues).toEqual([
          expect.objectContaining({ path: `$.Services${'[0]'.repeat(31)}`, code: 'too_deep' }),
        ]);
      }
      const yaml = await alice.post(route, { yaml: `Services: ${nestedArrays(40)}\n` });
      expect(yaml.status).toBe(route.endsWith('validate') ? 200 : 400);
      expect(yaml.body.issues).toEqual([expect.objectContaining({ code: 'too_deep' })]);
      for (const contentType of [
        'application/octet-stream',
        'text/plain',
        'application/x-www-form-urlencoded',
      ]) {
        const r = await alice.request('POST', route, { raw: '{"Services":[]}', contentType });
        problem(r, 415, 'unsupported_media_type');
        expect(r.body.issues).toEqual([
          expect.objectContaining({ path: '$', code: 'unsupported_media_type' }),
        ]);
      }
    }
    // the YAML media types are the manifest routes' own
    const yamlText = await alice.request('POST', '/v1/manifests/validate', {
      raw: 'Services:\n  - Type: generic\n',
      contentType: 'text/yaml',
    });
    expect(yamlText.body).toEqual({ valid: true, issues: [] });
    const yamlApp = await alice.request('POST', '/v1/applications', {
      raw: 'name: x\n',
      contentType: 'text/yaml',
    });
    problem(yamlApp, 415, 'unsupported_media_type');
    expect(await d.core.store.head()).toBe(head);
  });

  it('lists the first 100 issues of a body with very many, saying how many there were', async () => {
    const fields = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i]));
    const r = await alice.post('/v1/applications', { name: 'many', ...fields });
    problem(r, 400, 'validation');
    expect(r.body.issues).toHaveLength(100);
    expect(r.body.issues[0]).toMatchObject({ path: '$.k0', code: 'unrecognized_keys' });
    expect(r.body.detail).toContain('50000 issues, the first 100 listed');
    expect(r.text.length).toBeLessThan(20_000);
  });

  it('answers malformed escapes and over-long path parameters as problem+json, taking those the document allows', async () => {
    for (const path of ['/v1/applications/%zz', '/v1/applications/a%/services', '/v1/me%E0%A4%A']) {
      const r = await alice.request('GET', path, { headers: { 'x-request-id': 'bad-escape' } });
      problem(r, 400, 'validation');
      expect(r.body.requestId).toBe('bad-escape');
      expect(r.headers['x-request-id']).toBe('bad-escape');
      expect(r.body.issues).toEqual([expect.objectContaining({ path: 'path', code: 'invalid_escape' })]);
    }
    // the OpenAPI document allows up to 128 characters: such a name is looked for
    for (const length of [101, 128]) {
      problem(await alice.get(`/v1/applications/${'a'.repeat(length)}`), 404, 'not_found');
      problem(await alice.get(`/v1/applications/x/services/${'é'.repeat(length)}`), 404, 'not_found');
    }
    for (const length of [129, 4_000]) {
      const r = await alice.get(`/v1/applications/${'a'.repeat(length)}/services`);
      problem(r, 400, 'validation');
      expect(r.body.issues).toEqual([expect.objectContaining({ path: 'path', code: 'too_big' })]);
    }
  });

  it('refuses any body but an empty object on routes that take none', async () => {
    const app = await alice.post('/v1/applications', { name: 'loose' });
    expect(app.status).toBe(201);
    const head = await d.core.store.head();
    for (const [method, path] of [
      ['POST', `/v1/applications/${app.body.appId}/start`],
      ['POST', `/v1/applications/${app.body.appId}/stop`],
      ['DELETE', `/v1/applications/${app.body.appId}`],
      ['DELETE', '/v1/sessions/current'],
    ] as const)
      for (const raw of ['[]', 'null', '[{}]', '0', 'false', '"x"', '{"force":true}']) {
        const r = await alice.request(method, path, { raw, contentType: 'application/json' });
        problem(r, 400, 'validation');
        expect(r.body.issues, `${method} ${path} ${raw}`).toEqual([
          expect.objectContaining({ path: '$', code: 'unexpected_body' }),
        ]);
      }
    expect(await d.core.store.head()).toBe(head);
    // an empty object is no body: the request goes on (here to a 404)
    problem(await alice.post('/v1/applications/nosuch/start', {}), 404, 'not_found');
    expect((await alice.get('/v1/me')).status).toBe(200);
  });

  it('refuses unknown fields and anything but a JSON object as the arguments of a method call', async () => {
    expect(
      (await alice.post('/v1/applications/loose/services', { type: 'generic', name: 'jobs' })).status,
    ).toBe(201);
    const call = '/v1/applications/loose/services/jobs/calls/run';
    const head = await d.core.store.head();
    const unknown = await alice.post(call, { parameters: ['a'], colour: 'red', extra: { x: 1 } });
    problem(unknown, 400, 'validation');
    expect(unknown.body.issues).toEqual([
      expect.objectContaining({ path: '$.colour', code: 'unrecognized_keys' }),
      expect.objectContaining({ path: '$.extra', code: 'unrecognized_keys' }),
    ]);
    for (const raw of ['null', '[]', '"run"', '1'])
      expect(
        (await alice.request('POST', call, { raw, contentType: 'application/json' })).body.issues,
        raw,
      ).toEqual([expect.objectContaining({ path: '$', code: 'invalid_type' })]);
    for (const contentType of ['application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded'])
      problem(
        await alice.request('POST', call, { raw: 'parameters=a', contentType }),
        415,
        'unsupported_media_type',
      );
    problem(await alice.post(call, { parameters: 'a' }), 400, 'validation');
    // well-formed arguments reach the service, which is not started
    problem(await alice.post(call, { parameters: ['a'] }), 409, 'conflict');
    problem(await alice.request('POST', call), 409, 'conflict');
    expect(await d.core.store.head()).toBe(head);
  });
});
