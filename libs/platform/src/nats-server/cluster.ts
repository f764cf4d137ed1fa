import { join } from 'node:path';
import { signTrustChain, type Revocations } from '@cps/bus';
import type { KeyPair } from '@cps/core';
import type { PlatformSecrets } from '../trust.js';
import { findNatsServer } from './binary.js';
import { writeServerFiles } from './server-files.js';
import { freePort } from './ports.js';
import { AddressInUseError, NatsServerProcess } from './process.js';

export interface NatsNodeSpec {
  readonly name: string;
  readonly dir: string;
  /** The address it listens on for clients. */
  readonly host: string;
  readonly port: number;
  /** The HTTP monitoring port (loopback only); none when the servers run without one. */
  readonly monitorPort?: number;
  readonly clusterPort?: number;
  readonly configFile: string;
}

export interface StartServersOptions {
  readonly dir: string;
  readonly secrets: PlatformSecrets;
  /** 1 for a single server, 3 (or more) for a JetStream cluster. */
  readonly size?: number;
  readonly serverKey: KeyPair;
  readonly revocations?: Revocations;
  readonly binary?: string;
  readonly detached?: boolean;
  readonly now?: Date;
  /** Fixed client port of the first server (the platform's well-known URL); random otherwise. */
  readonly port?: number;
  /**
   * The one address the servers listen on for clients, in their certificates too: 127.0.0.1 by
   * default; a host-mode platform's address, which its nodes reach (never `0.0.0.0`).
   */
  readonly host?: string;
  /**
   * Whether each server has an HTTP monitoring port (default true). It answers anyone who can
   * reach it, credentials or not, with every connection's identity: off where workloads run on
   * the same host (the embedded platform). Without it a server is ready once it says so.
   */
  readonly monitoring?: boolean;
}

/**
 * Writes the configuration of `size` servers (mTLS, operator mode, JetStream, TLS routes) under
 * `dir`, and starts them. Keys of runtime files are 0600. Retries with other ports on EADDRINUSE.
 */
export class NatsServers {
  private constructor(
    readonly nodes: NatsNodeSpec[],
    readonly processes: NatsServerProcess[],
    private readonly binary: string,
    private readonly detached: boolean,
  ) {}

  get urls(): string[] {
    return this.nodes.map((n) => `tls://${n.host}:${n.port}`);
  }

  static async start(o: StartServersOptions): Promise<NatsServers> {
    const binary = o.binary ?? findNatsServer();
    for (let attempt = 0; ; attempt++) {
      const nodes = await NatsServers.write(o, attempt === 0 ? o.port : undefined);
      const started: NatsServerProcess[] = [];
      try {
        const ps = await Promise.all(
          nodes.map((n) =>
            NatsServers.spawn(binary, n, o.detached ?? false).then((p) => (started.push(p), p)),
          ),
        );
        return new NatsServers(nodes, ps, binary, o.detached ?? false);
      } catch (e) {
        await Promise.all(started.map((p) => p.kill()));
        if (!(e instanceof AddressInUseError) || attempt >= 5 || o.port !== undefined) throw e;
      }
    }
  }

  private static spawn(binary: string, n: NatsNodeSpec, detached: boolean): Promise<NatsServerProcess> {
    return NatsServerProcess.start({
      binary,
      configFile: n.configFile,
      host: n.host,
      port: n.port,
      ...(n.monitorPort === undefined ? {} : { monitorPort: n.monitorPort }),
      logFile: join(n.dir, 'nats-server.log'),
      detached,
    });
  }

  private static async write(o: StartServersOptions, fixedPort?: number): Promise<NatsNodeSpec[]> {
    const size = o.size ?? 1;
    const now = o.now ?? new Date();
    const chain = await signTrustChain(o.secrets.operator, o.revocations);
    const host = o.host ?? '127.0.0.1';
    const taken = new Set<number>();
    const pick = async (): Promise<number> => {
      const p = await freePort(host, taken);
      taken.add(p);
      return p;
    };
    const specs: NatsNodeSpec[] = [];
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      const dir = join(o.dir, name);
      const port = i === 0 && fixedPort ? fixedPort : await pick();
      specs.push({
        name,
        dir,
        host,
        port,
        ...(o.monitoring === false ? {} : { monitorPort: await pick() }),
        configFile: join(dir, 'server.conf'),
        ...(size > 1 ? { clusterPort: await pick() } : {}),
      });
    }
    for (const s of specs)
      writeServerFiles(
        {
          name: s.name,
          dir: s.dir,
          dataDir: s.dir,
          listen: host,
          hosts: [...new Set(['localhost', '127.0.0.1', host])],
          port: s.port,
          ...(s.monitorPort === undefined ? {} : { monitorPort: s.monitorPort }),
          ...(s.clusterPort
            ? {
                cluster: {
                  port: s.clusterPort,
                  routes: specs.filter((x) => x !== s).map((x) => `tls://${host}:${String(x.clusterPort)}`),
                },
              }
            : {}),
        },
        { secrets: o.secrets, key: o.serverKey, chain, now },
      );
    return specs;
  }

  /** kill -9 (or another signal) of server `i`; it stays down until `restart(i)`. */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.processes[i]?.kill(signal);
  }

  async restart(i: number): Promise<NatsServerProcess> {
    const n = this.nodes[i];
    if (!n) throw new Error(`no server ${i}`);
    await this.processes[i]?.kill();
    const p = await NatsServers.spawn(this.binary, n, this.detached);
    this.processes[i] = p;
    return p;
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}
