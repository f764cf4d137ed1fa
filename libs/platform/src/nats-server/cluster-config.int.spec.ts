import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, jwtAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connectBus, issueSystemCredentials, signTrustChain } from '@cps/bus';
import { generateKeyPair, isCpsError } from '@cps/core';
import { ensureEventStream } from '@cps/events';
import {
  findNatsServer,
  freePort,
  issueBusIdentity,
  NatsServerProcess,
  PlatformHome,
  writeClusterConfig,
  type BusIdentity,
  type WrittenServer,
} from '@cps/platform';

/**
 * `writeClusterConfig` (behind `cps platform nats-config`): the files it writes run a real
 * three-server JetStream cluster that the platform's director joins. Here the three "hosts" are
 * loopback ports; in docker-compose they are the containers' names.
 */
describe('cluster configuration for a NATS JetStream cluster run elsewhere', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cps-cluster-'));
  let home: PlatformHome;
  let written: WrittenServer[];
  const ports: { client: number; cluster: number; monitor: number }[] = [];
  const procs: NatsServerProcess[] = [];
  const open: NatsConnection[] = [];
  const binary = findNatsServer();

  const start = (i: number) =>
    NatsServerProcess.start({
      binary,
      configFile: written[i]!.configFile,
      port: ports[i]!.client,
      monitorPort: ports[i]!.monitor,
      logFile: join(dir, `n${i + 1}.log`),
      readyTimeoutMs: 15_000,
    });
  const join_ = async (id: BusIdentity, servers: string[]) => {
    const nc = await connectBus({
      servers,
      tls: id.tls,
      credentials: id.credentials,
      inboxPrefix: id.inboxPrefix,
      reconnect: false,
    });
    open.push(nc);
    return nc;
  };
  const agent = (id: string) =>
    issueBusIdentity(
      home.secrets(),
      { role: 'agent', id, appId: 'a1', serviceId: 's1', nodeId: id },
      {
        now: new Date(),
        ttlMs: 3600_000,
        key: generateKeyPair(),
      },
    );

  beforeAll(async () => {
    const taken = new Set<number>();
    const pick = async () => {
      const p = await freePort('127.0.0.1', taken);
      taken.add(p);
      return p;
    };
    for (let i = 0; i < 3; i++)
      ports.push({ client: await pick(), cluster: await pick(), monitor: await pick() });
    home = await PlatformHome.init(join(dir, 'home'), {
      env: {},
      natsUrls: ports.map((p) => `tls://127.0.0.1:${p.client}`),
    });
    written = await writeClusterConfig(home, {
      servers: ports.map((p, i) => ({
        name: `n${i + 1}`,
        host: '127.0.0.1',
        clientPort: p.client,
        clusterPort: p.cluster,
        monitorPort: p.monitor,
        dataDir: join(dir, 'data', `n${i + 1}`),
      })),
      out: join(dir, 'nats'),
      listen: '127.0.0.1',
    });
    procs.push(...(await Promise.all([0, 1, 2].map(start))));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes per server a config, a certificate naming its host, a private key and the CA', () => {
    expect(written.map((w) => w.url)).toEqual(ports.map((p) => `tls://127.0.0.1:${p.client}`));
    const conf = readFileSync(written[0]!.configFile, 'utf8');
    expect(conf).toContain('server_name: "n1"');
    expect(conf).toContain(
      `routes: ["tls://127.0.0.1:${ports[1]!.cluster}", "tls://127.0.0.1:${ports[2]!.cluster}"]`,
    );
    expect(conf).toMatch(/verify: true/);
    expect(conf).toContain(`http: "127.0.0.1:${ports[0]!.monitor}"`);
    expect(statSync(join(dir, 'nats', 'n1', 'server-key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(written[0]!.configFile).mode & 0o777).toBe(0o600);
    // every server has a key of its own
    const key = (n: string) => readFileSync(join(dir, 'nats', n, 'server-key.pem'), 'utf8');
    expect(new Set([key('n1'), key('n2'), key('n3')]).size).toBe(3);
  });

  it('refuses what the files do not allow: bad or repeated names', async () => {
    const bad = await writeClusterConfig(home, {
      servers: [{ name: 'Not A Host' }],
      out: join(dir, 'x'),
    }).catch((e: unknown) => e);
    expect(isCpsError(bad) && bad.code).toBe('validation');
    expect((bad as { issues: { path: string }[] }).issues[0]?.path).toBe('servers[0]');
    const twice = await writeClusterConfig(home, {
      servers: [{ name: 'a' }, { name: 'a' }],
      out: join(dir, 'x'),
    }).catch((e: unknown) => e);
    expect((twice as { issues: { path: string }[] }).issues[0]?.path).toBe('servers[1]');
  });

  it('forms a cluster the director joins with its own identity, keeping a three-replica stream', async () => {
    const director = await home.directorIdentity();
    const nc = await join_(director, home.info().natsUrls as string[]);
    // the meta leader is elected a moment after the routes connect
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await ensureEventStream(nc, { replicas: 3 });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('CPS_EVENTS');
    expect(info.config.num_replicas).toBe(3);
    expect(info.cluster?.replicas?.length).toBe(2);
    const ack = await jetstream(nc).publish('cps.evt.test.x', 'x');
    expect(ack.stream).toBe('CPS_EVENTS');
  }, 45_000);

  it('names each server in its certificate by the host clients and peers dial', async () => {
    const altNames = (n: string, base = join(dir, 'nats')) =>
      new X509Certificate(readFileSync(join(base, n, 'server-cert.pem'))).subjectAltName;
    // dialed by IP: the address, and localhost (nats.js checks that name when it dials an IP)
    expect(altNames('n2')).toBe('URI:spiffe://cps/server/nats-n2, DNS:localhost, IP Address:127.0.0.1');
    const named = await writeClusterConfig(home, {
      servers: [{ name: 'nats-1' }, { name: 'nats-2' }, { name: 'nats-3' }],
      out: join(dir, 'named'),
    });
    expect(named.map((w) => w.url)).toEqual(['tls://nats-1:4222', 'tls://nats-2:4222', 'tls://nats-3:4222']);
    expect(altNames('nats-2', join(dir, 'named'))).toBe('URI:spiffe://cps/server/nats-nats-2, DNS:nats-2');
    const conf = readFileSync(named[1]!.configFile, 'utf8');
    expect(conf).toContain('routes: ["tls://nats-1:6222", "tls://nats-3:6222"]');
    expect(conf).toContain('listen: "0.0.0.0:4222"');
    expect(conf).toContain('http: "127.0.0.1:8222"');
    expect(conf).toContain('store_dir: "/var/lib/cps/data/jetstream"');
    // the account JWT is always preloaded for a server elsewhere: it keeps the newer one it holds
    expect(conf).toMatch(/resolver_preload: \{\n {2}\w+: "[^"]+"\n {2}\w+: "[^"]+"\n\}/);
  });

  /**
   * Expects server n1 to refuse `id` as revoked: an authorization violation, which the server logs
   * as an authentication error, while the account JWT it holds lists the user among its revocations.
   */
  const refusedAsRevoked = async (id: BusIdentity, account: string) => {
    const log = join(dir, 'n1.log');
    const mark = statSync(log).size;
    const e = await join_(id, [written[0]!.url]).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(e?.message).toBe('Authorization Violation');
    const deadline = Date.now() + 3_000;
    while (!/authentication error/.test(readFileSync(log).subarray(mark).toString('utf8'))) {
      if (Date.now() > deadline) throw new Error('n1 logged no authentication error');
      await new Promise((r) => setTimeout(r, 20));
    }
    const az = (await (
      await fetch(`http://127.0.0.1:${ports[0]!.monitor}/accountz?acc=${account}`)
    ).json()) as { account_detail: { jwt: string } };
    const claims = JSON.parse(
      Buffer.from(az.account_detail.jwt.split('.')[1]!, 'base64url').toString('utf8'),
    ) as { nats: { revocations?: Record<string, number> } };
    expect(claims.nats.revocations?.[publicKeyOf(id)]).toBeGreaterThan(0);
  };

  it('keeps a revocation pushed to the cluster across a kill -9 and restart of a server', async () => {
    const revoked = await agent('revoked');
    await (await join_(revoked, [written[0]!.url])).close();
    // the pushed account JWT must be newer (in seconds) than the one preloaded by the config
    await new Promise((r) => setTimeout(r, 1_100));
    const chain = await signTrustChain(home.secrets().operator, {
      [publicKeyOf(revoked)]: Math.floor(Date.now() / 1000) + 1,
    });
    const creds = await issueSystemCredentials(home.secrets().operator, new Date(), 3600_000);
    const sys = await connect({
      servers: written.map((w) => w.url),
      tls: { ca: revoked.tls.ca, cert: revoked.tls.cert, key: revoked.tls.key },
      authenticator: jwtAuthenticator(creds.jwt, new TextEncoder().encode(creds.seed)),
    });
    open.push(sys);
    await sys.request(`$SYS.REQ.ACCOUNT.${chain.account}.CLAIMS.UPDATE`, chain.accountJwt, {
      timeout: 5_000,
    });
    await refusedAsRevoked(revoked, chain.account);
    // the same server takes an identity that is not revoked
    await (await join_(await agent('other'), [written[0]!.url])).close();

    await procs[0]!.kill('SIGKILL');
    procs[0] = await start(0);
    await refusedAsRevoked(revoked, chain.account);
    // the restarted server does serve: a fresh identity joins it
    const fresh = await join_(await agent('fresh'), [written[0]!.url]);
    await fresh.flush();
  }, 45_000);
});

/** The user public key a JWT was issued to (its `sub`). */
const publicKeyOf = (id: BusIdentity): string =>
  (
    JSON.parse(Buffer.from(id.credentials.jwt.split('.')[1]!, 'base64url').toString('utf8')) as {
      sub: string;
    }
  ).sub;
