import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCsr,
  generateKeyPair,
  hasErrorCode,
  inspectCertificate,
  isCpsError,
  type Identity,
} from '@cps/core';
import { Bus, newUserKey } from '@cps/bus';
import {
  handleReenrollment,
  IssuedNodeIdentities,
  joinBus,
  signReenrollClaim,
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
} from './enrollment.spec-helpers.js';

/** Node identities live this long here, so that they expire while a test waits. */
const TTL_MS = 4_000;

describe('node re-enrollment: a node whose identity expired while it was stopped rejoins by itself', () => {
  let nats: TestNats;
  let issuer: IdentityIssuer;
  let director: EnrollServer;
  let directorBus: Bus;
  const retired = new Set<string>();
  const dirs: string[] = [];

  const read = (dir: string): BusIdentity =>
    JSON.parse(readFileSync(join(dir, 'identity.json'), 'utf8')) as BusIdentity;

  /** A node as the local cloud makes one: its contextualization written into a fresh directory. */
  const contextualize = async (node: Identity): Promise<{ dir: string; env: Record<string, string> }> => {
    const c = await new IssuedNodeIdentities(issuer, nats.urls, () => director.url).contextualize(node);
    const dir = mkdtempSync(join(tmpdir(), 'cps-reenroll-'));
    dirs.push(dir);
    for (const [name, content] of Object.entries(c.files))
      writeFileSync(join(dir, name), content, { mode: 0o600 });
    return { dir, env: { ...c.env, CPS_NODE_DIR: dir } };
  };

  /** Starts the node process's bus side (`joinBus`), checks that it is heard on the bus, and stops it. */
  const runNode = (node: Identity, env: Record<string, string>): Promise<void> =>
    withEnv(env, async () => {
      const subject = `cps.node.a1.s1.${node.id}.ping`;
      const sub = directorBus.connection.subscribe(subject, { callback: (_e, m) => void m.respond('pong') });
      const { bus } = await joinBus(`agent:${node.id}`);
      try {
        await directorBus.flush();
        expect((await bus.connection.request(subject, '', { timeout: 5_000 })).string()).toBe('pong');
      } finally {
        sub.unsubscribe();
        await bus.close();
      }
    });

  const expired = (dir: string): Promise<void> =>
    sleep(Math.max(0, new Date(read(dir).certExpiresAt).getTime() - Date.now() + 1_100));

  beforeAll(async () => {
    let nc;
    ({ nats, nc, issuer } = await startIssuer({
      ttlMs: { agent: TTL_MS },
      retired: (i) => retired.has(i.id),
    }));
    directorBus = new Bus(nc);
    director = await serveEnrollment({ ...directorCert(nats), issuer });
  });
  afterAll(async () => {
    await closeServers([director]);
    await nats?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('starts again with an expired identity and rejoins the bus with the contextualization it had', async () => {
    const node = agent('r1');
    const { dir, env } = await contextualize(node);
    await runNode(node, env);
    const first = read(dir);
    await expired(dir);
    const before = director.hits;
    await runNode(node, env);
    expect(director.hits - before).toBe(1);
    const second = read(dir);
    expect(second.identity).toEqual(node);
    expect(second.tls.key).not.toBe(first.tls.key);
    expect(second.bus.publicKey).not.toBe(first.bus.publicKey);
    expect(new Date(second.certExpiresAt).getTime()).toBeGreaterThan(Date.now());
    const state = await issuer.state(node);
    expect(state).toMatchObject({ status: 'active' });
    expect(state.status === 'active' && state.serials).toEqual([
      inspectCertificate(first.tls.cert).serial,
      inspectCertificate(second.tls.cert).serial,
    ]);
  });

  it('re-enrolls when the bus refuses the identity as expired, though the node thought it valid', async () => {
    const node = agent('r2');
    const { dir, env } = await contextualize(node);
    await expired(dir);
    // the node's idea of the expiry is late (a clock behind the server's): only the refusal tells
    const held = read(dir);
    writeFileSync(
      join(dir, 'identity.json'),
      JSON.stringify({ ...held, certExpiresAt: new Date(Date.now() + 60_000) }),
    );
    await runNode(node, env);
    expect(inspectCertificate(read(dir).tls.cert).serial).not.toBe(inspectCertificate(held.tls.cert).serial);
  });

  it('refuses to re-enroll a revoked identity or a removed node, and the node keeps what it had', async () => {
    const cases = [
      { node: agent('r3'), end: (node: Identity) => issuer.revoke(node, 'test'), issue: 'revoked' },
      { node: agent('r4'), end: async (node: Identity) => void retired.add(node.id), issue: 'retired' },
    ];
    const nodes = await Promise.all(cases.map(async (c) => ({ ...c, ...(await contextualize(c.node)) })));
    await Promise.all(nodes.map((n) => expired(n.dir)));
    for (const { node, end, issue, dir, env } of nodes) {
      await end(node);
      const held = readFileSync(join(dir, 'identity.json'), 'utf8');
      await expect(withEnv(env, () => joinBus(`agent:${node.id}`))).rejects.toSatisfy(
        (e) => hasErrorCode(e, 'forbidden') && e.issues[0]?.code === issue,
      );
      expect(readFileSync(join(dir, 'identity.json'), 'utf8')).toBe(held);
    }
  });

  it('refuses a proof that is not a node key of this platform, signed now', async () => {
    const node = agent('r5');
    const { dir } = await contextualize(node);
    const held = read(dir);
    const request = (o: { cert?: string; signWith?: string; signedAt?: Date } = {}) => {
      const claim = {
        csr: createCsr(generateKeyPair(), 'cps-node'),
        userKey: newUserKey().publicKey,
        signedAt: (o.signedAt ?? new Date()).toISOString(),
      };
      return {
        cert: o.cert ?? held.tls.cert,
        ...claim,
        signature: signReenrollClaim(o.signWith ?? held.tls.key, claim),
      };
    };
    const refusal = async (body: unknown): Promise<string> => {
      try {
        await handleReenrollment(issuer, body);
      } catch (e) {
        if (isCpsError(e)) return `${e.code}:${e.issues[0]?.code ?? ''}`;
        throw e;
      }
      throw new Error('accepted');
    };
    // a certificate of the bus CA this identity never held (not recorded)
    const stranger = await nats.identity(node);
    expect(await refusal(request({ signWith: generateKeyPair().privateKeyPem }))).toBe(
      'unauthenticated:bad_signature',
    );
    expect(await refusal(request({ signedAt: new Date(Date.now() - 10 * 60_000) }))).toBe(
      'unauthenticated:stale_signature',
    );
    expect(await refusal(request({ cert: stranger.tls.cert, signWith: stranger.tls.key }))).toBe(
      'unauthenticated:unknown_certificate',
    );
    const director = await nats.identity({ role: 'director', id: 'd9' });
    expect(await refusal(request({ cert: director.tls.cert, signWith: director.tls.key }))).toBe(
      'unauthenticated:unknown_certificate',
    );
    expect(await refusal({ ...request(), extra: 1 })).toBe('validation:unrecognized_keys');
    // and the real one passes
    const ok = await handleReenrollment(issuer, request());
    expect(ok.identity).toEqual(node);
  });
});
