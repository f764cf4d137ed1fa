import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, isCpsError } from '@cps/core';
import { Bus, connectBus } from '@cps/bus';
import { enrollNode } from '../enrollment/enrollment.js';
import { IdentityRenewer } from '../identity/renewer.js';
import type { BusIdentity } from '../trust.js';

/** A variable a cloud or supervisor must have set for a node process. */
export const requireEnv = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new CpsError('validation', `missing environment variable ${name}`);
  return v;
};

/**
 * What every node process (manager or agent) does first: read the identity its cloud left in its
 * node directory (or, when there is none, enroll with `CPS_ENROLL_TOKEN` at `CPS_ENROLL_URL`,
 * trusting `bus-ca.pem` of that directory), connect to the bus with it, and keep it renewed.
 */
export const joinBus = async (name: string): Promise<{ bus: Bus; renewer: IdentityRenewer }> => {
  const nodeDir = requireEnv('CPS_NODE_DIR');
  const file = join(nodeDir, 'identity.json');
  const { CPS_ENROLL_TOKEN: token, CPS_ENROLL_URL: url } = process.env;
  if (!existsSync(file) && token && url)
    await enrollNode({ url, token, caPem: readFileSync(join(nodeDir, 'bus-ca.pem'), 'utf8'), nodeDir });
  delete process.env.CPS_ENROLL_TOKEN;
  const identity = JSON.parse(readFileSync(file, 'utf8')) as BusIdentity;
  const servers = requireEnv('CPS_NATS_URLS').split(',');
  const open = (id: BusIdentity) =>
    connectBus({ servers, tls: id.tls, credentials: id.credentials, inboxPrefix: id.inboxPrefix, name });
  const bus = new Bus(await open(identity));
  const renewer = new IdentityRenewer(
    bus,
    { ...identity, certExpiresAt: new Date(identity.certExpiresAt) },
    open,
  );
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
