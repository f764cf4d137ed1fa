import { isIP } from 'node:net';
import { join } from 'node:path';
import { signTrustChain } from '@cps/bus';
import { CpsError, generateKeyPair } from '@cps/core';
import type { PlatformHome } from '../home/platform-home.js';
import { writeServerFiles } from './server-files.js';

/** A server of a cluster that runs elsewhere (containers, other machines). */
export interface ClusterServer {
  /** Its name: `server_name`, the directory of its files, and by default its host name. */
  readonly name: string;
  /** The host name (or IPv4 address) clients and the other servers dial; `name` by default. */
  readonly host?: string;
  readonly clientPort?: number;
  readonly clusterPort?: number;
  readonly monitorPort?: number;
  /** Its resolver and JetStream directory, as it sees it; the options' `dataDir` by default. */
  readonly dataDir?: string;
}

export interface ClusterConfigOptions {
  readonly servers: readonly ClusterServer[];
  /** Where the files are written: one directory per server. */
  readonly out: string;
  /** Where the servers find `out` (the same path by default, as with a shared volume). */
  readonly outAtServers?: string;
  /** Defaults of every server: 4222, 6222, 8222 (monitoring, on loopback only), `/var/lib/cps/data`,
   * clients and routes on 0.0.0.0. */
  readonly clientPort?: number;
  readonly clusterPort?: number;
  readonly monitorPort?: number;
  readonly dataDir?: string;
  readonly listen?: string;
  readonly now?: Date;
}

export interface WrittenServer {
  readonly name: string;
  readonly configFile: string;
  /** The URL clients use for it (`tls://host:port`). */
  readonly url: string;
}

const NAME = /^[a-z0-9][a-z0-9.-]{0,62}$/;

/**
 * The names a server's certificate must carry to be dialed at `host`. A client of nats.js that
 * dials an IP address upgrades to TLS without a server name, so Node checks the certificate
 * against `localhost`: such servers carry that name too.
 */
const namesOf = (host: string): string[] => (isIP(host) !== 0 ? [host, 'localhost'] : [host]);

/**
 * Writes the configuration of a NATS JetStream cluster for this platform: per server a
 * `server.conf` with mTLS, the platform's operator and accounts, JetStream and TLS routes to the
 * others, a certificate naming its host (clients and peers verify it), its own key (0600) and the
 * bus CA. The platform's directors list the answered URLs (`cps platform init --nats`).
 */
export const writeClusterConfig = async (
  home: PlatformHome,
  o: ClusterConfigOptions,
): Promise<WrittenServer[]> => {
  if (o.servers.length === 0) throw new CpsError('validation', 'no servers given');
  const names = new Set<string>();
  o.servers.forEach((s, i) => {
    if (!NAME.test(s.name))
      throw new CpsError('validation', `server name ${JSON.stringify(s.name)} is not a host name`, [
        {
          path: `servers[${i}]`,
          code: 'invalid_string',
          message: 'lower-case letters, digits, dots, dashes',
        },
      ]);
    if (names.has(s.name))
      throw new CpsError('validation', `server ${s.name} is given twice`, [
        { path: `servers[${i}]`, code: 'duplicate', message: 'server names must differ' },
      ]);
    names.add(s.name);
  });
  const secrets = home.secrets();
  const chain = await signTrustChain(secrets.operator);
  const now = o.now ?? new Date();
  const full = o.servers.map((s) => ({
    name: s.name,
    host: s.host ?? s.name,
    clientPort: s.clientPort ?? o.clientPort ?? 4222,
    clusterPort: s.clusterPort ?? o.clusterPort ?? 6222,
    monitorPort: s.monitorPort ?? o.monitorPort ?? 8222,
    dataDir: s.dataDir ?? o.dataDir ?? '/var/lib/cps/data',
  }));
  return full.map((s) => {
    const configFile = writeServerFiles(
      {
        name: s.name,
        dir: join(o.out, s.name),
        dirAtServer: join(o.outAtServers ?? o.out, s.name),
        dataDir: s.dataDir,
        listen: o.listen ?? '0.0.0.0',
        hosts: namesOf(s.host),
        port: s.clientPort,
        monitorPort: s.monitorPort,
        ...(full.length > 1
          ? {
              cluster: {
                port: s.clusterPort,
                routes: full.filter((x) => x !== s).map((x) => `tls://${x.host}:${x.clusterPort}`),
              },
            }
          : {}),
      },
      { secrets, key: generateKeyPair(), chain, now },
    );
    return { name: s.name, configFile, url: `tls://${s.host}:${s.clientPort}` };
  });
};
