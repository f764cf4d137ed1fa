import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, isCpsError } from '@cps/core';
import { Bus, connectBus } from '@cps/bus';
import { enrollNode } from '../enrollment/enrollment.js';
import { writeIdentity } from '../enrollment/exchange.js';
import { reenrollNode } from '../enrollment/reenrollment.js';
import { IdentityRenewer } from '../identity/renewer.js';
import type { BusIdentity } from '../trust.js';

/** A variable a cloud or supervisor must have set for a node process. */
export const requireEnv = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new CpsError('validation', `missing environment variable ${name}`);
  return v;
};

/** When a user JWT was issued (its `iat`), in ms; undefined when it does not say. */
const issuedAt = (jwt: string): number | undefined => {
  try {
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      iat?: unknown;
    };
    return typeof claims.iat === 'number' ? claims.iat * 1000 : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Whether `identity` is expired, or so close to it that it would be cut before it renews: within a
 * tenth of its lifetime, at most a minute.
 */
const expiresSoon = (identity: BusIdentity): boolean => {
  const expiry = identity.certExpiresAt.getTime();
  const life = expiry - (issuedAt(identity.credentials.jwt) ?? expiry - 3600_000);
  return expiry - Date.now() < Math.min(60_000, life / 10);
};

/** Clocks differ: the bus may take a certificate for expired a while before this machine does. */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Whether the bus may have refused `identity` for its age: nats-server names an expired JWT, but
 * cuts (or lets time out) the TLS handshake of an expired certificate without a word, so any failure
 * to connect with a certificate this close to its expiry counts.
 */
const refusedForExpiry = (e: unknown, identity: BusIdentity): boolean =>
  (e as { name?: unknown }).name === 'UserAuthenticationExpiredError' ||
  identity.certExpiresAt.getTime() - Date.now() < CLOCK_SKEW_MS;

const readIdentity = (file: string): BusIdentity => {
  const stored = JSON.parse(readFileSync(file, 'utf8')) as BusIdentity;
  return { ...stored, certExpiresAt: new Date(stored.certExpiresAt) };
};

/**
 * What every node process (manager or agent) does first: read the identity its cloud left in its
 * node directory (or, when there is none, enroll with `CPS_ENROLL_TOKEN` at `CPS_ENROLL_URL`,
 * trusting `bus-ca.pem` of that directory), connect to the bus with it, and keep it renewed (each
 * renewal written back to `identity.json`). An identity that expired while the node was stopped (or
 * that the bus refuses as expired) is re-enrolled at `CPS_ENROLL_URL` first: the node proves it holds
 * its key and gets a fresh certificate and JWT (`reenrollNode`), with no new contextualization.
 */
export const joinBus = async (name: string): Promise<{ bus: Bus; renewer: IdentityRenewer }> => {
  const nodeDir = requireEnv('CPS_NODE_DIR');
  const file = join(nodeDir, 'identity.json');
  const caFile = join(nodeDir, 'bus-ca.pem');
  const { CPS_ENROLL_TOKEN: token, CPS_ENROLL_URL: url } = process.env;
  if (!existsSync(file) && token && url)
    await enrollNode({ url, token, caPem: readFileSync(caFile, 'utf8'), nodeDir });
  delete process.env.CPS_ENROLL_TOKEN;
  const servers = requireEnv('CPS_NATS_URLS').split(',');
  const open = (id: BusIdentity) =>
    connectBus({ servers, tls: id.tls, credentials: id.credentials, inboxPrefix: id.inboxPrefix, name });
  const reenroll = (current: BusIdentity): Promise<BusIdentity> => {
    if (!url)
      throw new CpsError(
        'unauthenticated',
        `the node's identity expired (${current.certExpiresAt.toISOString()}) and CPS_ENROLL_URL names no director to re-enroll at`,
      );
    const caPem = existsSync(caFile) ? readFileSync(caFile, 'utf8') : current.tls.ca;
    return reenrollNode({ url, caPem, nodeDir, current });
  };
  let identity = readIdentity(file);
  if (expiresSoon(identity)) identity = await reenroll(identity);
  let nc;
  try {
    nc = await open(identity);
  } catch (e) {
    if (!refusedForExpiry(e, identity)) throw e;
    identity = await reenroll(identity);
    nc = await open(identity);
  }
  const bus = new Bus(nc);
  const renewer = new IdentityRenewer(bus, identity, open, {
    onRenewed: (next) =>
      void writeIdentity(nodeDir, next).catch((e: unknown) =>
        console.error(`${name}: the renewed identity was not written: ${String(e)}`),
      ),
  });
  return { bus, renewer };
};

/**
 * Runs a node process: `start` until it resolves, then waits; on SIGTERM/SIGINT calls `stop`, closes
 * the bus and exits 0; a failure to start is printed with its code and exits 1.
 */
export const runNodeProcess = (
  what: string,
  start: () => Promise<{ bus: Bus; renewer: IdentityRenewer; stop: () => Promise<void> }>,
): void => {
  start()
    .then(({ bus, renewer, stop }) => {
      renewer.start();
      const shutdown = (): void => {
        renewer.stop();
        void stop()
          .then(() => bus.close())
          .finally(() => process.exit(0));
      };
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    })
    .catch((e: unknown) => {
      console.error(isCpsError(e) ? `${what} failed [${e.code}]: ${e.message}` : e);
      process.exit(1);
    });
};
