import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import {
  archiveOf,
  DirectorHarness,
  succeeded,
  type Client,
  type HttpAnswer,
} from '../director.spec-helpers.js';

/** A generic service's code whose `version.txt` says which one it is. */
const codeOf = (label: string): Promise<Buffer> =>
  archiveOf({ 'init.sh': 'echo init\n', 'run.sh': 'echo run\nsleep 60\n', 'version.txt': `${label}\n` });

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('the versions of a service’s code: upload, list, download, enable, delete', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let bob: Client;
  let serviceId: string;
  const code: Record<string, Buffer> = {};
  /** Version names by label, as the uploads answered them. */
  const v: Record<string, string> = {};
  const svc = '/v1/applications/site/services/web';

  const expectOk = (r: HttpAnswer, status = 200) => expect(r.status, r.text).toBe(status);
  const expectProblem = (r: HttpAnswer, status: number, code: string, path?: string) => {
    expect(r.status, r.text).toBe(status);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.body.code).toBe(code);
    if (path) expect(r.body.issues.map((i: { path: string }) => i.path)).toContain(path);
  };
  const versions = async (): Promise<{ version: string; current: boolean }[]> => {
    const r = await alice.get(`${svc}/archives`);
    expectOk(r);
    return r.body.versions;
  };
  const current = async (): Promise<string | undefined> => (await alice.get(svc)).body.archive?.version;

  /** The content of `version.txt` on each of the service's nodes. */
  const nodeLabels = async (): Promise<string[]> =>
    Object.values(await h.codeDirs(serviceId)).map((dir) => {
      const file = join(dir, 'version.txt');
      return statSync(file, { throwIfNoEntry: false }) ? readFileSync(file, 'utf8').trim() : '';
    });

  beforeAll(async () => {
    for (const label of ['one', 'two', 'three', 'four']) code[label] = await codeOf(label);
    h = await DirectorHarness.start();
    d = await h.leadingDirector();
    alice = await h.user(d, 'alice');
    bob = await h.user(d, 'bob');
    serviceId = (await h.createdService(alice, 'site', 'generic', 'web')).serviceId;
  });
  afterAll(async () => h?.cleanup());

  it('lists no version before the first upload', async () => {
    expect(await versions()).toEqual([]);
    expectProblem(await alice.get(`${svc}/archives/v1`), 404, 'not_found', '$.version');
  });

  it('makes an upload current by default, and stores one with ?enable=false without changing the current', async () => {
    const one = await alice.put(`${svc}/archive`, code['one']!);
    expectOk(one);
    expect(one.body).toEqual({
      version: expect.stringMatching(/^v[a-z0-9]+$/),
      size: code['one']!.length,
      digest: sha256(code['one']!),
      current: true,
    });
    v['one'] = one.body.version;
    expect(await current()).toBe(v['one']);

    for (const label of ['two', 'three']) {
      const r = await alice.put(`${svc}/archive?enable=false`, code[label]!);
      expectOk(r);
      expect(r.body).toMatchObject({
        size: code[label]!.length,
        digest: sha256(code[label]!),
        current: false,
      });
      v[label] = r.body.version;
      expect(await current()).toBe(v['one']);
    }
    expectProblem(
      await alice.put(`${svc}/archive?enable=maybe`, code['one']!),
      400,
      'validation',
      'query.enable',
    );
  });

  it('lists the versions oldest first, the current one marked', async () => {
    const r = await alice.get(`${svc}/archives`);
    expectOk(r);
    expect(r.body.versions).toEqual(
      ['one', 'two', 'three'].map((label) => ({
        version: v[label],
        size: code[label]!.length,
        digest: sha256(code[label]!),
        stored: expect.any(String),
        current: label === 'one',
      })),
    );
    const stored = (r.body.versions as { stored: string }[]).map((x) => Date.parse(x.stored));
    expect(stored.every((t, i) => !Number.isNaN(t) && (i === 0 || t >= stored[i - 1]!))).toBe(true);
  });

  it('downloads a version: the bytes uploaded', async () => {
    for (const label of ['one', 'two']) {
      const r = await alice.get(`${svc}/archives/${v[label]}`);
      expectOk(r);
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.headers['content-length']).toBe(String(code[label]!.length));
      expect(r.bytes.equals(code[label]!)).toBe(true);
    }
  });

  it('enables another version, and an older one again', async () => {
    const two = await alice.post(`${svc}/archives/${v['two']}/enable`);
    expectOk(two);
    expect(two.body).toEqual({
      version: v['two'],
      size: code['two']!.length,
      digest: sha256(code['two']!),
      current: true,
    });
    expect(await current()).toBe(v['two']);
    expect((await versions()).filter((x) => x.current).map((x) => x.version)).toEqual([v['two']]);

    expectOk(await alice.post(`${svc}/archives/${v['one']}/enable`));
    expect(await current()).toBe(v['one']);
    // the current one again: nothing changes
    expectOk(await alice.post(`${svc}/archives/${v['one']}/enable`));
    expect(await current()).toBe(v['one']);
  });

  it('refuses to delete the current version', async () => {
    const r = await alice.delete(`${svc}/archives/${v['one']}`);
    expectProblem(r, 409, 'conflict', '$.version');
    expect(r.body.issues[0].message).toMatch(/enable another first/);
    expect((await versions()).map((x) => x.version)).toContain(v['one']);
  });

  it('deletes another version: gone from the list, its download and its enable', async () => {
    const r = await alice.delete(`${svc}/archives/${v['three']}`);
    expect(r.status, r.text).toBe(204);
    expect(r.text).toBe('');
    expect((await versions()).map((x) => x.version)).toEqual([v['one'], v['two']]);
    expectProblem(await alice.get(`${svc}/archives/${v['three']}`), 404, 'not_found', '$.version');
    expectProblem(await alice.post(`${svc}/archives/${v['three']}/enable`), 404, 'not_found', '$.version');
    expectProblem(await alice.delete(`${svc}/archives/${v['three']}`), 404, 'not_found', '$.version');
    expect(await current()).toBe(v['one']);
  });

  it('answers 404 for an unknown version and 400 for one off the rule', async () => {
    expectProblem(await alice.get(`${svc}/archives/vnope`), 404, 'not_found', '$.version');
    expectProblem(await alice.post(`${svc}/archives/vnope/enable`), 404, 'not_found', '$.version');
    expectProblem(await alice.delete(`${svc}/archives/vnope`), 404, 'not_found', '$.version');
    for (const bad of ['Not-It', '-v1', 'a.b', 'x'.repeat(65)]) {
      expectProblem(await alice.get(`${svc}/archives/${bad}`), 400, 'validation', 'path.version');
      expectProblem(await alice.post(`${svc}/archives/${bad}/enable`), 400, 'validation', 'path.version');
      expectProblem(await alice.delete(`${svc}/archives/${bad}`), 400, 'validation', 'path.version');
    }
  });

  it('answers another user 404 for all of it, and changes nothing', async () => {
    const before = await versions();
    const them = `/v1/applications/${(await alice.get('/v1/applications/site')).body.appId}/services/${serviceId}`;
    for (const path of [svc, them]) {
      expectProblem(await bob.get(`${path}/archives`), 404, 'not_found');
      expectProblem(await bob.get(`${path}/archives/${v['two']}`), 404, 'not_found');
      expectProblem(await bob.post(`${path}/archives/${v['two']}/enable`), 404, 'not_found');
      expectProblem(await bob.delete(`${path}/archives/${v['two']}`), 404, 'not_found');
      expectProblem(await bob.put(`${path}/archive?enable=false`, code['four']!), 404, 'not_found');
    }
    expect(await versions()).toEqual(before);
    expect(await current()).toBe(v['one']);
  });

  it('with its manager running: enable goes through it and the nodes get that version', async () => {
    const start = await alice.post(`${svc}/start`);
    await succeeded(alice, start, 'start of web');
    expect(await eventually(nodeLabels, (l) => l.length > 0 && l.every((x) => x === 'one'), 20_000)).toEqual(
      expect.arrayContaining(['one']),
    );

    const four = await alice.put(`${svc}/archive?enable=false`, code['four']!);
    expectOk(four);
    expect(four.body.current).toBe(false);
    v['four'] = four.body.version;
    // stored only: the nodes keep the current version
    expect(await current()).toBe(v['one']);
    expect(await nodeLabels()).toEqual(expect.arrayContaining(['one']));

    const r = await alice.post(`${svc}/archives/${v['four']}/enable`);
    expectOk(r);
    expect(r.body).toMatchObject({ version: v['four'], current: true });
    // answered once the director shows it
    expect(await current()).toBe(v['four']);
    expect((await versions()).find((x) => x.current)?.version).toBe(v['four']);
    const labels = await eventually(nodeLabels, (l) => l.length > 0 && l.every((x) => x === 'four'), 20_000);
    expect(new Set(labels)).toEqual(new Set(['four']));

    expectProblem(await alice.delete(`${svc}/archives/${v['four']}`), 409, 'conflict', '$.version');
    expectProblem(await alice.post(`${svc}/archives/vnope/enable`), 404, 'not_found', '$.version');
    expect((await alice.delete(`${svc}/archives/${v['one']}`)).status).toBe(204);
    expect((await versions()).map((x) => x.version)).toEqual([v['two'], v['four']]);
  });
});
