import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregateIds, hasErrorCode } from '@cps/core';
import { Bus, connectBus, OperatorModeAuthority } from '@cps/bus';
import { nodeEvents } from '@cps/clouds';
import { EventCatalog, JetStreamEventStore } from '@cps/events';
import { enrollNode, identityEvents, IdentityIssuer, reenrollNode, type BusIdentity } from '@cps/platform';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import { DirectorHarness } from '../director.spec-helpers.js';

/**
 * A cloud node that is not on this machine joins through the director: its user-data carries only a
 * one-time token; it makes its own keys and trades the token and a CSR at `POST /v1/nodes/enroll`.
 */
describe('node enrollment through the director', () => {
  let h: DirectorHarness;
  let d: Director;
  let dir: string;
  let issuer: IdentityIssuer;
  let store: JetStreamEventStore;
  const node = { role: 'agent' as const, id: 'n7', appId: 'a1', serviceId: 's1', nodeId: 'n7' };

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector('d1', { accounts: { sessionTtlMs: 1_000, registration: 'open' } });
    dir = mkdtempSync(join(tmpdir(), 'cps-enroll-'));
    // what the Provisioner does for an IaaS node: offer an enrollment (any director's issuer shares the store)
    const nc = await h.nats.connect({ role: 'director', id: 'offerer' });
    store = new JetStreamEventStore(nc, { catalog: new EventCatalog([...identityEvents, ...nodeEvents]) });
    // node identities that expire within the test
    issuer = new IdentityIssuer({
      secrets: h.nats.secrets,
      store,
      authority: new OperatorModeAuthority(h.nats.secrets.operator, () => h.nats.system()),
      ttlMs: { agent: 2_000 },
    });
  });
  afterAll(async () => {
    await h?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trades a one-time token for an identity that joins the bus, once', async () => {
    const token = await issuer.offerEnrollment(node);
    const caPem = [h.nats.secrets.busCa.certPem, ...h.nats.secrets.busCa.chainPem].join('');
    const identity = await enrollNode({ url: d.url, token, caPem, nodeDir: dir, retries: 0 });
    expect(identity.identity).toEqual(node);
    expect(statSync(join(dir, 'identity.json')).mode & 0o777).toBe(0o600);
    const nc = await connectBus({
      servers: h.nats.urls,
      tls: identity.tls,
      credentials: identity.credentials,
      inboxPrefix: identity.inboxPrefix,
    });
    await new Bus(nc).flush();
    await nc.close();
    const again = mkdtempSync(join(tmpdir(), 'cps-enroll-'));
    await expect(enrollNode({ url: d.url, token, caPem, nodeDir: again, retries: 0 })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'unauthenticated'),
    );
    rmSync(again, { recursive: true, force: true });
  });

  it('re-enrolls a node whose certificate expired, unless its identity is revoked or its node unknown', async () => {
    const caPem = [h.nats.secrets.busCa.certPem, ...h.nats.secrets.busCa.chainPem].join('');
    // what the Provisioner records before it starts a node
    const record = (id: string) =>
      store.append(
        aggregateIds.node(id),
        [
          {
            type: 'NodeRecorded',
            data: { nodeId: id, kind: 'agent', appId: 'a1', serviceId: 's1', cloud: 'local' },
          },
        ],
        { expectedVersion: 0, metadata: { actor: 'test', correlationId: id, causationId: id } },
      );
    const expiredIdentity = async (id: string): Promise<BusIdentity> => {
      const held = await issuer.issue({
        role: 'agent',
        id,
        appId: 'a1',
        serviceId: 's1',
        nodeId: id,
      });
      await new Promise((r) => setTimeout(r, held.certExpiresAt.getTime() - Date.now() + 1_100));
      return held;
    };
    const reenroll = (current: BusIdentity) =>
      reenrollNode({ url: d.url, caPem, nodeDir: dir, current, retries: 0 });
    await Promise.all([record('n8'), record('n9')]);
    const [held, revoked, unknown] = await Promise.all(['n8', 'n9', 'n10'].map(expiredIdentity));
    const fresh = await reenroll(held!);
    expect(fresh.identity).toMatchObject({ role: 'agent', id: 'n8' });
    expect(fresh.certExpiresAt.getTime() - Date.now()).toBeGreaterThan(30 * 60_000);
    const nc = await connectBus({
      servers: h.nats.urls,
      tls: fresh.tls,
      credentials: fresh.credentials,
      inboxPrefix: fresh.inboxPrefix,
      reconnect: false,
    });
    await new Bus(nc).flush();
    await nc.close();
    await issuer.revoke(revoked!.identity, 'test');
    await expect(reenroll(revoked!)).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'forbidden') && e.issues[0]?.code === 'revoked',
    );
    await expect(reenroll(unknown!)).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'forbidden') && e.issues[0]?.code === 'retired',
    );
  });

  it('answers malformed enrollments with problem+json and paths', async () => {
    const anon = h.client(d);
    const r = await anon.post('/v1/nodes/enroll', {
      token: 'x',
      csr: 'not a csr',
      userKey: 'nope',
      extra: 1,
    });
    expect(r.status).toBe(400);
    const paths = (r.body.issues as { path: string }[]).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['$.userKey', '$.extra']));
  });

  it('refuses an expired session with 401', async () => {
    await h.client(d).post('/v1/users', { username: 'brief', password: 'brief-password' });
    const c = await h.signIn(d, 'brief', 'brief-password');
    expect((await c.get('/v1/me')).status).toBe(200);
    const r = await eventually(
      () => c.get('/v1/me'),
      (x) => x.status === 401,
      5_000,
    );
    expect(r.body).toMatchObject({ code: 'unauthenticated', detail: 'token expired' });
  });
});
