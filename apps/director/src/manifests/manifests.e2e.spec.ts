import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamEventStore } from '@cps/events';
import type { Director } from '../director.js';
import { tarOf } from '../../../../libs/archives/src/extract/archives.spec-helpers.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';
import { ARCHIVE_ALLOW_ENV } from './manifests.feature.js';
import { aggregateIds } from '@cps/core';

const example = (path: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../../../../examples/${path}`, import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >;
/** A downloaded archive is checked like an upload: a real one. */
const ARCHIVE_BYTES = gzipSync(tarOf([{ path: 'run.sh', data: 'echo hi\n', mode: 0o755 }]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pathsAndCodes = (issues: { path: string; code: string }[]) =>
  issues.map((i) => ({ path: i.path, code: i.code }));

describe('manifests: validate, deploy as an operation, export', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let bob: Client;
  let archiveServer: Server;
  let archiveUrl: string;
  let downloads = 0;
  const allowBefore = process.env[ARCHIVE_ALLOW_ENV];

  const appNames = async (c: Client): Promise<string[]> =>
    ((await c.get('/v1/applications')).body.applications as { name: string }[]).map((a) => a.name).sort();

  /** Polls an operation until it is over. */
  const settled = async (c: Client, operationId: string, ms = 150_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await c.get(`/v1/operations/${operationId}`);
      expect(r.status).toBe(200);
      if (r.body.state !== 'running') return r.body as { state: string; reason?: string; appId: string };
      if (Date.now() > deadline) throw new Error(`operation ${operationId} still running`);
      await sleep(250);
    }
  };
  const steps = async (operationId: string): Promise<readonly string[]> => {
    const s = await d.operations.state(operationId);
    return s.status === 'NONE' ? [] : s.steps;
  };

  beforeAll(async () => {
    delete process.env[ARCHIVE_ALLOW_ENV];
    archiveServer = createServer((_req, res) => {
      downloads++;
      res.writeHead(200, { 'content-type': 'application/gzip' });
      res.end(ARCHIVE_BYTES);
    });
    await new Promise<void>((r) => archiveServer.listen(0, '127.0.0.1', r));
    archiveUrl = `http://127.0.0.1:${(archiveServer.address() as AddressInfo).port}/apps/code.tar.gz`;
    h = await DirectorHarness.start();
    d = await h.startDirector();
    alice = await h.user(d, 'alice');
    bob = await h.user(d, 'bob');
  });
  afterAll(async () => {
    if (allowBefore === undefined) delete process.env[ARCHIVE_ALLOW_ENV];
    else process.env[ARCHIVE_ALLOW_ENV] = allowBefore;
    await new Promise((r) => archiveServer?.close(r));
    await h?.cleanup();
  });

  it('takes the seed’s Sudoku manifest (php exists); refuses MediaWiki’s for its service types only, and creates nothing', async () => {
    const before = await appNames(alice);
    const sudoku = await alice.post('/v1/manifests/validate', example('seed/sudoku.json'));
    expect(sudoku.status).toBe(200);
    expect(sudoku.body.valid).toBe(true);
    const cases: [string, { path: string; code: string }[]][] = [
      [
        'seed/mediawiki.json',
        [
          { path: '$.Services[0].Type', code: 'unknown_service_type' },
          { path: '$.Services[1].Type', code: 'unknown_service_type' },
        ],
      ],
    ];
    for (const [file, expected] of cases) {
      const manifest = example(file);
      const v = await alice.post('/v1/manifests/validate', manifest);
      expect(v.status, file).toBe(200);
      expect(v.body.valid, file).toBe(false);
      expect(pathsAndCodes(v.body.issues), file).toEqual(expected);
      const r = await alice.post('/v1/manifests', manifest);
      expect(r.status, file).toBe(400);
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.body.code).toBe('validation');
      expect(pathsAndCodes(r.body.issues), file).toEqual(expected);
      // the same manifest as YAML: the same answer
      const y = await alice.post('/v1/manifests/validate', { yaml: JSON.stringify(manifest) });
      expect(pathsAndCodes(y.body.issues), file).toEqual(expected);
    }
    expect(await appNames(alice)).toEqual(before);
  });

  it('names every structural problem with its path; refuses oversized manifests; writes nothing', async () => {
    const before = await appNames(alice);
    const ok = { ServiceName: 'web', Type: 'generic' };
    const cases: [string, unknown, { path: string; code: string }[]][] = [
      ['not an object', [1, 2], [{ path: '$', code: 'invalid_type' }]],
      ['a string', 'hello', [{ path: '$', code: 'invalid_type' }]],
      ['Services missing', { Description: 'x' }, [{ path: '$.Services', code: 'invalid_type' }]],
      ['Services empty', { Services: [] }, [{ path: '$.Services', code: 'too_small' }]],
      ['Services not an array', { Services: { a: ok } }, [{ path: '$.Services', code: 'invalid_type' }]],
      [
        'too many services',
        { Services: Array.from({ length: 21 }, (_, i) => ({ ...ok, ServiceName: `s${i}` })) },
        [{ path: '$.Services', code: 'too_big' }],
      ],
      [
        'Start: "yes"',
        { Services: [{ ...ok, Start: 'yes' }] },
        [{ path: '$.Services[0].Start', code: 'invalid_union' }],
      ],
      [
        'Type missing',
        { Services: [{ ServiceName: 'x' }] },
        [{ path: '$.Services[0].Type', code: 'invalid_type' }],
      ],
      [
        'unknown keys, top level and service',
        { Owner: 'bob', Services: [ok, { ...ok, ServiceName: 'b', Colour: 'red' }] },
        [
          { path: '$.Owner', code: 'unrecognized_keys' },
          { path: '$.Services[1].Colour', code: 'unrecognized_keys' },
        ],
      ],
      [
        'several at once, across services',
        {
          Application: 'a/b',
          Services: [
            { ...ok, Start: 2, Archive: 'ftp://example.org/x.tgz' },
            { Type: 'nosuch', StartupInstances: { node: 'many' } },
          ],
        },
        [
          { path: '$.Application', code: 'invalid_format' },
          { path: '$.Services[0].Start', code: 'invalid_union' },
          { path: '$.Services[0].Archive', code: 'invalid_format' },
          { path: '$.Services[1].StartupInstances.node', code: 'invalid_format' },
          { path: '$.Services[1].Type', code: 'unknown_service_type' },
        ],
      ],
      [
        'service name with a slash',
        { Services: [{ ...ok, ServiceName: 'a/b' }] },
        [{ path: '$.Services[0].ServiceName', code: 'invalid_format' }],
      ],
      ['YAML that does not parse', { yaml: 'Services: [\n' }, [{ path: '$.yaml', code: 'invalid_yaml' }]],
      [
        'YAML with duplicate keys',
        { yaml: 'Services: []\nServices: []\n' },
        [{ path: '$.yaml', code: 'invalid_yaml' }],
      ],
    ];
    for (const [what, body, expected] of cases) {
      const v = await alice.post('/v1/manifests/validate', body);
      expect(v.status, what).toBe(200);
      expect(v.body.valid, what).toBe(false);
      expect(pathsAndCodes(v.body.issues), `${what}: ${JSON.stringify(v.body.issues)}`).toEqual(expected);
      const r = await alice.post('/v1/manifests', body);
      expect(r.status, what).toBe(400);
      expect(r.body.code, what).toBe('validation');
      expect(pathsAndCodes(r.body.issues), what).toEqual(expected);
    }
    const big = { Description: 'x'.repeat(300 * 1024), Services: [ok] };
    for (const [route, body] of [
      ['/v1/manifests/validate', big],
      ['/v1/manifests', big],
      ['/v1/manifests', { yaml: `Services:\n  - Type: generic\n# ${'x'.repeat(300 * 1024)}\n` }],
    ] as const) {
      const r = await alice.post(route, body);
      expect(r.status, route).toBe(413);
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.body).toMatchObject({ code: 'payload_too_large', issues: [{ path: '$', code: 'too_large' }] });
    }
    const malformed = await alice.request('POST', '/v1/manifests', {
      raw: '{"Services": [',
      contentType: 'application/json',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.issues).toEqual([expect.objectContaining({ path: '$', code: 'invalid_json' })]);
    expect((await h.client(d).post('/v1/manifests/validate', { Services: [ok] })).status).toBe(401);
    expect(await appNames(alice)).toEqual(before);
  });

  it('checks manifests against the platform: types, keys, roles, names, clouds, settings', async () => {
    const before = await appNames(alice);
    const cases: [string, unknown, { path: string; code: string }[]][] = [
      [
        'duplicate service names',
        {
          Services: [
            { ServiceName: 'web', Type: 'generic' },
            { ServiceName: 'db', Type: 'generic' },
            { ServiceName: 'web', Type: 'helloworld' },
          ],
        },
        [{ path: '$.Services[2].ServiceName', code: 'duplicate_service_name' }],
      ],
      [
        'a role the type does not have, and a fixed role count',
        { Services: [{ Type: 'generic', StartupInstances: { master: 2, node: '3', worker: 1 } }] },
        [
          { path: '$.Services[0].StartupInstances.master', code: 'fixed_role_count' },
          { path: '$.Services[0].StartupInstances.worker', code: 'unknown_role' },
        ],
      ],
      [
        'an unknown cloud',
        { Services: [{ Type: 'generic', Cloud: 'ec2-nowhere' }] },
        [{ path: '$.Services[0].Cloud', code: 'unknown_cloud' }],
      ],
      [
        'keys of other types, and a type-specific key of the wrong kind',
        {
          Services: [
            { Type: 'helloworld', Archive: 'http://example.org/a.tgz', Password: 'secret-password' },
            { Type: 'generic', StartRole: 7 },
          ],
        },
        [
          { path: '$.Services[0].Archive', code: 'not_for_type' },
          { path: '$.Services[0].Password', code: 'not_for_type' },
          { path: '$.Services[1].StartRole', code: 'invalid_type' },
        ],
      ],
      [
        'settings off the type’s schema, and one it does not know',
        { Services: [{ Type: 'helloworld', Config: { greeting: 'x'.repeat(101), colour: 'red' } }] },
        [
          { path: '$.Services[0].Config.greeting', code: 'too_big' },
          { path: '$.Services[0].Config.colour', code: 'unrecognized_keys' },
        ],
      ],
      [
        'unknown types among good ones',
        { Services: [{ Type: 'generic' }, { Type: 'hadoop' }, { Type: 'helloworld' }, { Type: 'xtreemfs' }] },
        [
          { path: '$.Services[1].Type', code: 'unknown_service_type' },
          { path: '$.Services[3].Type', code: 'unknown_service_type' },
        ],
      ],
    ];
    for (const [what, body, expected] of cases) {
      const v = await alice.post('/v1/manifests/validate', body);
      expect(pathsAndCodes(v.body.issues), `${what}: ${JSON.stringify(v.body.issues)}`).toEqual(expected);
      const r = await alice.post('/v1/manifests', body);
      expect(r.status, what).toBe(400);
      expect(pathsAndCodes(r.body.issues), what).toEqual(expected);
    }
    // ConPaaS's names, counts as strings, `default` cloud, YAML: all fine
    const good = {
      Description: 'Sudoku – the “example”',
      Services: [
        {
          ServiceName: 'PHP sudoku backend',
          Type: 'generic',
          Cloud: 'default',
          Start: 0,
          StartupInstances: { node: '2' },
        },
        { Type: 'helloworld', Start: false, Config: { greeting: 'Hi' } },
        { Type: 'helloworld' },
      ],
    };
    expect((await alice.post('/v1/manifests/validate', good)).body).toEqual({ valid: true, issues: [] });
    const yaml =
      'Description: Sudoku example\nServices:\n  - ServiceName: PHP sudoku backend\n    Type: generic\n    Start: 0\n';
    expect((await alice.post('/v1/manifests/validate', { yaml })).body).toEqual({ valid: true, issues: [] });
    expect(await appNames(alice)).toEqual(before);
  });

  it('deploys generic-hello: the service RUNNING, its export deploys again, others see nothing', async () => {
    const manifest = example('generic-hello.json');
    const r = await alice.post('/v1/manifests', manifest);
    expect(r.status, r.text).toBe(202);
    expect(r.headers.location).toBe(`/v1/operations/${r.body.operationId}`);
    const { operationId, appId } = r.body as { operationId: string; appId: string };
    // the name is taken at once: a second deploy is refused before any operation
    const again = await alice.post('/v1/manifests', manifest);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('name_taken');

    const op = await settled(alice, operationId);
    expect(op, JSON.stringify(op)).toMatchObject({ state: 'succeeded', kind: 'deploy_manifest', appId });
    expect(await steps(operationId)).toEqual([
      expect.stringMatching(/^added hello \(generic\) as s[0-9a-f]+$/),
      'hello is RUNNING',
    ]);
    const app = await alice.get(`/v1/applications/${appId}`);
    expect(app.body).toMatchObject({
      name: 'generic-hello',
      description: manifest['Description'],
      services: [{ name: 'hello', type: 'generic', cloud: 'local', state: 'RUNNING' }],
    });

    const exported = await alice.get(`/v1/applications/${appId}/manifest`);
    expect(exported.status).toBe(200);
    expect(exported.body).toEqual({
      Application: 'generic-hello',
      Description: manifest['Description'],
      Services: [
        { ServiceName: 'hello', Type: 'generic', Cloud: 'local', Start: 1, StartupInstances: { master: 1 } },
      ],
    });
    expect((await alice.get('/v1/applications/generic-hello/manifest')).body).toEqual(exported.body);

    // others: no export, no application, no operation
    for (const path of [
      `/v1/applications/${appId}/manifest`,
      '/v1/applications/generic-hello/manifest',
      `/v1/applications/${appId}`,
      `/v1/operations/${operationId}`,
    ]) {
      const b = await bob.get(path);
      expect(b.status, path).toBe(404);
      expect(b.body.code).toBe('not_found');
    }

    const copy = await alice.post('/v1/manifests', { ...exported.body, Application: 'generic-hello-again' });
    expect(copy.status, copy.text).toBe(202);
    const copied = await settled(alice, copy.body.operationId as string);
    expect(copied, JSON.stringify(copied)).toMatchObject({ state: 'succeeded' });
    const second = await alice.get(`/v1/applications/${copy.body.appId}`);
    expect(second.body).toMatchObject({
      name: 'generic-hello-again',
      services: [{ name: 'hello', type: 'generic', state: 'RUNNING' }],
    });
    expect((await bob.get('/v1/applications')).body.applications).toEqual([]);

    for (const id of [appId, copy.body.appId as string]) {
      const del = await alice.delete(`/v1/applications/${id}`);
      expect(del.status).toBe(202);
      expect((await settled(alice, del.body.operationId as string)).state).toBe('succeeded');
    }
    const deadline = Date.now() + 60_000;
    while ((await h.cloud.list()).length > 0) {
      if (Date.now() > deadline) throw new Error(`nodes left: ${JSON.stringify(await h.cloud.list())}`);
      await sleep(250);
    }
    expect(await appNames(alice)).not.toContain('generic-hello');
  }, 300_000);

  it('starts the services it should, each on its own way (not one after the other), and applies StartupInstances', async () => {
    const r = await alice.post('/v1/manifests', {
      yaml: [
        'Description: Two tiers',
        'Services:',
        '  - ServiceName: backend',
        '    Type: helloworld',
        '    Start: 1',
        '    StartupInstances: { node: "2" }',
        '  - Type: generic',
        '    Start: true',
        '  - ServiceName: spare',
        '    Type: helloworld',
        '',
      ].join('\n'),
    });
    expect(r.status, r.text).toBe(202);
    const op = await settled(alice, r.body.operationId as string);
    expect(op, JSON.stringify(op)).toMatchObject({ state: 'succeeded' });
    const app = await alice.get(`/v1/applications/${r.body.appId}`);
    expect(app.body).toMatchObject({
      name: 'Two tiers',
      services: [
        { name: 'backend', state: 'RUNNING' },
        { name: 'generic', state: 'RUNNING' },
        { name: 'spare', state: 'INIT' },
      ],
    });
    const done = await steps(r.body.operationId as string);
    expect(done.slice(0, 3)).toEqual([
      expect.stringMatching(/^added backend \(helloworld\)/),
      expect.stringMatching(/^added generic \(generic\)/),
      expect.stringMatching(/^added spare \(helloworld\)/),
    ]);
    // the services start together: their steps interleave, each service's in its own order
    expect([...done.slice(3)].sort()).toEqual([
      'backend is RUNNING',
      'backend: nodes +1 node',
      'generic is RUNNING',
    ]);
    expect(done.indexOf('backend is RUNNING')).toBeLessThan(done.indexOf('backend: nodes +1 node'));
    const exported = (await alice.get(`/v1/applications/${r.body.appId}/manifest`)).body;
    expect(exported.Services).toEqual([
      {
        ServiceName: 'backend',
        Type: 'helloworld',
        Cloud: 'local',
        Start: 1,
        StartupInstances: { node: 2 },
      },
      { ServiceName: 'generic', Type: 'generic', Cloud: 'local', Start: 1, StartupInstances: { master: 1 } },
      // settings equal to the type's defaults are left out: the export deploys the same
      { ServiceName: 'spare', Type: 'helloworld', Cloud: 'local', Start: 0 },
    ]);
    const del = await alice.delete(`/v1/applications/${r.body.appId}`);
    expect((await settled(alice, del.body.operationId as string)).state).toBe('succeeded');
    const deadline = Date.now() + 60_000;
    while ((await h.cloud.list()).length > 0) {
      if (Date.now() > deadline) throw new Error(`nodes left: ${JSON.stringify(await h.cloud.list())}`);
      await sleep(250);
    }
  }, 300_000);

  it('documents its routes in the OpenAPI document', async () => {
    const doc = (await h.client(d).get('/openapi.json')).body;
    expect(doc.paths['/v1/manifests'].post).toMatchObject({
      operationId: 'deployManifest',
      tags: ['manifests'],
    });
    expect(doc.paths['/v1/manifests/validate'].post.operationId).toBe('validateManifest');
    expect(doc.paths['/v1/applications/{app}/manifest'].get.operationId).toBe('exportManifest');
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['Manifest', 'ManifestService', 'ManifestValidation', 'ManifestDeployment']),
    );
  });

  it('downloads archives only from the allow-list: elsewhere the operation fails naming the service', async () => {
    const manifest = {
      Application: 'with-code',
      Services: [
        { ServiceName: 'first', Type: 'helloworld' },
        { ServiceName: 'worker code', Type: 'generic', Archive: archiveUrl },
      ],
    };
    const r = await alice.post('/v1/manifests', manifest);
    expect(r.status).toBe(202);
    const op = await settled(alice, r.body.operationId as string);
    expect(op.state).toBe('failed');
    expect(op.reason).toContain('$.Services[1].Archive');
    expect(op.reason).toContain('worker code');
    expect(op.reason).toContain('CPS_ARCHIVE_ALLOW');
    expect(downloads).toBe(0);
    // what was made stays, for the user to see or delete
    const app = await alice.get(`/v1/applications/${r.body.appId}`);
    expect(app.body.services.map((s: { name: string }) => s.name)).toEqual(['first', 'worker code']);

    // allowed: downloaded once, stored as the service's archive
    process.env[ARCHIVE_ALLOW_ENV] = `https://nowhere.example.org/, ${new URL('/apps/', archiveUrl).href}`;
    try {
      const ok = await alice.post('/v1/manifests', { ...manifest, Application: 'with-code-allowed' });
      expect(ok.status).toBe(202);
      const done = await settled(alice, ok.body.operationId as string);
      expect(done, JSON.stringify(done)).toMatchObject({ state: 'succeeded' });
      expect(downloads).toBe(1);
      const svc = await alice.get(`/v1/applications/${ok.body.appId}/services/worker code`);
      expect(svc.body.archive).toMatchObject({ size: ARCHIVE_BYTES.length });
      expect(await steps(ok.body.operationId as string)).toContain(
        `worker code: archive ${svc.body.archive.version} (${ARCHIVE_BYTES.length} bytes) stored`,
      );
    } finally {
      delete process.env[ARCHIVE_ALLOW_ENV];
    }
    for (const id of [r.body.appId as string, 'with-code-allowed']) {
      const del = await alice.delete(`/v1/applications/${id}`);
      expect((await settled(alice, del.body.operationId as string)).state).toBe('succeeded');
    }
  });

  // last: it stops the file's director
  it('resumes a deploy its director left running: the next leader finishes it, nothing twice', async () => {
    const r = await alice.post('/v1/manifests', {
      yaml: [
        'Description: Resumed',
        'Services:',
        '  - ServiceName: first',
        '    Type: helloworld',
        '    Start: 1',
        '  - ServiceName: second',
        '    Type: generic',
        '    Start: 1',
        '',
      ].join('\n'),
    });
    expect(r.status, r.text).toBe(202);
    const operationId = r.body.operationId as string;
    // the director stops mid-deploy: the deploy halts at its next step, its operation still running
    await d.stop();
    const store = new JetStreamEventStore(await h.nats.connect({ role: 'director', id: 'inspector' }));
    const atStop = (await store.readAggregate(aggregateIds.operation(operationId))).events;
    expect(atStop[0]?.type).toBe('OperationRequested');
    expect(atStop.map((e) => e.type)).not.toContain('OperationSucceeded');
    expect(atStop.map((e) => e.type)).not.toContain('DirectorOperationFailed');
    const stepsAtStop = atStop.flatMap((e) =>
      e.type === 'OperationProgressed' ? [(e.data as { step: string }).step] : [],
    );
    expect(stepsAtStop).not.toContain('second is RUNNING');
    const d2 = await h.startDirector();
    const alice2 = await h.signIn(d2, 'alice', 'alice-password');
    const op = await settled(alice2, operationId);
    expect(op, JSON.stringify(op)).toMatchObject({ state: 'succeeded' });
    const app = await alice2.get(`/v1/applications/${r.body.appId}`);
    const services = app.body.services as { name: string; state: string }[];
    expect(services.map((x) => [x.name, x.state])).toEqual([
      ['first', 'RUNNING'],
      ['second', 'RUNNING'],
    ]);
    const s = await d2.operations.state(operationId);
    const done = s.status === 'NONE' ? [] : s.steps;
    expect(done.filter((x) => x === 'first is RUNNING')).toHaveLength(1);
    expect(done.filter((x) => x.startsWith('added first'))).toHaveLength(1);
    const del = await alice2.delete(`/v1/applications/${r.body.appId}`);
    expect((await settled(alice2, del.body.operationId as string)).state).toBe('succeeded');
  }, 300_000);
});
