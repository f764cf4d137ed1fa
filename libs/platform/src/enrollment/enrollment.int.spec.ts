import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCsr,
  createRootCa,
  CpsError,
  generateKeyPair,
  hasErrorCode,
  httpStatusOf,
  isCpsError,
  issueCertificate,
  ValidationError,
  type Identity,
} from '@cps/core';
import { connectBus, newUserKey, OperatorModeAuthority } from '@cps/bus';
import { EventCatalog, ensureEventStream, JetStreamEventStore } from '@cps/events';
import {
  busTrustPem,
  ENROLL_PATH,
  EnrollingNodeIdentities,
  enrollNode,
  handleEnrollment,
  IdentityIssuer,
  identityEvents,
  issueServerCert,
  joinBus,
  type BusIdentity,
} from '@cps/platform';
import { TestNats } from '@cps/testing';

const agent = (n: string): Identity => ({ role: 'agent', id: n, appId: 'a1', serviceId: 's1', nodeId: n });
const DAY = 24 * 3600_000;

/** A stand-in for the director's route: the real HTTP mapping (and its body limits) is the director's. */
interface EnrollServer {
  readonly url: string;
  hits: number;
  readonly server: Server;
}

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

  const serve = async (
    cert: string,
    key: string,
    misbehave?: (res: ServerResponse) => void,
  ): Promise<EnrollServer> => {
    const s: { hits: number } = { hits: 0 };
    const server = createServer({ cert, key }, (req, res) => {
      s.hits++;
      if (misbehave) return misbehave(res);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const reply = async (): Promise<unknown> => {
          if (req.method !== 'POST' || req.url !== ENROLL_PATH)
            throw new CpsError('not_found', 'no such route');
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            throw new ValidationError('the body is not JSON');
          }
          return handleEnrollment(issuer, body);
        };
        reply().then(
          (r) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(r));
          },
          (e: unknown) => {
            const err = isCpsError(e) ? e : new CpsError('internal', 'internal error');
            const status = httpStatusOf(err.code);
            res.writeHead(status, { 'content-type': 'application/problem+json' });
            res.end(
              JSON.stringify({
                type: 'about:blank',
                title: err.code,
                status,
                code: err.code,
                detail: err.message,
                issues: err.issues,
              }),
            );
          },
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return Object.assign(s, {
      server,
      url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    });
  };

  beforeAll(async () => {
    nats = await TestNats.start();
    const nc = await nats.connect({ role: 'director', id: 'd1' });
    await ensureEventStream(nc);
    issuer = new IdentityIssuer({
      secrets: nats.secrets,
      store: new JetStreamEventStore(nc, { catalog: new EventCatalog(identityEvents) }),
      authority: new OperatorModeAuthority(nats.secrets.operator, () => nats.system()),
    });
    caPem = busTrustPem(nats.secrets);
    const now = new Date();
    const key = nats.keys.next();
    director = await serve(
      issueServerCert(nats.secrets, 'director', now, key) + nats.secrets.busCa.certPem,
      key.privateKeyPem,
    );
    const other = createRootCa({ commonName: 'not cps', now, validForMs: DAY, key: nats.keys.next() });
    const otherKey = nats.keys.next();
    foreign = await serve(
      issueCertificate(other, {
        identity: { role: 'server', id: 'director' },
        usage: 'server',
        publicKeyPem: otherKey.publicKeyPem,
        now,
        validForMs: DAY,
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
      }),
      otherKey.privateKeyPem,
    );
  });
  afterAll(async () => {
    const servers = [director, foreign, ...extra].filter((s) => s !== undefined);
    for (const s of servers) s.server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.server.close(r))));
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
    const key = nats.keys.next();
    const cert = issueServerCert(nats.secrets, 'director', new Date(), key) + nats.secrets.busCa.certPem;
    const big = await serve(cert, key.privateKeyPem, (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // chunked, no content-length: the limit must hold while streaming
      for (let i = 0; i < 100; i++) res.write('x'.repeat(1024));
      res.end();
    });
    const silent = await serve(cert, key.privateKeyPem, () => undefined);
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
    const saved = { ...process.env };
    Object.assign(process.env, c.env, { CPS_NODE_DIR: dir });
    try {
      const { bus } = await joinBus('agent:n5');
      await bus.flush();
      await bus.close();
      expect(process.env.CPS_ENROLL_TOKEN).toBeUndefined();
    } finally {
      for (const k of [...Object.keys(c.env), 'CPS_NODE_DIR']) delete process.env[k];
      Object.assign(process.env, saved);
    }
    expect(statSync(join(dir, 'identity.json')).mode & 0o777).toBe(0o600);
    expect(await issuer.state(node)).toMatchObject({ status: 'active' });
  });
});
