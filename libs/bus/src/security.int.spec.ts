import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
import { issueCertificate, type Identity, type KeyPair } from '@cps/core';
import { connectBus, issueUserCredentials } from '@cps/bus';
import { busTrustPem, createPlatformSecrets, freshKeys, type PlatformSecrets } from '@cps/platform';
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

  /** A client certificate of `ca` for `agent` on `key`, valid an hour from `from`. */
  const certificate = (ca: PlatformSecrets['busCa'], key: KeyPair, from = new Date()) =>
    issueCertificate(ca, {
      identity: agent,
      usage: 'client',
      publicKeyPem: key.publicKeyPem,
      now: from,
      validForMs: HOUR,
    }) + ca.certPem;

  /**
   * Expects the attempt refused during the TLS handshake (the client sees the socket reset or a TLS
   * alert, never an authorization error) for the reason the server logs.
   */
  const refusedInHandshake = async (tryIt: () => Promise<void>, reason: RegExp) => {
    const mark = nats.logMark();
    const e = (await tryIt().then(
      () => undefined,
      (err: unknown) => err,
    )) as (Error & { code?: string }) | undefined;
    expect(e, 'the connection was refused').toBeInstanceOf(Error);
    expect(e!.code).toMatch(/^(ECONNRESET|EPIPE|ERR_SSL_\w+)$/);
    expect(e!.message).not.toMatch(/authorization/i);
    expect(await nats.logged(/TLS handshake error/, mark)).toMatch(reason);
  };

  it('accepts a certificate of the bus CA with a valid JWT', async () => {
    const id = await nats.identity(agent);
    await expect(attempt(id.tls, id.credentials)).resolves.toBeUndefined();
  });

  it('refuses a connection without a client certificate', async () => {
    const id = await nats.identity(agent);
    await refusedInHandshake(
      () => attempt({ ca: id.tls.ca }, id.credentials),
      /client didn't provide a certificate/,
    );
    // the same, with its certificate
    await expect(attempt(id.tls, id.credentials)).resolves.toBeUndefined();
  });

  it('refuses a client certificate from another CA', async () => {
    const id = await nats.identity(agent);
    // fresh keys: a pooled key could be the real bus CA's own key, and then the "foreign" CA would not be foreign
    const foreign = createPlatformSecrets(new Date(), freshKeys);
    const key = pooledKeys().next();
    await refusedInHandshake(
      () =>
        attempt(
          { ca: id.tls.ca, cert: certificate(foreign.busCa, key), key: key.privateKeyPem },
          id.credentials,
        ),
      /x509: certificate signed by unknown authority/,
    );
    // the same key and subject, certified by the bus CA
    await expect(
      attempt(
        { ca: id.tls.ca, cert: certificate(nats.secrets.busCa, key), key: key.privateKeyPem },
        id.credentials,
      ),
    ).resolves.toBeUndefined();
  });

  it('refuses an expired client certificate', async () => {
    const id = await nats.identity(agent);
    const key = pooledKeys().next();
    const ca = busTrustPem(nats.secrets);
    await refusedInHandshake(
      () =>
        attempt(
          {
            ca,
            cert: certificate(nats.secrets.busCa, key, new Date(Date.now() - 3 * HOUR)),
            key: key.privateKeyPem,
          },
          id.credentials,
        ),
      /x509: certificate has expired or is not yet valid/,
    );
    // the same, valid from now
    await expect(
      attempt({ ca, cert: certificate(nats.secrets.busCa, key), key: key.privateKeyPem }, id.credentials),
    ).resolves.toBeUndefined();
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
