import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, connectBus, signTrustChain, issueSystemCredentials, type Revocations } from '@cps/bus';
import type { Identity } from '@cps/core';
import {
  createPlatformSecrets,
  issueBusIdentity,
  NatsServers,
  type BusIdentity,
  type PlatformSecrets,
} from '@cps/platform';
import { connect, jwtAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { pooledKeys } from './keys.js';

export interface TestNatsOptions {
  /** 1 (default) or 3 for a JetStream cluster. */
  readonly size?: number;
  /** The address the servers listen on (a host-mode platform address); 127.0.0.1 by default. */
  readonly host?: string;
}

/**
 * A real nats-server (or cluster) for one test file: operator mode, mTLS required, JetStream,
 * fresh CA, server certificates and JWTs in a temp dir that `cleanup()` removes.
 */
export class TestNats {
  private readonly connections: NatsConnection[] = [];
  readonly keys = pooledKeys();
  private revocations: Record<string, number> = {};

  private constructor(
    readonly dir: string,
    readonly secrets: PlatformSecrets,
    readonly servers: NatsServers,
  ) {}

  static async start(o: TestNatsOptions = {}): Promise<TestNats> {
    const dir = mkdtempSync(join(tmpdir(), 'cps-nats-'));
    try {
      const keys = pooledKeys();
      const secrets = createPlatformSecrets(new Date(), keys);
      const servers = await NatsServers.start({
        dir,
        secrets,
        size: o.size ?? 1,
        serverKey: keys.next(),
        ...(o.host === undefined ? {} : { host: o.host }),
      });
      return new TestNats(dir, secrets, servers);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  get urls(): string[] {
    return this.servers.urls;
  }

  /** Certificate and JWT for `identity`, valid `ttlMs` from `now`. */
  identity(identity: Identity, o: { ttlMs?: number; now?: Date } = {}): Promise<BusIdentity> {
    return issueBusIdentity(this.secrets, identity, {
      now: o.now ?? new Date(),
      ttlMs: o.ttlMs ?? 3600_000,
      key: this.keys.next(),
    });
  }

  /** Connects as `identity` (or with the given material); closed at cleanup. */
  async connect(
    who: Identity | BusIdentity,
    o: { servers?: string[]; reconnect?: boolean } = {},
  ): Promise<NatsConnection> {
    const id = 'tls' in who ? who : await this.identity(who);
    const nc = await connectBus({
      servers: o.servers ?? this.urls,
      tls: id.tls,
      credentials: id.credentials,
      inboxPrefix: id.inboxPrefix,
      reconnect: o.reconnect ?? true,
      name: `${id.identity.role}:${id.identity.id}`,
    });
    this.connections.push(nc);
    return nc;
  }

  async bus(who: Identity | BusIdentity): Promise<Bus> {
    return new Bus(await this.connect(who));
  }

  /** A system-account connection (pushes account JWT updates). */
  async system(): Promise<NatsConnection> {
    const creds = await issueSystemCredentials(this.secrets.operator, new Date(), 3600_000);
    const id = await this.identity({ role: 'director', id: 'sys' });
    const nc = await connect({
      servers: this.urls,
      tls: { ca: id.tls.ca, cert: id.tls.cert, key: id.tls.key },
      authenticator: jwtAuthenticator(creds.jwt, new TextEncoder().encode(creds.seed)),
    });
    this.connections.push(nc);
    return nc;
  }

  /** Revokes a user's JWTs issued before now and pushes the account JWT to every server. */
  async revoke(userPublicKey: string): Promise<void> {
    this.revocations = { ...this.revocations, [userPublicKey]: Math.floor(Date.now() / 1000) + 1 };
    await this.pushAccount(this.revocations);
  }

  async pushAccount(revocations: Revocations): Promise<void> {
    const chain = await signTrustChain(this.secrets.operator, revocations);
    const sys = await this.system();
    await sys.request(`$SYS.REQ.ACCOUNT.${chain.account}.CLAIMS.UPDATE`, chain.accountJwt, {
      timeout: 5_000,
    });
    await sys.close();
  }

  private logText(server: number): string {
    const n = this.servers.nodes[server];
    if (!n) throw new Error(`no server ${server}`);
    try {
      return readFileSync(join(n.dir, 'nats-server.log'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw e;
    }
  }

  /** Where server `server`'s log ends now: give it to `logged` to look only at what comes after. */
  logMark(server = 0): number {
    return Buffer.byteLength(this.logText(server));
  }

  /**
   * The first line server `server` logged after `mark` that matches `pattern`, once it is there;
   * throws after `ms` with what was logged (why the server refused a client, for instance).
   */
  async logged(pattern: RegExp, mark: number, o: { server?: number; ms?: number } = {}): Promise<string> {
    const deadline = Date.now() + (o.ms ?? 3_000);
    for (;;) {
      const since = Buffer.from(this.logText(o.server ?? 0))
        .subarray(mark)
        .toString('utf8');
      const line = since.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (Date.now() > deadline)
        throw new Error(
          `nats-server ${o.server ?? 0} logged no line matching ${String(pattern)}; it logged:\n${since}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.close().catch(() => undefined)));
    await this.servers.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
