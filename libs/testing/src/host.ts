import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newSealingKeyMaterial, type Identity } from '@cps/core';
import { Bus, OperatorModeAuthority, type Served } from '@cps/bus';
import {
  claimPlatformAddress,
  LocalCloud,
  nodeEvents,
  ownerTag,
  Provisioner,
  releasePlatformAddress,
  workloadUser,
  type ProvisionPolicy,
} from '@cps/clouds';
import {
  EventCatalog,
  ensureEventStream,
  ensureLogStream,
  ensureSnapshotBucket,
  JetStreamEventStore,
} from '@cps/events';
import { identityEvents, IdentityIssuer, IssuedNodeIdentities, servicesCertifier } from '@cps/platform';
import { TestNats } from './nats.js';

export interface TestHostOptions {
  /** The JS entry a local agent node runs (the built agent runtime). */
  readonly agentEntry: string;
  /** The JS entry a local manager node runs (the built manager runtime). */
  readonly managerEntry?: string;
  /** Extra environment of manager nodes (e.g. shorter timeouts for tests). */
  readonly managerEnv?: Readonly<Record<string, string>>;
  readonly stopGraceMs?: number;
  /** The Provisioner's policy hook (quotas and credit, in the director). */
  readonly policy?: ProvisionPolicy;
  /**
   * Runs the local cloud in host mode (root only): nodes are namespaces with addresses of their own,
   * and nats-server listens on a platform address claimed for this host (released at cleanup).
   */
  readonly hostMode?: boolean;
}

/**
 * Plays the director's part until the director exists: a real nats-server, the identity issuer,
 * the Provisioner with the local cloud (nodes are real agent-runtime processes).
 */
export class TestHost {
  private served: Served | undefined;

  private constructor(
    readonly nats: TestNats,
    readonly bus: Bus,
    readonly issuer: IdentityIssuer,
    readonly provisioner: Provisioner,
    readonly cloud: LocalCloud,
    readonly dir: string,
    private readonly platformTag?: string,
  ) {}

  static async start(o: TestHostOptions): Promise<TestHost> {
    const dir = mkdtempSync(join(tmpdir(), 'cps-host-'));
    const tag = o.hostMode ? ownerTag(dir) : undefined;
    const platform = tag === undefined ? undefined : await claimPlatformAddress(tag);
    const nats = await TestNats.start(platform ? { host: platform.address } : {});
    const nc = await nats.connect({ role: 'director', id: 'd1' });
    await ensureEventStream(nc);
    await ensureSnapshotBucket(nc);
    await ensureLogStream(nc);
    const bus = new Bus(nc);
    const store = new JetStreamEventStore(nc, {
      catalog: new EventCatalog([...identityEvents, ...nodeEvents]),
    });
    const issuer = new IdentityIssuer({
      secrets: nats.secrets,
      store,
      authority: new OperatorModeAuthority(nats.secrets.operator, () => nats.system()),
    });
    issuer.serve(bus);
    const user = workloadUser();
    const cloud = new LocalCloud({
      dir: join(dir, 'cloud'),
      command: (spec) => ({
        command: process.execPath,
        args: [spec.kind === 'manager' && o.managerEntry ? o.managerEntry : o.agentEntry],
      }),
      stopGraceMs: o.stopGraceMs ?? 3_000,
      // nodes' workloads run as the unprivileged workload user when we can switch users
      ...(user && process.getuid?.() === 0 ? { workloadUser: user } : {}),
      ...(platform
        ? { host: { nats: { address: platform.address, port: nats.servers.nodes[0]?.port ?? 0 }, hide: dir } }
        : {}),
    });
    const issued = new IssuedNodeIdentities(issuer, nats.urls);
    const ownerKey = newSealingKeyMaterial();
    const identities = {
      contextualize: async (identity: Identity) => {
        const c = await issued.contextualize(identity);
        // a manager gets its owner's key, as the director gives it (secrets.key in its directory)
        return identity.role === 'manager'
          ? {
              ...c,
              env: { ...c.env, ...o.managerEnv },
              files: { ...c.files, 'secrets.key': ownerKey },
            }
          : c;
      },
    };
    const provisioner = new Provisioner({
      store,
      clouds: [cloud],
      identities,
      certifier: servicesCertifier(nats.secrets),
      ...(o.policy ? { policy: o.policy } : {}),
    });
    await provisioner.load();
    const host = new TestHost(nats, bus, issuer, provisioner, cloud, dir, tag);
    await host.serveProvisioner();
    return host;
  }

  /** Stops answering provisioning requests, as while no director leads. */
  async stopProvisioner(): Promise<void> {
    await this.served?.stop();
    this.served = undefined;
  }

  /** Answers provisioning requests (again). */
  async serveProvisioner(): Promise<void> {
    this.served ??= this.provisioner.serve(this.bus);
    await this.bus.flush();
  }

  async cleanup(): Promise<void> {
    // no node may be created while the nodes are destroyed (a manager replacing one would leave it behind)
    await this.stopProvisioner();
    for (const n of await this.cloud.list()) await this.cloud.destroy(n.nodeId).catch(() => undefined);
    await this.nats.cleanup();
    if (this.platformTag !== undefined) await releasePlatformAddress(this.platformTag);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
