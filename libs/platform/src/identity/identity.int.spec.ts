import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
import { createCsr, generateKeyPair, hasErrorCode, inspectCertificate, type Identity } from '@cps/core';
import {
  Bus,
  connectBus,
  defineCommand,
  newUserKey,
  OperatorModeAuthority,
  subjects,
  renewIdentity,
} from '@cps/bus';
import { EventCatalog, ensureEventStream, JetStreamEventStore } from '@cps/events';
import { IdentityIssuer, IdentityRenewer, identityEvents, type BusIdentity } from '@cps/platform';
import { TestNats, ViolationLog } from '@cps/testing';

const manager: Identity = { role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' };
const work = defineCommand('work', z.object({ i: z.number() }), z.object({ i: z.number() }));

describe('identity issuer: issue, renew under load, enroll, revoke', () => {
  let nats: TestNats;
  let issuer: IdentityIssuer;
  let director: Bus;
  /** The issuer's clock: real time unless a test pins it. */
  let pinned: Date | undefined;
  const open = (id: BusIdentity) =>
    connectBus({ servers: nats.urls, tls: id.tls, credentials: id.credentials, inboxPrefix: id.inboxPrefix });

  beforeAll(async () => {
    nats = await TestNats.start();
    const nc = await nats.connect({ role: 'director', id: 'd1' });
    await ensureEventStream(nc);
    director = new Bus(nc);
    issuer = new IdentityIssuer({
      secrets: nats.secrets,
      store: new JetStreamEventStore(nc, { catalog: new EventCatalog(identityEvents) }),
      authority: new OperatorModeAuthority(nats.secrets.operator, () => nats.system()),
      ttlMs: { manager: 6_000 },
      clock: () => pinned ?? new Date(),
    });
    issuer.serve(director);
  });
  afterAll(async () => nats.cleanup());

  it('issues an identity a supervisor hands to its process, recorded as an event', async () => {
    const id = await issuer.issue(manager);
    const nc = await open(id);
    await nc.flush();
    expect(inspectCertificate(id.tls.cert).identity).toEqual(manager);
    const state = await issuer.state(manager);
    expect(state).toMatchObject({ status: 'active', serials: [inspectCertificate(id.tls.cert).serial] });
    await nc.close();
  });

  it('renews by CSR at two thirds of the lifetime and swaps the connection without losing a command', async () => {
    const id = await issuer.issue({ role: 'manager', id: 's2', appId: 'a1', serviceId: 's2' });
    const served = new Bus(await open(id));
    const handled = new Set<number>();
    served.handle(subjects.manager('a1', 's2'), work, async (d) => {
      handled.add(d.i);
      await new Promise((r) => setTimeout(r, 2));
      return d;
    });
    await served.flush();
    const renewed: BusIdentity[] = [];
    const renewer = new IdentityRenewer(served, id, open, { onRenewed: (r) => renewed.push(r) });
    const before = served.connection;
    renewer.start();
    // load: 10 concurrent callers for as long as it takes the renewal to fire (~4 s) and settle
    const results: number[] = [];
    let i = 0;
    const deadline = Date.now() + 15_000;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while ((renewed.length === 0 || results.length < 1_500) && Date.now() < deadline) {
          const n = i++;
          results.push(
            (await director.request(subjects.manager('a1', 's2'), work, { i: n }, { timeoutMs: 3_000 })).i,
          );
        }
      }),
    );
    renewer.stop();
    expect(renewed).toHaveLength(1);
    expect(served.connection).not.toBe(before);
    expect(before.isClosed()).toBe(true);
    expect(results.length).toBe(i);
    expect(new Set(results).size).toBe(i);
    expect(inspectCertificate(renewed[0]!.tls.cert).serial).not.toBe(inspectCertificate(id.tls.cert).serial);
    const state = await issuer.state({ role: 'manager', id: 's2' });
    expect(state.status === 'active' && state.serials.length).toBe(2);
  });

  it('refuses renewal on behalf of another identity, and renewal of a weak or malformed CSR', async () => {
    const agent = await nats.connect({ role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1', nodeId: 'n1' });
    const log = ViolationLog.watch(agent);
    agent.publish(subjects.renewal(manager), '{}');
    await log.expect('Publish', subjects.renewal(manager));
    const m = new Bus(await open(await issuer.issue(manager)));
    const renew = (csr: string) =>
      m.requestAt(subjects.renewal(manager), renewIdentity, { csr, userKey: newUserKey().publicKey });
    await expect(renew('nope')).rejects.toSatisfy(
      (e) =>
        hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.csr' && e.issues[0].code === 'malformed',
    );
    // a well-formed CSR, signed, of a 1024-bit key
    const weak = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    await expect(
      renew(createCsr({ publicKeyPem: weak.publicKey, privateKeyPem: weak.privateKey }, 'cps-node')),
    ).rejects.toSatisfy(
      (e) =>
        hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.csr' && e.issues[0].code === 'weak_key',
    );
    // the same request with a 2048-bit key renews
    const renewed = await renew(createCsr(generateKeyPair(), 'cps-node'));
    expect(inspectCertificate(renewed.cert).identity).toEqual(manager);
  });

  it('trades a one-time enrollment token for an identity whose private keys never left the node', async () => {
    const node: Identity = { role: 'agent', id: 'n7', appId: 'a1', serviceId: 's1', nodeId: 'n7' };
    const token = await issuer.offerEnrollment(node);
    const key = generateKeyPair();
    const user = newUserKey();
    const csr = createCsr(key, 'whatever-the-node-asks');
    const enrolled = await issuer.enroll(token, csr, user.publicKey);
    expect(enrolled.identity).toEqual(node);
    expect(inspectCertificate(enrolled.cert).identity).toEqual(node);
    const nc = await connect({
      servers: nats.urls,
      tls: { ca: enrolled.ca, cert: enrolled.cert, key: key.privateKeyPem },
      authenticator: jwtAuthenticator(enrolled.jwt, new TextEncoder().encode(user.seed)),
      inboxPrefix: subjects.inbox(node),
    });
    await nc.flush();
    await nc.close();
    // the same requester asking again (its reply lost) gets the identity again; another key is refused
    const again = await issuer.enroll(token, csr, user.publicKey);
    expect(inspectCertificate(again.cert).identity).toEqual(node);
    expect(inspectCertificate(again.cert).serial).not.toBe(inspectCertificate(enrolled.cert).serial);
    for (const [otherCsr, otherKey] of [
      [createCsr(generateKeyPair(), 'x'), user.publicKey],
      [csr, newUserKey().publicKey],
    ] as const)
      await expect(issuer.enroll(token, otherCsr, otherKey)).rejects.toSatisfy((e) =>
        hasErrorCode(e, 'unauthenticated'),
      );
    await expect(issuer.enroll(`${token.slice(0, -2)}xx`, csr, user.publicKey)).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'unauthenticated'),
    );
    await expect(issuer.enroll('garbage', csr, user.publicKey)).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'unauthenticated'),
    );
  });

  it('refuses an expired enrollment token', async () => {
    const node: Identity = { role: 'agent', id: 'n8', appId: 'a1', serviceId: 's1', nodeId: 'n8' };
    const token = await issuer.offerEnrollment(node, 60_000);
    pinned = new Date(Date.now() + 120_000);
    try {
      await expect(
        issuer.enroll(token, createCsr(generateKeyPair(), 'x'), newUserKey().publicKey),
      ).rejects.toSatisfy((e) => hasErrorCode(e, 'unauthenticated'));
    } finally {
      pinned = undefined;
    }
  });

  it('revokes: live connections are cut, new ones refused, even after nats-server restarts, and renewal is refused', async () => {
    const who: Identity = { role: 'manager', id: 's9', appId: 'a1', serviceId: 's9' };
    const id = await issuer.issue(who);
    const nc = await open(id);
    const closed = nc.closed();
    await issuer.revoke(who, 'compromised');
    await closed;
    const attempt = () =>
      connect({
        servers: nats.urls,
        tls: id.tls,
        authenticator: jwtAuthenticator(id.credentials.jwt, new TextEncoder().encode(id.credentials.seed)),
        reconnect: false,
      });
    await expect(attempt()).rejects.toThrow(/authorization|revoked/i);
    await nats.servers.kill(0);
    await nats.servers.restart(0);
    await expect(attempt()).rejects.toThrow(/authorization|revoked/i);
    expect(await issuer.state(who)).toMatchObject({ status: 'revoked' });
    await expect(
      issuer.renew(who, createCsr(generateKeyPair(), 'x'), newUserKey().publicKey),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'forbidden'));
    await expect(issuer.restoreRevocations()).resolves.toBeGreaterThanOrEqual(1);
  });
});
