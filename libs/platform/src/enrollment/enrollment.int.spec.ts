import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCsr,
  createRootCa,
  generateKeyPair,
  hasErrorCode,
  isCpsError,
  issueCertificate,
} from '@cps/core';
import { connectBus, newUserKey } from '@cps/bus';
import {
  busTrustPem,
  EnrollingNodeIdentities,
  enrollNode,
  handleEnrollment,
  joinBus,
  type BusIdentity,
  type IdentityIssuer,
} from '@cps/platform';
import type { TestNats } from '@cps/testing';
import {
  agent,
  closeServers,
  directorCert,
  serveEnrollment,
  startIssuer,
  withEnv,
  type EnrollServer,
  type EnrollServerOptions,
} from './enrollment.spec-helpers.js';

const DAY = 24 * 3600_000;

describe('node enrollment: a one-time token traded over HTTPS for a bus identity', () => {
  let nats: TestNats;
  let issuer: IdentityIssuer;
  let caPem: string;
  let director: EnrollServer;
  let foreign: EnrollServer;
  const dirs: string[] = [];
  const extra: EnrollServer[] = [];
  const nodeDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'cps-enroll-'));
    dirs.push(d);
    return d;
  };

  /** A stand-in director with a certificate of the bus CA (unless `more` says otherwise). */
  const serve = (more: Partial<EnrollServerOptions> = {}): Promise<EnrollServer> =>
    serveEnrollment({ ...directorCert(nats), issuer, ...more });

  beforeAll(async () => {
    ({ nats, issuer } = await startIssuer());
    caPem = busTrustPem(nats.secrets);
    const now = new Date();
    director = await serve();
    const other = createRootCa({ commonName: 'not cps', now, validForMs: DAY, key: nats.keys.next() });
    const otherKey = nats.keys.next();
    foreign = await serve({
      cert: issueCertificate(other, {
        identity: { role: 'server', id: 'director' },
        usage: 'server',
        publicKeyPem: otherKey.publicKeyPem,
        now,
        validForMs: DAY,
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
      }),
      key: otherKey.privateKeyPem,
    });
  });
  afterAll(async () => {
    await closeServers([director, foreign, ...extra]);
    await nats?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('enrolls: identity.json is 0600, holds no token, and joins the bus', async () => {
    const node = agent('n1');
    const token = await issuer.offerEnrollment(node);
    const dir = nodeDir();
    const enrolled = await enrollNode({ url: director.url, token, caPem, nodeDir: dir });
    expect(enrolled.identity).toEqual(node);
    expect(readdirSync(dir)).toEqual(['identity.json']);
    const file = join(dir, 'identity.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token.split('.')[2]!);
    expect(text).not.toContain(token);
    const stored = JSON.parse(text) as BusIdentity;
    expect(stored.credentials.seed).toMatch(/^SU/);
    expect(await issuer.state(node)).toMatchObject({ status: 'active' });

    const dir1 = await nats.connect({ role: 'director', id: 'd1' });
    const sub = dir1.subscribe('cps.node.a1.s1.n1.ping', { callback: (_e, m) => void m.respond('pong') });
    await dir1.flush();
    const nc = await connectBus({
      servers: nats.urls,
      tls: stored.tls,
      credentials: stored.credentials,
      inboxPrefix: stored.inboxPrefix,
      reconnect: false,
    });
    try {
      const m = await nc.request('cps.node.a1.s1.n1.ping', '', { timeout: 5_000 });
      expect(m.string()).toBe('pong');
    } finally {
      sub.unsubscribe();
      await nc.close();
    }
  });

  it('refuses a used token as unauthenticated, at once, and writes nothing', async () => {
    const token = await issuer.offerEnrollment(agent('n2'));
    await enrollNode({ url: director.url, token, caPem, nodeDir: nodeDir() });
    const dir = nodeDir();
    const hits = director.hits;
    await expect(enrollNode({ url: director.url, token, caPem, nodeDir: dir })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'unauthenticated') && /used/.test(e.message),
    );
    expect(director.hits - hits).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('retries an enrollment whose reply was lost after the token was redeemed, and refuses the token to another key', async () => {
    const node = agent('n8');
    // the director did the work, then the reply is lost: a 503 the first time, a cut connection the second
    const lossy = await serve({
      afterSuccess: (res, hit) => {
        if (hit === 1) {
          res.writeHead(503, { 'content-type': 'application/problem+json' });
          res.end(JSON.stringify({ status: 503, code: 'unavailable', detail: 'lost on the way' }));
        } else if (hit === 2) res.socket?.destroy();
        return hit <= 2;
      },
    });
    extra.push(lossy);
    const token = await issuer.offerEnrollment(node);
    const dir = nodeDir();
    const enrolled = await enrollNode({ url: lossy.url, token, caPem, nodeDir: dir, backoffMs: 10 });
    expect(lossy.hits).toBe(3);
    expect(enrolled.identity).toEqual(node);
    const state = await issuer.state(node);
    expect(state).toMatchObject({ status: 'active' });
    // one redemption, then two repeats for the same requester: each a certificate for its one key
    expect(state.status === 'active' && state.serials).toHaveLength(3);
    expect(state.status === 'active' && new Set(state.userKeys)).toEqual(new Set([enrolled.bus.publicKey]));
    const nc = await connectBus({
      servers: nats.urls,
      tls: enrolled.tls,
      credentials: enrolled.credentials,
      inboxPrefix: enrolled.inboxPrefix,
      reconnect: false,
    });
    await nc.flush();
    await nc.close();
    // another requester (its own keys) presenting the same token, within its validity, is refused
    const other = nodeDir();
    await expect(
      enrollNode({ url: director.url, token, caPem, nodeDir: other, retries: 0 }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'unauthenticated') && /used/.test(e.message));
    expect(readdirSync(other)).toEqual([]);
  });

  it('refuses a server whose certificate is not from caPem, without spending the token', async () => {
    const node = agent('n3');
    const token = await issuer.offerEnrollment(node);
    const dir = nodeDir();
    await expect(enrollNode({ url: foreign.url, token, caPem, nodeDir: dir })).rejects.toSatisfy(
      (e) => isCpsError(e) && /certificate is not trusted/.test(e.message),
    );
    expect(foreign.hits).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(await issuer.state(node)).toMatchObject({ status: 'offered' });
    const enrolled = await enrollNode({ url: director.url, token, caPem, nodeDir: dir });
    expect(enrolled.identity).toEqual(node);
  });

  it('bounds the reply in size and in time', async () => {
    const own = directorCert(nats);
    const big = await serve({
      ...own,
      misbehave: (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        // chunked, no content-length: the limit must hold while streaming
        for (let i = 0; i < 100; i++) res.write('x'.repeat(1024));
        res.end();
      },
    });
    const silent = await serve({ ...own, misbehave: () => undefined });
    extra.push(big, silent);
    const token = await issuer.offerEnrollment(agent('n6'));
    const dir = nodeDir();
    await expect(enrollNode({ url: big.url, token, caPem, nodeDir: dir })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'payload_too_large'),
    );
    expect(big.hits).toBe(1);
    const started = Date.now();
    await expect(
      enrollNode({ url: silent.url, token, caPem, nodeDir: dir, timeoutMs: 300, retries: 1, backoffMs: 10 }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'timeout'));
    expect(silent.hits).toBe(2);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses plain http before anything is sent', async () => {
    const token = await issuer.offerEnrollment(agent('n4'));
    await expect(
      enrollNode({ url: director.url.replace('https:', 'http:'), token, caPem, nodeDir: nodeDir() }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.url');
  });

  it('validates enrollment requests, naming the offending path', async () => {
    const csr = createCsr(generateKeyPair(), 'x');
    const ok = { token: 'agent.n9.secret', csr, userKey: newUserKey().publicKey };
    const pathsOf = async (body: unknown): Promise<string[]> => {
      try {
        await handleEnrollment(issuer, body);
      } catch (e) {
        if (hasErrorCode(e, 'validation')) return e.issues.map((i) => i.path);
        throw e;
      }
      throw new Error('accepted');
    };
    expect(await pathsOf('nope')).toEqual(['$']);
    expect(await pathsOf(null)).toEqual(['$']);
    expect(await pathsOf({ csr: ok.csr, userKey: ok.userKey })).toEqual(['$.token']);
    expect(await pathsOf({ ...ok, extra: 1 })).toEqual(['$.extra']);
    expect(await pathsOf({ ...ok, csr: csr + 'x'.repeat(17_000) })).toEqual(['$.csr']);
    expect(await pathsOf({ ...ok, userKey: 'SUAAAA' })).toEqual(['$.userKey']);
    expect(await pathsOf({ ...ok, csr: 'hello' })).toEqual(['$.csr']);
    // over HTTP the problem+json issues reach the node
    await expect(
      enrollNode({ url: director.url, token: 'x'.repeat(300), caPem, nodeDir: nodeDir() }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.token');
  });

  it('contextualizes a cloud node without a private key, and joinBus enrolls with what it got', async () => {
    const node = agent('n5');
    const c = await new EnrollingNodeIdentities(issuer, nats.urls, director.url, caPem).contextualize(node);
    const all = JSON.stringify(c);
    expect(all).not.toContain('PRIVATE KEY');
    expect(all).not.toMatch(/S[UAONCX][A-Z2-7]{56}/);
    expect(Object.keys(c.env).sort()).toEqual(['CPS_ENROLL_TOKEN', 'CPS_ENROLL_URL', 'CPS_NATS_URLS']);
    expect(c.files).toEqual({ 'bus-ca.pem': caPem });

    const dir = nodeDir();
    for (const [name, content] of Object.entries(c.files)) writeFileSync(join(dir, name), content);
    await withEnv({ ...c.env, CPS_NODE_DIR: dir }, async () => {
      const { bus } = await joinBus('agent:n5');
      await bus.flush();
      await bus.close();
      expect(process.env.CPS_ENROLL_TOKEN).toBeUndefined();
    });
    expect(statSync(join(dir, 'identity.json')).mode & 0o777).toBe(0o600);
    expect(await issuer.state(node)).toMatchObject({ status: 'active' });
  });
});
