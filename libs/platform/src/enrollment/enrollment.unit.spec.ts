import { createHash, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CpsError,
  createRootCa,
  generateKeyPair,
  hasErrorCode,
  issueCertificate,
  publicKeyFromCsr,
  type Identity,
} from '@cps/core';
import {
  enrollNode,
  reenrollNode,
  ReenrollRequestSchema,
  type EnrollRequest,
  type EnrollTransport,
} from '@cps/platform';

const node: Identity = { role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1', nodeId: 'n1' };
const ca = createRootCa({
  commonName: 'test',
  now: new Date(),
  validForMs: 3600_000,
  key: generateKeyPair(),
});
const url = 'https://127.0.0.1:1';
const dirs: string[] = [];
const nodeDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'cps-enroll-unit-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A successful reply for the request's own CSR (or for `publicKeyPem` when given). */
const granted = (body: string, publicKeyPem?: string) => {
  const req = JSON.parse(body) as EnrollRequest;
  return {
    status: 200,
    body: JSON.stringify({
      identity: node,
      cert: issueCertificate(ca, {
        identity: node,
        usage: 'client',
        publicKeyPem: publicKeyPem ?? publicKeyFromCsr(req.csr),
        now: new Date(),
        validForMs: 3600_000,
      }),
      ca: ca.certPem,
      jwt: 'a.b.c',
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      inboxPrefix: '_INBOX.agent.n1',
    }),
  };
};
const problem = (status: number, code: string, detail: string) => ({
  status,
  body: JSON.stringify({ type: 'about:blank', title: code, status, code, detail, issues: [] }),
});
/** A transport answering the n-th call with `steps[n]` (a reply, or an error to throw). */
const scripted = (...steps: ((body: string) => { status: number; body: string } | Error)[]) => {
  const calls: string[] = [];
  const bodies: string[] = [];
  const transport: EnrollTransport = async (r) => {
    calls.push(r.url.href);
    bodies.push(r.body);
    const step = steps[calls.length - 1];
    if (!step) throw new Error('unexpected call');
    const out = step(r.body);
    if (out instanceof Error) throw out;
    return out;
  };
  return { calls, bodies, transport };
};
const enroll = (fetchImpl: EnrollTransport, dir = nodeDir()) =>
  enrollNode({ url: `${url}/`, token: 't', caPem: ca.certPem, nodeDir: dir, fetchImpl, backoffMs: 1 });

describe('enrollNode', () => {
  it('retries network errors and 5xx replies, then writes the identity', async () => {
    const s = scripted(
      () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      () => problem(503, 'unavailable', 'starting'),
      () => ({ status: 502, body: '<html>bad gateway</html>' }),
      (b) => granted(b),
    );
    const dir = nodeDir();
    const id = await enroll(s.transport, dir);
    expect(s.calls).toEqual(Array(4).fill(`${url}/v1/nodes/enroll`));
    // every attempt is the same request: a director that redeemed the token recognises the retry
    expect(new Set(s.bodies).size).toBe(1);
    expect(id.identity).toEqual(node);
    expect(id.credentials.seed).toMatch(/^SU/);
    expect(id.bus.publicKey).toMatch(/^U/);
    expect(id.tls.key).toContain('PRIVATE KEY');
    expect(readdirSync(dir)).toEqual(['identity.json']);
  });

  it('never retries a 4xx, and surfaces the problem code and issues', async () => {
    const s = scripted(() => ({
      status: 400,
      body: JSON.stringify({
        code: 'validation',
        detail: 'bad csr',
        issues: [{ path: '$.csr', code: 'x', message: 'm' }],
      }),
    }));
    await expect(enroll(s.transport)).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.message === 'bad csr' && e.issues[0]?.path === '$.csr',
    );
    expect(s.calls).toHaveLength(1);
    const plain = scripted(() => ({ status: 404, body: 'not here' }));
    await expect(enroll(plain.transport)).rejects.toSatisfy((e) => hasErrorCode(e, 'not_found'));
  });

  it('gives up after the retries with the last reply', async () => {
    const s = scripted(...Array.from({ length: 5 }, () => () => problem(500, 'internal', 'broken')));
    await expect(enroll(s.transport)).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'internal') && e.message === 'broken',
    );
    expect(s.calls).toHaveLength(5);
    const down = scripted(...Array.from({ length: 5 }, () => () => new Error('socket hang up')));
    await expect(enroll(down.transport)).rejects.toSatisfy((e) => hasErrorCode(e, 'unavailable'));
  });

  it('does not retry a refusal of the server certificate or an oversized reply', async () => {
    for (const e of [
      new CpsError('unauthenticated', 'not trusted'),
      new CpsError('payload_too_large', 'big'),
    ]) {
      const s = scripted(() => e);
      await expect(enroll(s.transport)).rejects.toBe(e);
      expect(s.calls).toHaveLength(1);
    }
  });

  it('writes nothing for a malformed reply or a certificate for another key', async () => {
    const dir = nodeDir();
    const bad = scripted(() => ({ status: 200, body: JSON.stringify({ cert: 'x' }) }));
    await expect(enroll(bad.transport, dir)).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'internal') && e.issues.some((i) => i.path === '$.jwt'),
    );
    const other = scripted((b) => granted(b, generateKeyPair().publicKeyPem));
    await expect(enroll(other.transport, dir)).rejects.toSatisfy((e) => hasErrorCode(e, 'internal'));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('requires https', async () => {
    const s = scripted();
    await expect(
      enrollNode({
        url: 'http://127.0.0.1:1',
        token: 't',
        caPem: '',
        nodeDir: nodeDir(),
        fetchImpl: s.transport,
      }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation'));
    expect(s.calls).toHaveLength(0);
  });
});

describe('reenrollNode', () => {
  const current = () => {
    const key = generateKeyPair();
    const cert = issueCertificate(ca, {
      identity: node,
      usage: 'client',
      publicKeyPem: key.publicKeyPem,
      now: new Date(Date.now() - 7200_000),
      validForMs: 3600_000,
    });
    return { tls: { ca: ca.certPem, cert: cert + ca.certPem, key: key.privateKeyPem } };
  };

  it('signs its new CSR and user key with the key of the certificate it holds, and retries the same request', async () => {
    const held = current();
    const s = scripted(
      () => problem(503, 'unavailable', 'starting'),
      (b) => granted(b),
    );
    const dir = nodeDir();
    const signedAt = new Date('2026-11-24T10:00:00Z');
    const id = await reenrollNode({
      url,
      caPem: ca.certPem,
      nodeDir: dir,
      current: held,
      fetchImpl: s.transport,
      backoffMs: 1,
      clock: () => signedAt,
    });
    expect(s.calls).toEqual(Array(2).fill(`${url}/v1/nodes/reenroll`));
    expect(new Set(s.bodies).size).toBe(1);
    const sent = ReenrollRequestSchema.parse(JSON.parse(s.bodies[0]!));
    expect(sent).toMatchObject({ cert: held.tls.cert, signedAt: signedAt.toISOString() });
    const text = `cps-reenroll/v1\n${sent.signedAt}\n${createHash('sha256').update(sent.csr).digest('hex')}\n${sent.userKey}`;
    const publicKey = new X509Certificate(held.tls.cert).publicKey;
    expect(verify('sha256', Buffer.from(text), publicKey, Buffer.from(sent.signature, 'base64'))).toBe(true);
    expect(id.tls.key).not.toBe(held.tls.key);
    expect(id.bus.publicKey).toBe(sent.userKey);
    expect(readdirSync(dir)).toEqual(['identity.json']);
  });

  it('never retries a refusal, and writes nothing', async () => {
    const s = scripted(() => problem(403, 'forbidden', 'identity agent:n1 is revoked'));
    const dir = nodeDir();
    await expect(
      reenrollNode({ url, caPem: ca.certPem, nodeDir: dir, current: current(), fetchImpl: s.transport }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'forbidden') && /revoked/.test(e.message));
    expect(s.calls).toHaveLength(1);
    expect(readdirSync(dir)).toEqual([]);
  });
});
