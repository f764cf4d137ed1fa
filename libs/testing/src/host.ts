import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '@cps/core';
import { Bus, OperatorModeAuthority, type Served } from '@cps/bus';
import { LocalCloud, nodeEvents, Provisioner, workloadUser, type ProvisionPolicy } from '@cps/clouds';
import {
  EventCatalog,
  ensureEventStream,
  ensureLogStream,
  ensureSnapshotBucket,
  JetStreamEventStore,
} from '@cps/events';
import { identityEvents, IdentityIssuer, IssuedNodeIdentities } from '@cps/platform';
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
  ) {}

  static async start(o: TestHostOptions): Promise<TestHost> {
    const nats = await TestNats.start();
    const dir = mkdtempSync(join(tmpdir(), 'cps-host-'));
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
    });
    const issued = new IssuedNodeIdentities(issuer, nats.urls);
    const identities = {
      contextualize: async (identity: Identity) => {
        const c = await issued.contextualize(identity);
        return identity.role === 'manager' ? { ...c, env: { ...c.env, ...o.managerEnv } } : c;
      },
    };
    const provisioner = new Provisioner({
      store,
      clouds: [cloud],
      identities,
      ...(o.policy ? { policy: o.policy } : {}),
    });
    await provisioner.load();
    const host = new TestHost(nats, bus, issuer, provisioner, cloud, dir);
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
    for (const n of await this.cloud.list()) await this.cloud.destroy(n.nodeId).catch(() => undefined);
    await this.nats.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
