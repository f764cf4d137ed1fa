import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Director } from './director.js';
import { allRoutes } from './features.js';
import { CATCH_UPS_PER_SECOND } from './users/accounts.js';
import { ADMIN_PASSWORD, DirectorHarness, type Client } from './director.spec-helpers.js';

describe('director over HTTPS: users, tokens, applications, errors', () => {
  let h: DirectorHarness;
  let d: Director;
  let anon: Client;
  let admin: Client;
  let alice: Client;
  let bob: Client;

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    anon = h.client(d);
    admin = await h.signIn(d, 'admin', ADMIN_PASSWORD);
    alice = await h.user(d, 'alice');
    bob = await h.user(d, 'bob');
  });
  afterAll(async () => h?.cleanup());

  it('serves health, readiness and metrics without signing in', async () => {
    expect((await anon.get('/healthz')).body).toMatchObject({ status: 'ok' });
    expect((await anon.get('/readyz')).status).toBe(200);
    const m = await anon.get('/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toContain('cps_http_request_duration_seconds');
  });

  it('signs in, tells who is signed in, and signs out', async () => {
    const me = await alice.get('/v1/me');
    expect(me.body).toMatchObject({ username: 'alice', role: 'user', credit: 50 });
    const s = await h.signIn(d, 'alice', 'alice-password');
    expect((await s.delete('/v1/sessions/current')).status).toBe(204);
    const after = await s.get('/v1/me');
    expect(after.status).toBe(401);
    expect(after.body).toMatchObject({ code: 'unauthenticated' });
    expect(after.headers['content-type']).toContain('application/problem+json');
  });

  it('refuses wrong passwords, then rate-limits the user name', async () => {
    const bad = await anon.post('/v1/sessions', { username: 'bob', password: 'wrong-password' });
    expect(bad.status).toBe(401);
    expect(bad.body.code).toBe('unauthenticated');
    let last = bad;
    for (let i = 0; i < 6; i++)
      last = await anon.post('/v1/sessions', { username: 'bob', password: 'wrong' });
    expect(last.status).toBe(429);
    expect(last.body.code).toBe('rate_limited');
    // even the right password waits out the window
    expect((await anon.post('/v1/sessions', { username: 'bob', password: 'bob-password' })).status).toBe(429);
    // other users are not affected
    expect((await anon.post('/v1/sessions', { username: 'alice', password: 'alice-password' })).status).toBe(
      201,
    );
  });

  it('refuses a flood of made-up tokens sharing a few catch-ups, and still finds a token made meanwhile', async () => {
    const store = d.core.store as { head(): Promise<number> };
    const head = store.head.bind(store);
    let reads = 0;
    store.head = () => {
      reads++;
      return head();
    };
    try {
      const fake = (i: number) =>
        h.client(d).as(`cps_t${i.toString(16).padStart(12, '0')}_${'x'.repeat(43)}`);
      const made = alice.post('/v1/tokens', { name: 'during-flood', scopes: ['read'] });
      const first = Math.floor(Date.now() / 1000);
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => fake(i).get('/v1/me')));
      const seconds = Math.floor(Date.now() / 1000) - first + 1;
      expect(answers.every((a) => a.status === 401 && a.body.code === 'unauthenticated')).toBe(true);
      // 200 unknown tokens: far fewer stream reads than requests, at most the limit in each second
      // the flood spanned (a slow machine spreads it over more seconds); a few reads are the token's
      expect(reads).toBeLessThanOrEqual(Math.min(100, CATCH_UPS_PER_SECOND * seconds + 5));
      const token = (await made).body.token as string;
      expect((await h.client(d).as(token).get('/v1/me')).body.username).toBe('alice');
    } finally {
      store.head = head;
    }
  });

  it('creates API tokens shown once, lists them without secrets, revokes them', async () => {
    const t = await alice.post('/v1/tokens', { name: 'ci' });
    expect(t.status).toBe(201);
    expect(t.body.token).toMatch(/^cps_t[0-9a-f]+_/);
    const viaToken = h.client(d).as(t.body.token as string);
    expect((await viaToken.get('/v1/me')).body.username).toBe('alice');
    const list = await alice.get('/v1/tokens');
    const listed = list.body.tokens.find((x: { tokenId: string }) => x.tokenId === t.body.tokenId);
    expect(listed).toMatchObject({ name: 'ci', kind: 'api', revoked: false });
    expect(JSON.stringify(list.body)).not.toContain(t.body.token);
    expect((await bob.delete(`/v1/tokens/${t.body.tokenId}`)).status).toBe(404);
    expect((await alice.delete(`/v1/tokens/${t.body.tokenId}`)).status).toBe(204);
    expect((await viaToken.get('/v1/me')).status).toBe(401);
    expect(
      (
        await h
          .client(d)
          .as('cps_tnope_' + 'x'.repeat(43))
          .get('/v1/me')
      ).status,
    ).toBe(401);
    expect((await h.client(d).as('garbage').get('/v1/me')).body.code).toBe('unauthenticated');
    // a read-only token reads and changes nothing
    const ro = await alice.post('/v1/tokens', { name: 'dashboard', scopes: ['read'] });
    const reader = h.client(d).as(ro.body.token as string);
    expect((await reader.get('/v1/applications')).status).toBe(200);
    const write = await reader.post('/v1/applications', { name: 'nope' });
    expect(write.status).toBe(403);
    expect(write.body.code).toBe('forbidden');
    expect((await alice.post('/v1/tokens', { name: 'root', scopes: ['admin'] })).status).toBe(403);
  });

  it('creates applications with unique names per user; others see 404', async () => {
    const a = await alice.post('/v1/applications', { name: 'shop', description: 'the shop' });
    expect(a.status).toBe(201);
    expect(a.body).toMatchObject({ name: 'shop', description: 'the shop', services: [] });
    const again = await alice.post('/v1/applications', { name: 'shop' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      code: 'name_taken',
      issues: [{ path: '$.name', code: 'name_taken' }],
    });
    // the same name is fine for another user
    expect((await bob.post('/v1/applications', { name: 'shop' })).status).toBe(201);

    expect((await alice.get('/v1/applications/shop')).body.appId).toBe(a.body.appId);
    expect((await alice.get(`/v1/applications/${a.body.appId}`)).body.name).toBe('shop');
    for (const path of [`/v1/applications/${a.body.appId}`, `/v1/applications/${a.body.appId}/services`]) {
      const r = await bob.get(path);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('not_found');
    }
    expect((await bob.patch(`/v1/applications/${a.body.appId}`, { name: 'mine' })).status).toBe(404);
    expect((await bob.delete(`/v1/applications/${a.body.appId}`)).status).toBe(404);
    const bobs = (await bob.get('/v1/applications')).body.applications as { appId: string }[];
    expect(bobs.map((x) => x.appId)).not.toContain(a.body.appId);
    // admins see everybody's
    const all = (await admin.get('/v1/applications')).body.applications as { appId: string }[];
    expect(all.map((x) => x.appId)).toContain(a.body.appId);
  });

  it("answers 404 to every route on another user's application or service", async () => {
    const app = (await alice.get('/v1/applications/shop')).body.appId as string;
    const svc = await alice.post('/v1/applications/shop/services', { type: 'generic', name: 'svc1' });
    expect(svc.status).toBe(201);
    const bodies: Record<string, { json?: unknown; raw?: Buffer }> = {
      updateApplication: { json: { name: 'stolen' } },
      addService: { json: { type: 'generic', name: 'x' } },
      updateService: { json: { name: 'x' } },
      addNodes: { json: { nodes: { node: 1 } } },
      removeNodes: { json: { nodeIds: ['n1'] } },
      callMethod: { json: {} },
      uploadArchive: { raw: Buffer.from('not yours') },
    };
    let checked = 0;
    for (const r of Object.values(allRoutes)) {
      if (!r.path.includes('{app}')) continue;
      const path = r.path
        .replace('{app}', app)
        .replace('{svc}', svc.body.serviceId as string)
        .replace('{node}', 'n1')
        .replace('{method}', 'run')
        .replace('{version}', 'v1');
      const res = await bob.request(r.method, path, bodies[r.operationId] ?? {});
      expect(res.status, `${r.method} ${r.path}: ${res.text}`).toBe(404);
      expect(res.body.code).toBe('not_found');
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
    // and nothing of alice's changed
    expect((await alice.get('/v1/applications/shop')).body.services).toHaveLength(1);
  });

  it('pages applications by name: every one once, with a cursor; a forged cursor is refused', async () => {
    const carol = await h.user(d, 'carol');
    const names = ['e-app', 'a-app', 'd-app', 'c-app', 'b-app'];
    for (const name of names)
      expect((await carol.post('/v1/applications', { name, description: '' })).status).toBe(201);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const r = await carol.get(`/v1/applications?limit=2${after ? `&after=${after}` : ''}`);
      expect(r.status, r.text).toBe(200);
      seen.push(...(r.body.applications as { name: string }[]).map((a) => a.name));
      after = r.body.nextCursor as string | undefined;
      pages++;
    } while (after);
    expect(seen).toEqual([...names].sort());
    expect(pages).toBe(3);
    // another user's list does not show them
    expect(
      ((await bob.get('/v1/applications')).body.applications as { name: string }[]).map((a) => a.name),
    ).not.toContain('a-app');
    const forged = await carol.get('/v1/applications?after=bm90LWEtY3Vyc29y&limit=2');
    expect(forged.status).toBe(400);
    expect(forged.body.issues).toEqual([expect.objectContaining({ path: 'query.after' })]);
    expect((await carol.get('/v1/applications?limit=0')).body.issues[0].path).toBe('query.limit');
  });

  it('renames an application and frees the old name', async () => {
    const a = await alice.post('/v1/applications', { name: 'blog' });
    const r = await alice.patch('/v1/applications/blog', { name: 'journal' });
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('journal');
    expect((await alice.get('/v1/applications/journal')).body.appId).toBe(a.body.appId);
    expect((await alice.get('/v1/applications/blog')).status).toBe(404);
    expect((await alice.post('/v1/applications', { name: 'blog' })).status).toBe(201);
  });

  it('answers bad input with problem+json naming every offending field, and writes nothing', async () => {
    const before = (await alice.get('/v1/applications')).body.applications.length as number;
    const cases: [string, unknown, string][] = [
      ['name too long', { name: 'x'.repeat(65) }, '$.name'],
      ['odd characters', { name: 'a/b' }, '$.name'],
      ['wrong type', { name: 42 }, '$.name'],
      ['unknown field', { name: 'ok', owner: 'bob' }, '$.owner'],
      ['missing name', {}, '$.name'],
    ];
    for (const [what, body, path] of cases) {
      const r = await alice.post('/v1/applications', body);
      expect(r.status, what).toBe(400);
      expect(r.body.code, what).toBe('validation');
      expect(
        (r.body.issues as { path: string }[]).some((i) => i.path === path),
        `${what}: ${JSON.stringify(r.body.issues)}`,
      ).toBe(true);
    }
    const malformed = await alice.request('POST', '/v1/applications', {
      raw: '{"name": ',
      contentType: 'application/json',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({
      code: 'validation',
      issues: [{ path: '$', code: 'invalid_json' }],
    });
    const huge = await alice.request('POST', '/v1/applications', {
      raw: JSON.stringify({ name: 'big', description: 'x'.repeat(2 * 1024 * 1024) }),
      contentType: 'application/json',
    });
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('payload_too_large');
    const unknownRoute = await alice.get('/v1/nothing-here');
    expect(unknownRoute.status).toBe(404);
    expect(unknownRoute.body.code).toBe('not_found');
    expect((await anon.get('/v1/applications')).status).toBe(401);
    expect((await alice.get('/v1/applications')).body.applications.length).toBe(before);
  });

  it('answers requests its HTTP parser refuses with problem+json, and ends their connection', async () => {
    const ca = [h.nats.secrets.busCa.certPem, ...h.nats.secrets.busCa.chainPem].join('');
    /** What the director answers to these bytes, up to the connection's end. */
    const rawAnswer = (bytes: string) =>
      new Promise<{ status: number; headers: string; body: Record<string, unknown> }>((resolve, reject) => {
        const url = new URL(d.url);
        const s = connect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost' });
        let text = '';
        s.on('secureConnect', () => s.write(bytes));
        s.on('data', (b: Buffer) => (text += b.toString()));
        s.on('error', reject);
        s.on('end', () => {
          const [head = '', body = ''] = text.split('\r\n\r\n');
          resolve({
            status: Number(head.split(' ')[1]),
            headers: head.toLowerCase(),
            body: JSON.parse(body) as Record<string, unknown>,
          });
        });
      });
    const garbage = await rawAnswer('NOT-HTTP \x01\x02\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(garbage.headers).toContain('content-type: application/problem+json');
    expect(garbage.body).toMatchObject({
      status: 400,
      code: 'validation',
      issues: [{ path: '$', code: 'malformed_http' }],
    });
    expect(garbage.body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const headers = await rawAnswer(
      `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(headers.status).toBe(431);
    expect(headers.body).toMatchObject({ status: 431, code: 'payload_too_large' });
    // the director serves on
    expect((await anon.get('/healthz')).status).toBe(200);
  });

  it('keeps admin routes for admins', async () => {
    expect((await alice.get('/v1/users')).status).toBe(403);
    const users = await admin.get('/v1/users');
    expect(users.body.users.map((u: { username: string }) => u.username)).toEqual(
      expect.arrayContaining(['admin', 'alice', 'bob']),
    );
    expect((await alice.post('/v1/users/bob/credit', { amount: 5 })).status).toBe(403);
    const granted = await admin.post('/v1/users/bob/credit', { amount: 7, reason: 'test' });
    expect(granted.status).toBe(200);
    expect(granted.body.credit).toBe(57);
    expect((await alice.get('/v1/users/bob')).status).toBe(404);
    expect((await alice.get('/v1/users/alice')).body.username).toBe('alice');
    // registering yourself as admin is refused
    const sneaky = await anon.post('/v1/users', {
      username: 'mallory',
      password: 'password123',
      role: 'admin',
    });
    expect(sneaky.status).toBe(403);
    const dup = await anon.post('/v1/users', { username: 'alice', password: 'password123' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('name_taken');
  });

  it('lists the service types with their methods and schemas', async () => {
    const r = await alice.get('/v1/service-types');
    const generic = r.body.serviceTypes.find((t: { type: string }) => t.type === 'generic');
    expect(generic.roles).toEqual(['master', 'node']);
    expect(generic.methods.map((m: { name: string }) => m.name)).toEqual(
      expect.arrayContaining(['run', 'interrupt', 'cleanup', 'get_script_status']),
    );
  });

  it('serves an OpenAPI 3.1 document with every route', async () => {
    const r = await anon.get('/openapi.json');
    expect(r.body.openapi).toBe('3.1.0');
    expect(Object.keys(r.body.paths)).toEqual(expect.arrayContaining(['/v1/applications', '/v1/sessions']));
  });
});
