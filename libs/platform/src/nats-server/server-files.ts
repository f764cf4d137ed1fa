import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverAuthConfig, type SignedTrustChain } from '@cps/bus';
import type { KeyPair } from '@cps/core';
import { busTrustPem, issueServerCert, type PlatformSecrets } from '../trust.js';
import { renderServerConfig } from './config.js';

/** One nats-server of the platform: where its files go and what it serves. */
export interface ServerFilesSpec {
  /** `server_name`, also the id in its certificate (`nats-<name>`). */
  readonly name: string;
  /** Where its configuration, certificate and key are written. */
  readonly dir: string;
  /** Where the server itself finds `dir` (another mount point in a container); `dir` by default. */
  readonly dirAtServer?: string;
  /** Its resolver and JetStream directories, as the server sees them. */
  readonly dataDir: string;
  /** The address it listens on. */
  readonly listen: string;
  /** Names its clients and peers dial: DNS names and IPv4 addresses of its certificate. */
  readonly hosts: readonly string[];
  readonly port: number;
  /** None: the server has no HTTP monitoring port. */
  readonly monitorPort?: number;
  /** Its cluster port and routes to the other servers (`tls://host:port`); absent: no cluster. */
  readonly cluster?: { readonly port: number; readonly routes: readonly string[] };
}

/**
 * Writes `server.conf` (mTLS required, operator mode with a full resolver, JetStream, TLS routes),
 * `server-cert.pem` (with the bus CA), `server-key.pem` (0600) and `ca.pem` into `spec.dir`.
 * The account JWT is preloaded while the server's resolver does not hold one (always when the
 * files are for another machine, `dirAtServer`: nats-server then keeps the newer of the preloaded
 * and the stored JWT, so revocations pushed since survive a restart).
 */
export const writeServerFiles = (
  spec: ServerFilesSpec,
  o: {
    readonly secrets: PlatformSecrets;
    readonly key: KeyPair;
    readonly chain: SignedTrustChain;
    readonly now: Date;
  },
): string => {
  const at = spec.dirAtServer ?? spec.dir;
  const resolverDir = join(spec.dataDir, 'resolver');
  mkdirSync(spec.dir, { recursive: true, mode: 0o700 });
  if (!spec.dirAtServer) mkdirSync(resolverDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(spec.dir, 'server-cert.pem'),
    issueServerCert(o.secrets, `nats-${spec.name}`, o.now, o.key, spec.hosts) + o.secrets.busCa.certPem,
  );
  writeFileSync(join(spec.dir, 'server-key.pem'), o.key.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(spec.dir, 'ca.pem'), busTrustPem(o.secrets));
  const conf = renderServerConfig({
    name: spec.name,
    host: spec.listen,
    port: spec.port,
    ...(spec.monitorPort === undefined ? {} : { monitorHost: '127.0.0.1', monitorPort: spec.monitorPort }),
    tls: {
      certFile: join(at, 'server-cert.pem'),
      keyFile: join(at, 'server-key.pem'),
      caFile: join(at, 'ca.pem'),
    },
    auth: serverAuthConfig(o.chain, resolverDir, {
      preloadAccount:
        spec.dirAtServer !== undefined || !existsSync(join(resolverDir, `${o.chain.account}.jwt`)),
    }),
    jetstreamDir: join(spec.dataDir, 'jetstream'),
    ...(spec.cluster ? { cluster: { name: 'cps', ...spec.cluster } } : {}),
  });
  const file = join(spec.dir, 'server.conf');
  writeFileSync(file, conf, { mode: 0o600 });
  return file;
};
