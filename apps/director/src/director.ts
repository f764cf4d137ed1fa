import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { generateKeyPairAsync, issueCertificate, type KeyPair } from '@cps/core';
import { Bus, connectBus, type BusAuthority } from '@cps/bus';
import {
  EventCatalog,
  ensureEventStream,
  ensureLogStream,
  ensureSnapshotBucket,
  JetStreamEventStore,
  KvSnapshotStore,
  ObjectStoreProjectionSnapshots,
  ProjectionRunner,
  ProjectionSnapshotter,
  type Position,
} from '@cps/events';
import {
  identityEvents,
  IdentityIssuer,
  IssuedNodeIdentities,
  servicesCertifier,
  type BusIdentity,
  type PlatformSecrets,
} from '@cps/platform';
import { nodeEvents, Provisioner, type BaseCloud, type NodeIdentitySource } from '@cps/clouds';
import { builtinServices, serviceDecider, serviceEvents, ServiceRegistry } from '@cps/services';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import pino, { type Logger } from 'pino';
import { createHttpApp } from './api/http-app.js';
import { serveDashboard } from './api/dashboard-files.js';
import { HttpMetrics } from './api/metrics.js';
import { buildOpenApi } from './api/openapi.js';
import { ApplicationOperations } from './applications/application-operations.js';
import { appEvents } from './applications/app-events.js';
import { Applications } from './applications/applications.js';
import { Aggregates, Names, type DirectorCore } from './core/director-core.js';
import { Directory, type DirectorySnapshot } from './core/directory.js';
import { ensureLeaseStream, Lease } from './core/lease.js';
import { nameDecider, nameEvents } from './core/name-claims.js';
import { Credit } from './credit/credit.js';
import type { Duty, FeatureParts } from './feature.js';
import { allRoutes, builtinFeatures } from './features.js';
import { operationEvents } from './operations/operation-events.js';
import { Operations } from './operations/operations.js';
import { Presence } from './operations/presence.js';
import { retiredIn, withOwnerKeys } from './provisioning/node-identities.js';
import { ServiceOperations } from './services/service-operations.js';
import { Services } from './services/services.js';
import { Supervisor } from './services/supervisor.js';
import { Accounts, type AccountsOptions } from './users/accounts.js';
import { RateLimits } from './users/rate-limits.js';
import { SIGN_IN_LIMITS_TTL_MS } from './users/sign-in-limits.js';
import { UserKeys } from './users/user-keys.js';
import { userEvents } from './users/user-events.js';

export interface DirectorOptions {
  readonly directorId: string;
  readonly natsUrls: readonly string[];
  /** The director's own bus identity. */
  readonly identity: BusIdentity;
  readonly secrets: PlatformSecrets;
  /** Pushes revocations to the NATS servers. */
  readonly authority: BusAuthority;
  readonly clouds: readonly BaseCloud[];
  /**
   * What a node gets to join the bus, from the director's identity issuer (default: a fresh
   * identity file, for clouds on this machine; IaaS clouds get enrollment tokens instead).
   */
  readonly nodeIdentities?: (issuer: IdentityIssuer) => NodeIdentitySource;
  /** HTTPS port (0: any free port). */
  readonly port: number;
  /**
   * The address to listen on (default 127.0.0.1; a container publishes 0.0.0.0 to its own network).
   * A specific address (not a wildcard) is the director's URL and is named in its certificate: where
   * IaaS nodes enroll.
   */
  readonly host?: string;
  readonly accounts?: Partial<AccountsOptions>;
  /** The `admin` password on first start (else one is generated and returned once). */
  readonly adminPassword?: string;
  readonly replicas?: number;
  readonly maxApplicationsPerUser?: number;
  readonly maxArchiveBytes?: number;
  readonly operationTimeoutMs?: number;
  readonly managerReadyTimeoutMs?: number;
  /** How often the leader reconciles clouds with the records (default 10 s). */
  readonly reconcileEveryMs?: number;
  /** Most agent nodes per user (default 20). */
  readonly maxNodesPerUser?: number;
  /** How often the leader charges credit for running nodes (default 60 s). */
  readonly chargeEveryMs?: number;
  /** Length of a leader lease epoch (default 5 s): a dead leader is replaced within about two. */
  readonly leaseEpochMs?: number;
  /**
   * How often the leader snapshots the read model (default 60 s), when at least
   * `readModelSnapshotMinEvents` (default 1,000) commits came since the last one; also when it stops.
   */
  readonly readModelSnapshotEveryMs?: number;
  readonly readModelSnapshotMinEvents?: number;
  readonly log?: Logger;
  readonly version?: string;
  /** The key of the HTTPS certificate (default: a new one at each start). */
  readonly httpsKey?: KeyPair;
  /** The web dashboard's build (a directory with `index.html`), served at `/`; none when absent. */
  readonly dashboard?: string;
}

/**
 * One director: the composition root. Joins the bus with its identity, rebuilds the read model
 * from the event stream, hosts the identity issuer, builds the services its features share and the
 * features (`features.ts`), serves their routes over HTTPS, and runs their singleton duties while it
 * leads. Any number of directors may run against one NATS; they share everything through JetStream.
 */
export class Director {
  private constructor(
    readonly url: string,
    readonly app: NestFastifyApplication,
    readonly bus: Bus,
    readonly core: DirectorCore,
    readonly provisioner: Provisioner,
    readonly accounts: Accounts,
    readonly applications: Applications,
    readonly operations: Operations,
    /** The generated admin password, on the start that created the admin (shown once). */
    readonly adminPassword: string | undefined,
    /** Whether this start created the admin (with `adminPassword` or a generated one). */
    readonly adminCreated: boolean,
    private readonly features: readonly FeatureParts[],
    private readonly readModelSnapshots: ProjectionSnapshotter<DirectorySnapshot>,
    private readonly presence: Presence,
  ) {}

  /** Where the read model's snapshot left off, when this start began from one. */
  get restoredFrom(): Position | undefined {
    return this.readModelSnapshots.restoredFrom;
  }

  /**
   * Saves a snapshot of the read model (when at least `minCommits` commits came since the last one
   * this director saved or started from), so that the next start replays only what follows it.
   * Answers whether it saved one.
   */
  snapshotReadModel(minCommits = 1): Promise<boolean> {
    return this.readModelSnapshots.save(this.core.runner.position, minCommits);
  }

  static async start(o: DirectorOptions): Promise<Director> {
    const log = o.log ?? pino({ level: 'info' });
    const nc = await connectBus({
      servers: [...o.natsUrls],
      tls: o.identity.tls,
      credentials: o.identity.credentials,
      inboxPrefix: o.identity.inboxPrefix,
      name: `director:${o.directorId}`,
    });
    const bus = new Bus(nc);
    const replicas = o.replicas ?? 1;
    await ensureEventStream(nc, { replicas });
    await Promise.all([
      ensureSnapshotBucket(nc, replicas),
      ensureLogStream(nc, { replicas }),
      RateLimits.ensure(nc, SIGN_IN_LIMITS_TTL_MS, replicas),
      UserKeys.ensure(nc, replicas),
      ensureLeaseStream(nc, replicas),
      Presence.ensure(nc, replicas),
    ]);
    // this process says it is alive from now on (a key of its own, not its director id's)
    const presence = new Presence(nc, `${o.directorId}.${randomBytes(4).toString('hex')}`);
    await presence.start();
    // the HTTPS key is made off the event loop while the read model catches up
    const httpsKey = o.httpsKey ?? generateKeyPairAsync();

    const store = new JetStreamEventStore(nc, {
      catalog: new EventCatalog([
        ...identityEvents,
        ...nodeEvents,
        ...serviceEvents,
        ...userEvents,
        ...appEvents,
        ...nameEvents,
        ...operationEvents,
      ]),
    });
    const snapshots = new KvSnapshotStore(nc);
    const metrics = new HttpMetrics();
    const directory = new Directory();
    // the read model starts from its latest snapshot when there is a usable one, then replays the rest
    const readModelSnapshots = new ProjectionSnapshotter(
      new ObjectStoreProjectionSnapshots(nc, { replicas }),
      directory,
      {
        head: () => store.head(),
        onUnreadable: (err) =>
          log.warn({ err }, 'read model snapshot unreadable: replaying the whole stream'),
      },
    );
    const runner = new ProjectionRunner(
      store,
      {
        name: directory.name,
        handle: (e) => {
          metrics.events.inc();
          directory.handle(e);
        },
      },
      readModelSnapshots.checkpoints,
    );
    // the read model catches up while the rest is built and the HTTP app starts (it answers only
    // once caught up: the port is opened after both)
    const caughtUp = runner.start();
    const core: DirectorCore = {
      store,
      directory,
      runner,
      snapshots,
      names: new Names(new Aggregates(store, nameDecider)),
      secrets: o.secrets,
      now: () => new Date(),
      caughtUp: (position) => runner.waitFor(position),
    };

    const issuer = new IdentityIssuer({
      secrets: o.secrets,
      store,
      authority: o.authority,
      retired: retiredIn(directory),
    });
    issuer.serve(bus);
    const userKeys = new UserKeys(nc, o.secrets);
    const accounts = new Accounts(core, new RateLimits(nc), {
      registration: 'admin',
      sessionTtlMs: 12 * 3600_000,
      initialCredit: 50,
      loginAttempts: 10,
      loginWindowMs: 5 * 60_000,
      ...o.accounts,
    });
    const credit = new Credit(core, accounts.users, {
      maxNodesPerUser: o.maxNodesPerUser ?? 20,
      chargeEveryMs: o.chargeEveryMs ?? 60_000,
    });
    // where nodes re-enroll: known once the HTTPS port is open (nodes are started only after)
    const at: { url?: string } = {};
    const base = o.nodeIdentities?.(issuer) ?? new IssuedNodeIdentities(issuer, o.natsUrls, () => at.url);
    const identities: NodeIdentitySource = withOwnerKeys(base, directory, userKeys);
    const registry = new ServiceRegistry([...builtinServices]);
    const provisioner = new Provisioner({
      store,
      clouds: o.clouds,
      identities,
      policy: credit,
      software: (type) => (registry.has(type) ? (registry.get(type).packages ?? []) : []),
      certifier: servicesCertifier(o.secrets),
    });

    const clouds = o.clouds.map((c) => c.name);
    const operations = new Operations(core, presence, log);
    const supervisor = new Supervisor(bus, directory, {
      readyTimeoutMs: o.managerReadyTimeoutMs ?? 30_000,
      cloud: clouds[0] ?? 'local',
    });
    const applications = new Applications(core, { maxApplicationsPerUser: o.maxApplicationsPerUser ?? 50 });
    // the service aggregates the director writes while a service has no manager
    const serviceAggregates = new Aggregates(store, serviceDecider(registry));
    const services = new Services(
      core,
      bus,
      registry,
      supervisor,
      applications,
      serviceAggregates,
      userKeys,
      {
        maxArchiveBytes: o.maxArchiveBytes ?? 256 * 1024 * 1024,
        clouds,
      },
    );
    const serviceOperations = new ServiceOperations(
      core,
      bus,
      supervisor,
      applications,
      serviceAggregates,
      operations,
      { operationTimeoutMs: o.operationTimeoutMs ?? 120_000 },
    );
    const applicationOperations = new ApplicationOperations(
      core,
      applications,
      serviceOperations,
      operations,
    );
    let openapi: Record<string, unknown> | undefined;
    const features = builtinFeatures.map((f) =>
      f.create({
        core,
        bus,
        registry,
        log,
        clouds,
        metrics,
        openapi: () => (openapi ??= buildOpenApi(allRoutes, { version: o.version ?? '0.1.0' })),
        accounts,
        applications,
        applicationOperations,
        services,
        serviceOperations,
        operations,
        provisioner,
        issuer,
        credit,
        every: { reconcileMs: o.reconcileEveryMs ?? 10_000, chargeMs: o.chargeEveryMs ?? 60_000 },
      }),
    );
    operations.register(features.flatMap((f) => f.operations ?? []));

    const reachedAt = !o.host || WILDCARDS.has(o.host) ? '127.0.0.1' : o.host;
    const tls = issueHttpsCert(o.secrets, o.directorId, await httpsKey, reachedAt);
    const app = await createHttpApp({
      controllers: features.flatMap((f) => f.controllers),
      providers: features.flatMap((f) => f.providers),
      authenticator: accounts,
      log,
      metrics,
      tls,
    });
    const fastify = app.getHttpAdapter().getInstance();
    fastify.addContentTypeParser(
      ['application/octet-stream', 'application/gzip', 'application/x-tar', 'application/zip'],
      (_req, payload, done) => done(null, payload),
    );
    // manifests may come as YAML: handed to the route as `{ yaml }`
    fastify.addContentTypeParser(
      ['application/yaml', 'text/yaml'],
      { parseAs: 'string', bodyLimit: 256 * 1024 },
      (_req, body, done) => done(null, { yaml: body as string }),
    );
    if (o.dashboard) serveDashboard(fastify, o.dashboard, log);
    await caughtUp;
    const boot = await accounts.bootstrapAdmin(o.adminPassword);
    await app.listen(o.port, o.host ?? '127.0.0.1');
    const address = fastify.server.address();
    const port = typeof address === 'object' && address ? address.port : o.port;
    at.url = `https://${isIP(reachedAt) === 6 ? `[${reachedAt}]` : reachedAt}:${port}`;
    const director = new Director(
      at.url,
      app,
      bus,
      core,
      provisioner,
      accounts,
      applications,
      operations,
      boot.password,
      boot.created,
      features,
      readModelSnapshots,
      presence,
    );
    if (readModelSnapshots.restoredFrom)
      log.info({ position: readModelSnapshots.restoredFrom }, 'read model restored from its snapshot');
    director.lease = new Lease(nc, {
      name: 'director',
      holder: `director:${o.directorId}`,
      epochMs: o.leaseEpochMs ?? 5_000,
      onChange: (leading) => director.transition(leading, o, log, metrics),
    });
    director.lease.start();
    log.info({ url: director.url, directorId: o.directorId }, 'director ready');
    return director;
  }

  /** True while this director holds the leader lease (and runs the singleton duties). */
  get leading(): boolean {
    return this.duties !== undefined;
  }

  private lease: Lease | undefined;
  private duties: { stop(): Promise<void> } | undefined;
  private transitions: Promise<void> = Promise.resolve();

  /**
   * Leader: the features' singleton duties, in the order of the features (the Provisioner, the
   * reconciler, credit charging, the takeover of operations whose director is gone, ...), and
   * snapshots of the read model.
   */
  private transition(leading: boolean, o: DirectorOptions, log: Logger, metrics: HttpMetrics): void {
    this.transitions = this.transitions.then(async () => {
      if (leading && !this.duties) {
        const duties: Duty[] = [];
        try {
          for (const f of this.features) if (f.leading) duties.push(await f.leading());
        } catch (e) {
          for (const d of duties.reverse()) await d.stop();
          throw e;
        }
        const minEvents = o.readModelSnapshotMinEvents ?? 1_000;
        const snapshotter = setInterval(() => {
          this.snapshotReadModel(minEvents).catch((err: unknown) =>
            log.warn({ err }, 'read model snapshot failed'),
          );
        }, o.readModelSnapshotEveryMs ?? 60_000);
        this.duties = {
          stop: async () => {
            clearInterval(snapshotter);
            for (const d of duties) await d.stop();
          },
        };
        metrics.leader.set(1);
        log.info({ directorId: o.directorId }, 'leading');
      } else if (!leading && this.duties) {
        const d = this.duties;
        this.duties = undefined;
        await d.stop();
        metrics.leader.set(0);
        log.info({ directorId: o.directorId }, 'following');
      }
    });
    // a failed change (the bus down for a moment) is tried again while the lease still says so;
    // once stopping, it is let go
    this.transitions = this.transitions.catch((err: unknown) => {
      if (this.stopping) return;
      log.warn({ err }, 'leadership change failed; trying again');
      setTimeout(() => {
        if (!this.stopping && this.lease?.leading === leading) this.transition(leading, o, log, metrics);
      }, 1_000).unref();
    });
  }

  private stopping = false;

  async stop(): Promise<void> {
    this.stopping = true;
    // the leader leaves a fresh snapshot of the read model behind: the next start replays little
    if (this.duties) await this.snapshotReadModel(1).catch(() => undefined);
    await this.lease?.stop();
    await this.transitions;
    await this.duties?.stop();
    this.duties = undefined;
    for (const f of this.features) await f.stop?.();
    // requests in flight may finish for a grace (their connections then end); a connection still
    // open after it (a client sending its body forever) is cut, before the supervisor's 10 s run out
    const server = this.app.getHttpServer() as { closeAllConnections(): void };
    const grace = setTimeout(() => server.closeAllConnections(), 5_000);
    await this.app.close().finally(() => clearTimeout(grace));
    // what this process left running is now the leader's to finish
    await this.presence.stop();
    await this.core.runner.stop();
    await this.bus.close();
  }
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/**
 * The director's HTTPS certificate, from the platform's bus CA, for localhost, 127.0.0.1 and the
 * address it is reached at.
 */
const issueHttpsCert = (s: PlatformSecrets, directorId: string, key: KeyPair, reachedAt: string) => {
  const named = isIP(reachedAt) === 0 ? { dns: [reachedAt], ip: [] } : { dns: [], ip: [reachedAt] };
  const cert = issueCertificate(s.busCa, {
    identity: { role: 'server', id: `director-${directorId}` },
    usage: 'server',
    publicKeyPem: key.publicKeyPem,
    now: new Date(),
    validForMs: 90 * 24 * 3600_000,
    dnsNames: [...new Set(['localhost', ...named.dns])],
    ipAddresses: [...new Set(['127.0.0.1', ...named.ip])],
  });
  return {
    cert: [cert, s.busCa.certPem].join(''),
    key: key.privateKeyPem,
    ca: [s.userCa.certPem, ...s.userCa.chainPem].join(''),
  };
};
