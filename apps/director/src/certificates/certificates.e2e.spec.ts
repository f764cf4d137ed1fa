import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  aggregateIds,
  createCsr,
  createRootCa,
  generateKeyPair,
  inspectCertificate,
  issueCertificate,
  type KeyPair,
} from '@cps/core';
import type { Director } from '../director.js';
import { ADMIN_PASSWORD, Client, DirectorHarness } from '../director.spec-helpers.js';
import { MAX_LIVE_CERTIFICATES } from './certificates.js';

const DAY = 24 * 3600_000;
const pathsAndCodes = (issues: { path: string; code: string }[]) =>
  issues.map((i) => ({ path: i.path, code: i.code }));

describe('client certificates: issue, sign in with, list, revoke', () => {
  let h: DirectorHarness;
  let d: Director;
  let anon: Client;
  let admin: Client;
  let alice: Client;
  let bob: Client;
  let aliceId: string;
  let bobId: string;
  let key: KeyPair;

  /** A client that trusts only `ca` and presents `cert` (no token). */
  const holding = (cert: string, privateKey: string, ca?: string): Client =>
    (ca ? new Client(d.url, ca) : anon).withCertificate({ cert, key: privateKey });

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    anon = h.client(d);
    admin = await h.signIn(d, 'admin', ADMIN_PASSWORD);
    alice = await h.user(d, 'alice');
    bob = await h.user(d, 'bob');
    aliceId = (await alice.get('/v1/me')).body.userId as string;
    bobId = (await bob.get('/v1/me')).body.userId as string;
    key = generateKeyPair();
  });
  afterAll(async () => h?.cleanup());

  it('signs a CSR for the caller; the certificate signs requests in place of a token', async () => {
    const r = await alice.post('/v1/certificates', { csr: createCsr(key, 'my laptop') });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      serial: expect.stringMatching(/^[0-9a-f]+$/),
      subject: `CN=user:${aliceId},OU=user,O=cps`,
    });
    expect(r.body.privateKey).toBeUndefined();
    const info = inspectCertificate(r.body.certificate as string);
    expect(info.serial).toBe(r.body.serial);
    expect(info.identity).toEqual({ role: 'user', id: aliceId });
    expect(info.notAfter.toISOString()).toBe(r.body.notAfter);
    const days = (Date.parse(r.body.notAfter as string) - Date.now()) / DAY;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThan(90.1);
    // the chain: the certificate, then the user CA
    expect((r.body.certificate as string).match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(r.body.certificate).toContain(h.nats.secrets.userCa.certPem.trim());

    // the `ca` answered is all a client needs to trust the director
    const viaCert = holding(r.body.certificate as string, key.privateKeyPem, r.body.ca as string);
    const me = await viaCert.get('/v1/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ userId: aliceId, username: 'alice' });
    expect(
      (await viaCert.get('/v1/certificates')).body.certificates.map((c: { serial: string }) => c.serial),
    ).toContain(r.body.serial);
  });

  it('takes the identity from the caller, never from the CSR', async () => {
    const r = await alice.post('/v1/certificates', { csr: createCsr(key, `user:${bobId}`), days: 7 });
    expect(r.status).toBe(201);
    expect(inspectCertificate(r.body.certificate as string).identity).toEqual({ role: 'user', id: aliceId });
    expect(r.body.subject).not.toContain(bobId);
    const days = (Date.parse(r.body.notAfter as string) - Date.now()) / DAY;
    expect(Math.round(days)).toBe(7);
    expect((await holding(r.body.certificate as string, key.privateKeyPem).get('/v1/me')).body.username).toBe(
      'alice',
    );
  });

  it('makes a key and certificate (bundle): the key is answered once, never listed', async () => {
    const r = await bob.post('/v1/certificates', { bundle: true, days: 1 });
    expect(r.status).toBe(201);
    expect(r.body.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(inspectCertificate(r.body.certificate as string).identity).toEqual({ role: 'user', id: bobId });
    const me = await holding(r.body.certificate as string, r.body.privateKey as string).get('/v1/me');
    expect(me.body).toMatchObject({ userId: bobId, username: 'bob' });

    const list = await bob.get('/v1/certificates');
    expect(list.status).toBe(200);
    expect(list.body.certificates).toEqual([
      {
        serial: r.body.serial,
        subject: r.body.subject,
        notAfter: r.body.notAfter,
        createdAt: expect.any(String),
        revoked: false,
      },
    ]);
    expect(list.text).not.toContain('PRIVATE KEY');
    expect(list.text).not.toContain('BEGIN CERTIFICATE');
  });

  it('revokes: the certificate is refused from then on; only its owner may revoke it', async () => {
    const mine = await alice.post('/v1/certificates', { csr: createCsr(key, 'to revoke') });
    const viaCert = holding(mine.body.certificate as string, key.privateKeyPem);
    expect((await viaCert.get('/v1/me')).status).toBe(200);

    const byBob = await bob.delete(`/v1/certificates/${mine.body.serial}`);
    expect(byBob.status).toBe(404);
    expect(byBob.body.code).toBe('not_found');
    expect((await viaCert.get('/v1/me')).status).toBe(200);
    expect((await alice.delete(`/v1/certificates/${'ab'.repeat(16)}`)).status).toBe(404);

    // upper-case hex names the same serial
    expect(
      (await alice.delete(`/v1/certificates/${(mine.body.serial as string).toUpperCase()}`)).status,
    ).toBe(204);
    const after = await viaCert.get('/v1/me');
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('unauthenticated');
    const listed = (await alice.get('/v1/certificates')).body.certificates.find(
      (c: { serial: string }) => c.serial === mine.body.serial,
    );
    expect(listed.revoked).toBe(true);
    // again: nothing more to do
    expect((await alice.delete(`/v1/certificates/${mine.body.serial}`)).status).toBe(204);

    const bad = await alice.delete('/v1/certificates/not-a-serial');
    expect(bad.status).toBe(400);
    expect(pathsAndCodes(bad.body.issues)).toEqual([{ path: 'path.serial', code: 'invalid_format' }]);
  });

  it("a user's certificate sees only that user's applications", async () => {
    const app = await alice.post('/v1/applications', { name: 'private' });
    expect(app.status).toBe(201);
    const bobs = await bob.post('/v1/certificates', { csr: createCsr(key, 'bob') });
    const viaBob = holding(bobs.body.certificate as string, key.privateKeyPem);
    const r = await viaBob.get(`/v1/applications/${app.body.appId}`);
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('not_found');
    const listed = (await viaBob.get('/v1/applications')).body.applications as { appId: string }[];
    expect(listed.map((a) => a.appId)).not.toContain(app.body.appId);
    expect(
      (await viaBob.get('/v1/certificates')).body.certificates.map((c: { serial: string }) => c.serial),
    ).not.toContain((await alice.get('/v1/certificates')).body.certificates[0].serial);
  });

  it('refuses certificates it did not issue and record, or that expired', async () => {
    const unauthenticated = async (cert: string) => {
      const r = await holding(cert, key.privateKeyPem).get('/v1/me');
      expect(r.status).toBe(401);
      expect(r.body.code).toBe('unauthenticated');
    };
    const now = new Date();
    const forAlice = (o: { now: Date; validForMs: number }) => ({
      identity: { role: 'user' as const, id: aliceId },
      usage: 'client' as const,
      publicKeyPem: key.publicKeyPem,
      ...o,
    });

    // a CA of somebody else's, naming alice
    const foreign = createRootCa({ commonName: 'elsewhere', now, validForMs: DAY, key: generateKeyPair() });
    await unauthenticated(issueCertificate(foreign, forAlice({ now, validForMs: DAY })) + foreign.certPem);

    // the platform's user CA, but never recorded (not issued through the API)
    const userCa = h.nats.secrets.userCa;
    await unauthenticated(issueCertificate(userCa, forAlice({ now, validForMs: DAY })) + userCa.certPem);

    // the platform's user CA, recorded, but over
    const expired = issueCertificate(
      userCa,
      forAlice({ now: new Date(now.getTime() - 10 * DAY), validForMs: DAY }),
    );
    const info = inspectCertificate(expired);
    const done = await d.accounts.users.run(
      aggregateIds.user(aliceId),
      'RecordCertificate',
      { serial: info.serial, subject: info.subject, expiresAt: info.notAfter.toISOString() },
      { requestId: 'test-expired-certificate', actor: 'test' },
    );
    await d.core.caughtUp(done.position);
    await unauthenticated(expired + userCa.certPem);

    // no credentials at all
    expect((await anon.post('/v1/certificates', { bundle: true })).status).toBe(401);
    expect((await anon.get('/v1/certificates')).status).toBe(401);
  });

  it('refuses bad requests, every problem with its path', async () => {
    const weak = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const csr = createCsr(key, 'fine');
    const cases: [string, unknown, { path: string; code: string }[]][] = [
      ['nothing', {}, [{ path: '$', code: 'custom' }]],
      ['not a CSR', { csr: 'garbage' }, [{ path: '$.csr', code: 'invalid_format' }]],
      ['both', { csr, bundle: true }, [{ path: '$.bundle', code: 'custom' }]],
      ['bundle false', { bundle: false }, [{ path: '$.bundle', code: 'invalid_value' }]],
      ['days 0', { bundle: true, days: 0 }, [{ path: '$.days', code: 'too_small' }]],
      ['days 366', { csr, days: 366 }, [{ path: '$.days', code: 'too_big' }]],
      ['days 1.5', { bundle: true, days: 1.5 }, [{ path: '$.days', code: 'invalid_type' }]],
      ['huge CSR', { csr: `${csr}${' '.repeat(16 * 1024)}` }, [{ path: '$.csr', code: 'too_big' }]],
      ['unknown field', { bundle: true, subject: 'bob' }, [{ path: '$.subject', code: 'unrecognized_keys' }]],
      [
        'PEM, not a CSR inside',
        {
          csr: '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n',
        },
        [{ path: '$.csr', code: 'malformed' }],
      ],
      [
        'a weak key',
        { csr: createCsr({ privateKeyPem: weak.privateKey, publicKeyPem: weak.publicKey }, 'weak') },
        [{ path: '$.csr', code: 'weak_key' }],
      ],
    ];
    for (const [what, body, issues] of cases) {
      const r = await alice.post('/v1/certificates', body);
      expect(r.status, what).toBe(400);
      expect(r.body.code, what).toBe('validation');
      expect(pathsAndCodes(r.body.issues), what).toEqual(issues);
    }
    // a CSR whose signature does not match its content
    const other = createCsr(key, 'other');
    const lines = other.trim().split('\n');
    const body = lines.slice(1, -1).join('');
    const der = Buffer.from(body, 'base64');
    der[der.length - 10] = (der[der.length - 10] as number) ^ 0xff;
    const tampered = `${lines[0]}\n${der.toString('base64')}\n${lines.at(-1)}\n`;
    const t = await alice.post('/v1/certificates', { csr: tampered });
    expect(t.status).toBe(400);
    expect(pathsAndCodes(t.body.issues)).toEqual([{ path: '$.csr', code: 'bad_signature' }]);
  });

  it(`allows ${MAX_LIVE_CERTIFICATES} live certificates per user; revoking frees one`, async () => {
    const carol = await h.user(d, 'carol');
    const csr = createCsr(key, 'carol');
    const serials: string[] = [];
    for (let i = 0; i < MAX_LIVE_CERTIFICATES; i++) {
      const r = await carol.post('/v1/certificates', { csr });
      expect(r.status).toBe(201);
      serials.push(r.body.serial as string);
    }
    const over = await carol.post('/v1/certificates', { bundle: true });
    expect(over.status).toBe(429);
    expect(over.body.code).toBe('quota_exceeded');
    expect((await carol.delete(`/v1/certificates/${serials[0]}`)).status).toBe(204);
    expect((await carol.post('/v1/certificates', { csr })).status).toBe(201);
    expect((await carol.get('/v1/certificates')).body.certificates).toHaveLength(MAX_LIVE_CERTIFICATES + 1);
  });

  it('lists anyone’s certificates for admins only', async () => {
    const own = await alice.get('/v1/certificates');
    const byAdmin = await admin.get('/v1/certificates?user=alice');
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body).toEqual(own.body);
    expect((await admin.get(`/v1/certificates?user=${aliceId}`)).body).toEqual(own.body);
    expect((await admin.get('/v1/certificates')).body.certificates).toEqual([]);
    expect((await admin.get('/v1/certificates?user=nobody')).status).toBe(404);

    expect((await alice.get('/v1/certificates?user=alice')).body).toEqual(own.body);
    expect((await alice.get(`/v1/certificates?user=${aliceId}`)).body).toEqual(own.body);
    for (const user of ['bob', bobId, 'nobody']) {
      const r = await alice.get(`/v1/certificates?user=${user}`);
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('forbidden');
    }
    const bad = await alice.get('/v1/certificates?color=red');
    expect(bad.status).toBe(400);
    expect(pathsAndCodes(bad.body.issues)).toEqual([{ path: 'query.color', code: 'unrecognized_keys' }]);
  });

  it('answers a repeated request (same Idempotency-Key) with a conflict, not a second certificate', async () => {
    const send = () =>
      alice.request('POST', '/v1/certificates', {
        json: { csr: createCsr(key, 'again') },
        headers: { 'idempotency-key': 'cert-once' },
      });
    const first = await send();
    expect(first.status).toBe(201);
    const again = await send();
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('conflict');
    const serials = (await alice.get('/v1/certificates')).body.certificates.map(
      (c: { serial: string }) => c.serial,
    );
    expect(serials).toContain(first.body.serial);
    expect(serials).toHaveLength(new Set(serials).size);
  });

  it('documents its routes in the OpenAPI document', async () => {
    const doc = (await anon.get('/openapi.json')).body;
    expect(Object.keys(doc.paths['/v1/certificates'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(doc.paths['/v1/certificates/{serial}'])).toEqual(['delete']);
    expect(doc.paths['/v1/certificates'].post.tags).toEqual(['users']);
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['ClientCertificate', 'ClientCertificateList', 'IssuedClientCertificate']),
    );
  });
});
