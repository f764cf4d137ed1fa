import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
import { issueCertificate, type Identity } from '@cps/core';
import { connectBus, issueUserCredentials } from '@cps/bus';
import { busTrustPem, createPlatformSecrets, freshKeys } from '@cps/platform';
import { TestNats, pooledKeys } from '@cps/testing';

const agent: Identity = { role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1', nodeId: 'n1' };
const HOUR = 3600_000;

describe('who may connect (mTLS + operator-mode JWT)', () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await TestNats.start();
  });
  afterAll(async () => nats.cleanup());

  const attempt = async (
    tls: { ca: string; cert?: string; key?: string },
    creds: { jwt: string; seed: string },
  ) => {
    const nc = await connect({
      servers: nats.urls,
      tls,
      authenticator: jwtAuthenticator(creds.jwt, new TextEncoder().encode(creds.seed)),
      reconnect: false,
      timeout: 3_000,
    });
    await nc.close();
  };

  it('accepts a certificate of the bus CA with a valid JWT', async () => {
    const id = await nats.identity(agent);
    await expect(attempt(id.tls, id.credentials)).resolves.toBeUndefined();
  });

  it('refuses a connection without a client certificate', async () => {
    const id = await nats.identity(agent);
    await expect(attempt({ ca: id.tls.ca }, id.credentials)).rejects.toThrow();
  });

  it('refuses a client certificate from another CA', async () => {
    const id = await nats.identity(agent);
    // fresh keys: a pooled key could be the real bus CA's own key, and then the "foreign" CA would not be foreign
    const foreign = createPlatformSecrets(new Date(), freshKeys);
    const key = pooledKeys().next();
    const cert = issueCertificate(foreign.busCa, {
      identity: agent,
      usage: 'client',
      publicKeyPem: key.publicKeyPem,
      now: new Date(),
      validForMs: HOUR,
    });
    await expect(
      attempt({ ca: id.tls.ca, cert: cert + foreign.busCa.certPem, key: key.privateKeyPem }, id.credentials),
    ).rejects.toThrow();
  });

  it('refuses an expired client certificate', async () => {
    const id = await nats.identity(agent);
    const key = pooledKeys().next();
    const cert = issueCertificate(nats.secrets.busCa, {
      identity: agent,
      usage: 'client',
      publicKeyPem: key.publicKeyPem,
      now: new Date(Date.now() - 3 * HOUR),
      validForMs: HOUR,
    });
    await expect(
      attempt(
        { ca: busTrustPem(nats.secrets), cert: cert + nats.secrets.busCa.certPem, key: key.privateKeyPem },
        id.credentials,
      ),
    ).rejects.toThrow();
  });

  it('refuses an expired JWT', async () => {
    const id = await nats.identity(agent);
    const old = await issueUserCredentials(nats.secrets.operator, agent, {
      now: new Date(Date.now() - 2 * HOUR),
      ttlMs: HOUR,
    });
    await expect(attempt(id.tls, { jwt: old.jwt, seed: old.seed as string })).rejects.toThrow(
      /authorization|expired/i,
    );
  });

  it('refuses a JWT signed by another operator', async () => {
    const id = await nats.identity(agent);
    const foreign = await issueUserCredentials(
      createPlatformSecrets(new Date(), pooledKeys()).operator,
      agent,
      { now: new Date(), ttlMs: HOUR },
    );
    await expect(attempt(id.tls, { jwt: foreign.jwt, seed: foreign.seed as string })).rejects.toThrow(
      /authorization/i,
    );
  });

  it('cuts off a revoked identity that is connected, and refuses it afterwards', async () => {
    const id = await nats.identity({ role: 'agent', id: 'n9', appId: 'a1', serviceId: 's1', nodeId: 'n9' });
    const live = await connectBus({
      servers: nats.urls,
      tls: id.tls,
      credentials: id.credentials,
      inboxPrefix: id.inboxPrefix,
      reconnect: false,
    });
    const closed = live.closed();
    const t0 = Date.now();
    await nats.revoke(id.bus.publicKey);
    await closed;
    expect(Date.now() - t0).toBeLessThan(2_000);
    await expect(attempt(id.tls, id.credentials)).rejects.toThrow(/authorization|revoked/i);
  });
});
