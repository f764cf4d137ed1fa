import type { z } from 'zod';
import { linkNameOf, mountsOverlap } from './volume-links.js';
import {
  aggregateIds,
  ConflictError,
  CpsError,
  isCpsError,
  NotFoundError,
  ValidationError,
  issuesFromZod,
  sameJson,
  seal,
  type Issue,
} from '@cps/core';
import {
  subjects,
  untilServed,
  type Bus,
  type CommandDefinition,
  addNodes,
  callMethod,
  getHistory,
  getLogs,
  getNodeInfo,
  getServiceInfo,
  listNodes,
  removeNodes,
  setArchive,
  setLinks,
  linkCredentials,
} from '@cps/bus';
import { ArchiveStore, ensureDataBucket } from '@cps/archives';
import {
  mapSecrets,
  strictSettings,
  serviceHistory,
  type AnyManagerMethod,
  type LinkView,
  type ServiceCommand,
  type ServiceEvent,
  type ServiceRegistry,
  type ServiceState,
  type VolumeMount,
} from '@cps/services';
import type { Principal } from '../api/request.js';
import { hashId, type Actor, type Aggregates, type DirectorCore } from '../core/director-core.js';
import { nodesPerRole, type ApplicationView, type ServiceView } from '../core/directory.js';
import type { Applications } from '../applications/applications.js';
import { serviceSecretContext, type UserKeys } from '../users/user-keys.js';
import { parseMethodArgs } from './method-args.js';
import { ServiceArchives } from './service-archives.js';
import type { Supervisor } from './supervisor.js';

/** How long a question to a service's manager waits for a manager being brought back. */
const MANAGER_RETURN_MS = 15_000;
/** How long a manager may take to answer. */
const ANSWER_MS = 30_000;
const READ_ATTEMPT_MS = 5_000;
/** Questions the manager answers from its own state: one not answered in READ_ATTEMPT_MS is asked again. */
const READS: ReadonlySet<CommandDefinition> = new Set([listNodes, getNodeInfo, getServiceInfo, getHistory]);

/** The id of the service an `addService` with this request id makes (the same id on a retry). */
export const serviceIdOf = (requestId: string): string => hashId('s', requestId);

export interface ServicesOptions {
  readonly maxArchiveBytes: number;
  readonly clouds: readonly string[];
}

/**
 * The services of applications: adding and renaming them, the service types, and the gateway to each
 * service's manager (clients never reach managers themselves): nodes, logs, history, method calls,
 * code archives. Starting, stopping and removing one are operations (`ServiceOperations`).
 */
export class Services {
  constructor(
    private readonly core: DirectorCore,
    private readonly bus: Bus,
    private readonly registry: ServiceRegistry,
    private readonly supervisor: Supervisor,
    private readonly applications: Applications,
    /** The service aggregates, written here only before a manager runs (see docs/architecture.md). */
    private readonly aggregates: Aggregates<ServiceCommand, ServiceEvent, ServiceState>,
    private readonly userKeys: UserKeys,
    private readonly o: ServicesOptions,
  ) {
    this.archives = new ServiceArchives({
      core,
      bus,
      supervisor,
      applications,
      aggregates,
      askSetArchive: (app, svc, version, requestId) => this.ask(app, svc, setArchive, { version }, requestId),
      maxArchiveBytes: o.maxArchiveBytes,
      checkArchive: (type, nearRoot) => this.registry.get(type).checkArchive?.(nearRoot),
    });
  }

  /** The versions of each service's code: upload, list, download, enable, delete. */
  readonly archives: ServiceArchives;

  /** The registry as the API shows it (built once: the registry does not change while running). */
  serviceTypes() {
    this.types ??= this.describeTypes();
    return this.types;
  }

  private types: ReturnType<Services['describeTypes']> | undefined;

  private describeTypes() {
    return this.registry.types().map((t) => {
      const d = this.registry.get(t);
      const info = this.registry.describe(t);
      return {
        type: t,
        description: d.description,
        roles: [...d.roles],
        defaultRoles: d.defaultRoles as Record<string, number>,
        configSchema: info.config,
        manifestKeys: info.manifestKeys,
        methods: info.manager.map((m) => ({
          name: m.name,
          description: m.description,
          args: m.args,
          result: m.result,
        })),
      };
    });
  }

  /** The services of one of the caller's applications, in order. */
  list(p: Principal, appRef: string): ServiceView[] {
    return this.applications.servicesOf(this.applications.app(p, appRef));
  }

  /** One service of one of the caller's applications, by id or name. */
  get(p: Principal, appRef: string, svcRef: string): ServiceView {
    return this.applications.service(p, appRef, svcRef).svc;
  }

  serviceDto(s: ServiceView) {
    return {
      serviceId: s.serviceId,
      appId: s.appId,
      name: s.name,
      type: s.type,
      cloud: s.cloud,
      state: s.state,
      nodes: nodesPerRole(s),
      managerRunning: this.supervisor.managerOf(s.serviceId) !== undefined,
      ...(s.archive ? { archive: s.archive } : {}),
      endpoints: s.endpoints ?? {},
      // a link's credentials (sealed in the events) are its nodes' business only
      links: Object.fromEntries(
        Object.entries(s.links ?? {}).map(([name, { credentials: _sealed, ...link }]) => [name, link]),
      ),
    };
  }

  async addService(
    p: Principal,
    appRef: string,
    r: {
      type: string;
      name: string;
      cloud: string;
      config: Record<string, unknown>;
      /** Link name -> a service of the same application, by id or name. */
      links?: Record<string, string>;
      /** Type-specific manifest keys (from a manifest entry). */
      manifest?: Record<string, unknown>;
      /** Volumes of storage services of the same application (id or name) its nodes mount. */
      volumes?: readonly { storage: string; volume: string; mount: string }[];
    },
    m: Actor,
  ): Promise<ServiceView> {
    const app = this.applications.app(p, appRef);
    const { links, volumes } = this.resolveVolumes(
      p,
      app,
      this.resolveLinks(p, app, r.links ?? {}),
      r.volumes ?? [],
    );
    if (!this.registry.has(r.type))
      throw new ValidationError(`unknown service type ${r.type}`, [
        {
          path: '$.type',
          code: 'unknown_service_type',
          message: `types: ${this.registry.types().join(', ')}`,
        },
      ]);
    if (!this.o.clouds.includes(r.cloud))
      throw new ValidationError(`unknown cloud ${r.cloud}`, [
        { path: '$.cloud', code: 'unknown_cloud', message: `clouds: ${this.o.clouds.join(', ')}` },
      ]);
    const def = this.registry.get(r.type);
    const parsed = strictSettings(def.configSchema).safeParse(r.config);
    if (!parsed.success)
      throw new ValidationError(
        'invalid service config',
        issuesFromZod(parsed.error).map((i) => ({ ...i, path: i.path.replace(/^\$/, '$.config') })),
      );
    const serviceId = serviceIdOf(m.requestId);
    // secret fields are sealed with the owner's key before any event holds them
    const key = await this.userKeys.key(app.owner);
    const sealed = (v: unknown) => seal(key, String(v), serviceSecretContext(serviceId));
    const config = mapSecrets(def.configSchema, parsed.data, sealed);
    const keys = def.manifestKeys.strict().safeParse(r.manifest ?? {});
    if (!keys.success) throw new ValidationError('invalid manifest keys', issuesFromZod(keys.error));
    const manifest = mapSecrets(def.manifestKeys, keys.data, sealed) as Record<string, unknown>;
    const born = {
      type: r.type,
      config,
      ...(Object.keys(links).length > 0 ? { links } : {}),
      ...(Object.keys(manifest).length > 0 ? { manifest } : {}),
      ...(volumes.length > 0 ? { volumes } : {}),
    };
    // the application decides on the name, the quota and the links first: a refused service leaves no record
    await this.applications.apps.run(
      aggregateIds.app(app.appId),
      'AddService',
      { serviceId, name: r.name, cloud: r.cloud, ...born },
      m,
    );
    const res = await this.aggregates.run(
      aggregateIds.service(app.appId, serviceId),
      'Create',
      { appId: app.appId, serviceId, ...born },
      m,
    );
    await this.core.caughtUp(res.position);
    return this.applications.service(p, app.appId, serviceId).svc;
  }

  /**
   * Link names to the services of `app` they name (by id or name). A service of another application
   * is not one of these: links stay within an application.
   */
  private resolveLinks(
    p: Principal,
    app: ApplicationView,
    links: Readonly<Record<string, string>>,
  ): Record<string, string> {
    const issues: Issue[] = [];
    const resolved: Record<string, string> = {};
    for (const [name, ref] of Object.entries(links)) {
      try {
        resolved[name] = this.applications.service(p, app.appId, ref).svc.serviceId;
      } catch (e) {
        if (!isCpsError(e) || e.code !== 'not_found') throw e;
        issues.push({
          path: `$.links.${name}`,
          code: 'unknown_service',
          message: `no service ${ref} in application ${app.name} (links stay within one application)`,
        });
      }
    }
    if (issues.length > 0)
      throw new ValidationError('links to services this application does not have', issues);
    return resolved;
  }

  /**
   * The volumes a new service mounts, each by the link to its storage service: the link the request
   * gives to that service, else one made, named after it. Refused, each at its path: a storage that
   * is not a service of this application or not of a storage type, a volume mounted twice, and mount
   * points that are the same or one inside another.
   */
  private resolveVolumes(
    p: Principal,
    app: ApplicationView,
    links: Readonly<Record<string, string>>,
    asked: readonly { storage: string; volume: string; mount: string }[],
  ): { links: Record<string, string>; volumes: VolumeMount[] } {
    const issues: Issue[] = [];
    const all: Record<string, string> = { ...links };
    const volumes: VolumeMount[] = [];
    asked.forEach((v, i) => {
      let storage: ServiceView;
      try {
        storage = this.applications.service(p, app.appId, v.storage).svc;
      } catch (e) {
        if (!isCpsError(e) || e.code !== 'not_found') throw e;
        issues.push({
          path: `$.volumes[${i}].storage`,
          code: 'unknown_service',
          message: `no service ${v.storage} in application ${app.name}`,
        });
        return;
      }
      if (!this.registry.has(storage.type) || !this.registry.get(storage.type).volumes) {
        issues.push({
          path: `$.volumes[${i}].storage`,
          code: 'not_storage',
          message: `${storage.name} is a ${storage.type} service: volumes come from a storage service`,
        });
        return;
      }
      let link = Object.entries(all).find(([, id]) => id === storage.serviceId)?.[0];
      if (link === undefined) {
        link = linkNameOf(storage.name, all);
        all[link] = storage.serviceId;
      }
      const clash = volumes.findIndex((w) => mountsOverlap(w.mount, v.mount));
      if (clash >= 0)
        issues.push({
          path: `$.volumes[${i}].mount`,
          code: 'overlapping_mount',
          message: `${v.mount} and ${volumes[clash]!.mount} (volumes[${clash}]): one mount point each, none inside another`,
        });
      else if (volumes.some((w) => w.link === link && w.volume === v.volume))
        issues.push({
          path: `$.volumes[${i}].volume`,
          code: 'duplicate_volume',
          message: `${v.volume} of ${storage.name} is mounted once`,
        });
      else volumes.push({ link, volume: v.volume, mount: v.mount });
    });
    if (issues.length > 0) throw new ValidationError('volumes this service cannot mount', issues);
    return { links: all, volumes };
  }

  /**
   * The leader's duty: every service whose links no longer show what the services it links expose
   * (an endpoint moved: a failover, a restart elsewhere) is told by its manager (`set_links`), which
   * configures its nodes again. Runs every `everyMs`; a manager that does not run yet is told later.
   */
  linkKeeper(everyMs = 1_000): { stop(): void } {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      void this.syncLinks()
        .catch(() => undefined)
        .finally(() => (running = false));
    }, everyMs);
    return { stop: () => clearInterval(timer) };
  }

  /**
   * Stores the file a manifest key of the service named (its type's `manifestFiles`: a database's
   * `Dump`) in the service's objects as `manifest-<key>`, once; undefined when it is there already.
   */
  async storeManifestFile(
    serviceId: string,
    key: string,
    download: () => Promise<Uint8Array>,
  ): Promise<{ size: number } | undefined> {
    await ensureDataBucket(this.bus.connection, serviceId);
    const store = new ArchiveStore(this.bus.connection, { serviceId, data: true, chunkBytes: 512 * 1024 });
    const name = `manifest-${key.toLowerCase()}`;
    if (await store.info(name)) return undefined;
    const bytes = await download();
    return store.put(name, bytes, { maxBytes: Math.max(bytes.length, 1) });
  }

  private async syncLinks(): Promise<void> {
    const services = this.core.directory.services;
    const withoutCredentials = (links: Record<string, LinkView>) =>
      Object.fromEntries(Object.entries(links).map(([n, { credentials: _c, ...l }]) => [n, l]));
    for (const s of services.values()) {
      if (s.removed || !s.links || Object.keys(s.links).length === 0) continue;
      const wanted: Record<string, LinkView> = {};
      let credentialsMissing = false;
      for (const [name, link] of Object.entries(s.links)) {
        const target = services.get(link.serviceId);
        wanted[name] = {
          serviceId: link.serviceId,
          ...(target?.type ? { type: target.type } : {}),
          endpoints: target?.endpoints ?? {},
        };
        if (
          target?.type &&
          this.registry.has(target.type) &&
          this.registry.get(target.type).links &&
          !link.credentials
        )
          credentialsMissing = true;
      }
      const current = withoutCredentials(s.links);
      if ((sameJson(wanted, current) && !credentialsMissing) || !this.supervisor.managerOf(s.serviceId))
        continue;
      try {
        // the credentials a linked service makes for this one, once (the linking manager keeps them)
        for (const [name, link] of Object.entries(wanted)) {
          const target = services.get(link.serviceId);
          if (s.links[name]?.credentials || !target?.type || !this.registry.has(target.type)) continue;
          if (!this.registry.get(target.type).links || !this.supervisor.managerOf(target.serviceId)) continue;
          const r = await this.bus.request(
            subjects.manager(target.appId, target.serviceId),
            linkCredentials,
            { serviceId: s.serviceId, name: s.name },
            { timeoutMs: 30_000 },
          );
          wanted[name] = { ...link, credentials: r.credentials };
        }
        await this.bus.request(
          subjects.manager(s.appId, s.serviceId),
          setLinks,
          { links: wanted },
          { timeoutMs: 5_000 },
        );
      } catch {
        // asked again at the next round
      }
    }
  }

  async renameService(
    p: Principal,
    appRef: string,
    svcRef: string,
    name: string,
    m: Actor,
  ): Promise<ServiceView> {
    const { app, svc } = this.applications.service(p, appRef, svcRef);
    const res = await this.applications.apps.run(
      aggregateIds.app(app.appId),
      'RenameService',
      { serviceId: svc.serviceId, name },
      m,
    );
    await this.core.caughtUp(res.position);
    return this.applications.service(p, app.appId, svc.serviceId).svc;
  }

  /**
   * Asks the service's manager (it must be running). A manager that nobody serves is being brought
   * back (the platform restarted, or the process died and the reconciler re-creates it): the
   * question waits for it, up to `MANAGER_RETURN_MS`. Nothing was delivered, so asking again is safe.
   */
  async ask<C extends CommandDefinition>(
    app: ApplicationView,
    svc: ServiceView,
    c: C,
    args: z.input<C['request']>,
    requestId?: string,
  ): Promise<z.output<C['reply']>> {
    if (!this.supervisor.managerOf(svc.serviceId))
      throw new ConflictError(`service ${svc.name} is not started (state ${svc.state})`);
    const read = READS.has(c);
    const ask = () =>
      this.bus.request(subjects.manager(app.appId, svc.serviceId), c, args, {
        timeoutMs: read ? READ_ATTEMPT_MS : ANSWER_MS,
        ...(requestId ? { requestId } : {}),
      });
    const served = () => untilServed(ask, { forMs: MANAGER_RETURN_MS });
    // a read the manager took and died with is lost: it is asked again, soon, of the next one
    const answered = read
      ? () => untilServed(served, { forMs: ANSWER_MS, everyMs: 0, on: ['timeout'] })
      : served;
    return answered().catch((e: unknown) => {
      if (!(e instanceof CpsError && e.code === 'unavailable')) throw e;
      throw new CpsError(
        'unavailable',
        `the manager of service ${svc.name} does not answer (it may be restarting): try again shortly`,
        [],
        { cause: e },
      );
    });
  }

  nodes(p: Principal, a: string, s: string) {
    const { app, svc } = this.applications.service(p, a, s);
    return this.ask(app, svc, listNodes, {});
  }

  node(p: Principal, a: string, s: string, nodeId: string) {
    const { app, svc } = this.applications.service(p, a, s);
    return this.ask(app, svc, getNodeInfo, { nodeId });
  }

  async addNodes(
    p: Principal,
    a: string,
    s: string,
    r: { nodes: Record<string, number>; cloud: string },
    m: Actor,
  ) {
    const { app, svc } = this.applications.service(p, a, s);
    this.applications.requireCredit(app);
    if (!this.o.clouds.includes(r.cloud))
      throw new ValidationError(`unknown cloud ${r.cloud}`, [
        { path: '$.cloud', code: 'unknown_cloud', message: `clouds: ${this.o.clouds.join(', ')}` },
      ]);
    return this.managerOperation(app, svc, addNodes, r, m.requestId);
  }

  async removeNodes(
    p: Principal,
    a: string,
    s: string,
    r: { nodeIds: string[] } | { nodes: Record<string, number> },
    m: Actor,
  ) {
    const { app, svc } = this.applications.service(p, a, s);
    return this.managerOperation(app, svc, removeNodes, r, m.requestId);
  }

  /**
   * Asks the manager for an operation, and answers once this director's read model holds it: the
   * manager recorded it before it replied, and the caller reads the operation here next.
   */
  private async managerOperation<C extends CommandDefinition>(
    app: ApplicationView,
    svc: ServiceView,
    c: C,
    args: z.input<C['request']>,
    requestId: string,
  ): Promise<z.output<C['reply']>> {
    const accepted = await this.ask(app, svc, c, args, requestId);
    await this.core.caughtUp(await this.core.store.head());
    return accepted;
  }

  async logs(
    p: Principal,
    a: string,
    s: string,
    q: { node?: string | undefined; workload?: string | undefined; tailBytes: number },
  ) {
    const { app, svc } = this.applications.service(p, a, s);
    return this.ask(app, svc, getLogs, {
      tailBytes: q.tailBytes,
      ...(q.node ? { nodeId: q.node } : {}),
      ...(q.workload ? { workload: q.workload } : {}),
    });
  }

  /** Each service's manager log (services without a running manager answer an empty text). */
  async applicationLogs(p: Principal, ref: string, tailBytes: number) {
    const app = this.applications.app(p, ref);
    const services = await Promise.all(
      this.applications.servicesOf(app).map(async (s) => ({
        serviceId: s.serviceId,
        name: s.name,
        state: s.state,
        text: this.supervisor.managerOf(s.serviceId)
          ? (await this.ask(app, s, getLogs, { tailBytes }).catch(() => ({ text: '' }))).text
          : '',
      })),
    );
    return { services };
  }

  /** State changes and operations, from the service's events (no manager needed). */
  async history(p: Principal, a: string, s: string) {
    const { app, svc } = this.applications.service(p, a, s);
    if (this.supervisor.managerOf(svc.serviceId)) return this.ask(app, svc, getHistory, { limit: 1000 });
    const { events } = await this.core.store.readAggregate(aggregateIds.service(app.appId, svc.serviceId));
    return serviceHistory(events);
  }

  async call(p: Principal, a: string, s: string, method: string, args: unknown, m: Actor) {
    const { app, svc } = this.applications.service(p, a, s);
    const def = this.registry.get(svc.type);
    const mm: AnyManagerMethod | undefined = def.manager.methods[method];
    if (!mm) throw new NotFoundError(`${svc.type} has no method ${method}`);
    const parsed = parseMethodArgs(method, mm.args as z.ZodType, args ?? {});
    return this.ask(app, svc, callMethod, { method, args: parsed }, m.requestId);
  }

  /** Stores an upload as a new version of the service's code, current at once (see {@link ServiceArchives.upload}). */
  uploadArchive(p: Principal, a: string, s: string, body: unknown, m: Actor) {
    return this.archives.upload(p, a, s, body, m);
  }
}
