import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { ConflictError, CpsError, NotFoundError, ValidationError, issuesFromZod, seal } from '@cps/core';
import { subjects, untilServed, type Bus, type CommandDefinition } from '@cps/bus';
import { ArchiveStore, deleteArchiveBucket, ensureArchiveBucket, inspectArchive } from '@cps/archives';
import {
  addNodes,
  callMethod,
  getHistory,
  getLogs,
  getNodeInfo,
  getServiceInfo,
  listNodes,
  removeNodes,
  setArchive,
  shutdownService,
  startupService,
  mapSecrets,
  strictSettings,
  serviceHistory,
  type AnyManagerMethod,
  type ServiceCommand,
  type ServiceEvent,
  type ServiceRegistry,
  type ServiceState,
} from '@cps/services';
import { serviceSecretContext, type UserKeys } from '../users/user-keys.js';
import type { Principal } from '../api/request.js';
import { hashId, type Actor, type Aggregates, type DirectorCore } from '../core/director-core.js';
import type { AppCursor } from '../api/schemas.js';
import type { ApplicationView, ServiceView } from '../core/directory.js';
import type { Supervisor } from '../supervision/supervisor.js';
import { defineOperation, type RunningOperation } from '../operations/operation.js';
import type { Operations } from '../operations/operations.js';
import { parseMethodArgs } from './method-args.js';
import { withUploadedFile } from './archive-upload.js';

/** How long a question to a service's manager waits for a manager being brought back. */
const MANAGER_RETURN_MS = 15_000;
/** How long a manager may take to answer. */
const ANSWER_MS = 30_000;
const READ_ATTEMPT_MS = 5_000;
/** Questions the manager answers from its own state: one not answered in READ_ATTEMPT_MS is asked again. */
const READS: ReadonlySet<CommandDefinition> = new Set([listNodes, getNodeInfo, getServiceInfo, getHistory]);

/** The id of the service an `addService` with this request id makes (the same id on a retry). */
export const serviceIdOf = (requestId: string): string => hashId('s', requestId);

export interface ApplicationsOptions {
  readonly maxApplicationsPerUser: number;
  readonly maxArchiveBytes: number;
  readonly clouds: readonly string[];
  readonly operationTimeoutMs: number;
}

/**
 * Applications and their services: the director's side (names, ownership, the order of services)
 * and the gateway to each service's manager (clients never reach managers themselves). Long steps
 * are operations: recorded, answered with 202, carried on in the background and after a restart.
 */
export class Applications {
  constructor(
    private readonly core: DirectorCore,
    private readonly bus: Bus,
    private readonly registry: ServiceRegistry,
    private readonly supervisor: Supervisor,
    private readonly services: Aggregates<ServiceCommand, ServiceEvent, ServiceState>,
    private readonly o: ApplicationsOptions,
    private readonly userKeys: UserKeys,
    private readonly operations: Operations,
  ) {}

  // ---- reads

  private owner(p: Principal): string | undefined {
    return p.role === 'admin' ? undefined : p.userId;
  }

  /** An application the caller owns (admins: any), by id or name; others' answer 404. */
  app(p: Principal, ref: string): ApplicationView {
    const a = this.core.directory.appOf(this.owner(p), ref) ?? this.core.directory.appOf(p.userId, ref);
    if (!a) throw new NotFoundError(`no application ${ref}`);
    return a;
  }

  service(p: Principal, appRef: string, svcRef: string): { app: ApplicationView; svc: ServiceView } {
    const app = this.app(p, appRef);
    const list = this.core.directory.servicesOf(app);
    const svc = list.find((s) => s.serviceId === svcRef) ?? list.find((s) => s.name === svcRef);
    if (!svc) throw new NotFoundError(`no service ${svcRef} in ${app.name}`);
    return { app, svc };
  }

  list(p: Principal): ApplicationView[] {
    return this.core.directory.appsOf(this.owner(p));
  }

  /** One page of the caller's applications, ordered by name then id, after `after`. */
  page(
    p: Principal,
    q: { limit: number; after?: AppCursor | undefined },
  ): { items: ApplicationView[]; next?: AppCursor } {
    const order = (a: AppCursor, b: AppCursor) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : a.appId < b.appId ? -1 : a.appId > b.appId ? 1 : 0;
    const all = this.list(p).sort(order);
    const after = q.after;
    const start = after ? all.findIndex((a) => order(a, after) > 0) : 0;
    const items = start < 0 ? [] : all.slice(start, start + q.limit);
    const last = items.at(-1);
    return start >= 0 && start + q.limit < all.length && last
      ? { items, next: { name: last.name, appId: last.appId } }
      : { items };
  }

  servicesOf(app: ApplicationView): ServiceView[] {
    return this.core.directory.servicesOf(app);
  }

  appDto(a: ApplicationView) {
    return {
      appId: a.appId,
      name: a.name,
      description: a.description,
      owner: a.owner,
      createdAt: a.createdAt,
      services: this.core.directory
        .servicesOf(a)
        .map((s) => ({ serviceId: s.serviceId, name: s.name, type: s.type, cloud: s.cloud, state: s.state })),
    };
  }

  serviceDto(s: ServiceView) {
    const nodes: Record<string, number> = {};
    for (const n of Object.values(s.nodes))
      nodes[n['role'] as string] = (nodes[n['role'] as string] ?? 0) + 1;
    return {
      serviceId: s.serviceId,
      appId: s.appId,
      name: s.name,
      type: s.type,
      cloud: s.cloud,
      state: s.state,
      nodes,
      managerRunning: this.supervisor.managerOf(s.serviceId) !== undefined,
      ...(s.archive ? { archive: s.archive } : {}),
    };
  }

  // ---- applications

  async create(p: Principal, r: { name: string; description: string }, m: Actor): Promise<ApplicationView> {
    // admins are not held to the per-user quota
    if (p.role !== 'admin' && this.list(p).length >= this.o.maxApplicationsPerUser)
      throw new CpsError('quota_exceeded', `at most ${this.o.maxApplicationsPerUser} applications per user`);
    const appId = hashId('a', m.requestId);
    await this.core.names.claim(`app.${p.userId}`, r.name, appId, `${m.requestId}:name`);
    try {
      const res = await this.core.apps.run(
        `app.${appId}`,
        'Create',
        { appId, owner: p.userId, name: r.name, description: r.description },
        m,
      );
      await this.core.caughtUp(res.position);
    } catch (e) {
      await this.core.names
        .release(`app.${p.userId}`, r.name, appId, `${m.requestId}:release`)
        .catch(() => undefined);
      throw e;
    }
    return this.app(p, appId);
  }

  async update(
    p: Principal,
    ref: string,
    r: { name?: string | undefined; description?: string | undefined },
    m: Actor,
  ): Promise<ApplicationView> {
    const a = this.app(p, ref);
    const rename = r.name !== undefined && r.name !== a.name;
    if (rename)
      await this.core.names.claim(`app.${a.owner}`, r.name as string, a.appId, `${m.requestId}:name`);
    const old = a.name;
    const res = await this.core.apps.run(
      `app.${a.appId}`,
      'Update',
      {
        ...(r.name !== undefined ? { name: r.name } : {}),
        ...(r.description !== undefined ? { description: r.description } : {}),
      },
      m,
    );
    if (rename) await this.core.names.release(`app.${a.owner}`, old, a.appId, `${m.requestId}:release`);
    await this.core.caughtUp(res.position);
    return this.app(p, a.appId);
  }

  // ---- services

  async addService(
    p: Principal,
    appRef: string,
    r: { type: string; name: string; cloud: string; config: Record<string, unknown> },
    m: Actor,
  ): Promise<ServiceView> {
    const app = this.app(p, appRef);
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
    const config = mapSecrets(def.configSchema, parsed.data, (v) =>
      seal(key, String(v), serviceSecretContext(serviceId)),
    );
    // the application decides on the name (and the quota) first: a refused service leaves no record
    await this.core.apps.run(
      `app.${app.appId}`,
      'AddService',
      { serviceId, name: r.name, type: r.type, cloud: r.cloud, config },
      m,
    );
    const res = await this.services.run(
      `svc.${app.appId}.${serviceId}`,
      'Create',
      { appId: app.appId, serviceId, type: r.type, config },
      m,
    );
    await this.core.caughtUp(res.position);
    return this.service(p, app.appId, serviceId).svc;
  }

  /**
   * Creates the aggregate of a service the application has (before any manager exists: its manager
   * finds it at start) unless it exists: `addService` creates it right after the application adds
   * the service, and a start creates it for a service whose creation was cut short in between.
   */
  private async born(appId: string, serviceId: string): Promise<void> {
    const aggregate = `svc.${appId}.${serviceId}`;
    if ((await this.services.state(aggregate)).status !== 'NONE') return;
    const app = await this.core.apps.state(`app.${appId}`);
    const entry = app.status === 'ACTIVE' ? app.services.find((x) => x.serviceId === serviceId) : undefined;
    if (!entry) throw new NotFoundError(`no service ${serviceId}`);
    await this.services
      .run(
        aggregate,
        'Create',
        { appId, serviceId, type: entry.type, config: entry.config },
        { requestId: `${serviceId}:born`, actor: 'director' },
      )
      .catch((e: unknown) => {
        // created meanwhile
        if (!(e instanceof CpsError && e.code === 'conflict')) throw e;
      });
  }

  async renameService(
    p: Principal,
    appRef: string,
    svcRef: string,
    name: string,
    m: Actor,
  ): Promise<ServiceView> {
    const { app, svc } = this.service(p, appRef, svcRef);
    const res = await this.core.apps.run(
      `app.${app.appId}`,
      'RenameService',
      { serviceId: svc.serviceId, name },
      m,
    );
    await this.core.caughtUp(res.position);
    return this.service(p, app.appId, svc.serviceId).svc;
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
    const { app, svc } = this.service(p, a, s);
    return this.ask(app, svc, listNodes, {});
  }

  node(p: Principal, a: string, s: string, nodeId: string) {
    const { app, svc } = this.service(p, a, s);
    return this.ask(app, svc, getNodeInfo, { nodeId });
  }

  async addNodes(
    p: Principal,
    a: string,
    s: string,
    r: { nodes: Record<string, number>; cloud: string },
    m: Actor,
  ) {
    const { app, svc } = this.service(p, a, s);
    this.requireCredit(app);
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
    const { app, svc } = this.service(p, a, s);
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
    const { app, svc } = this.service(p, a, s);
    return this.ask(app, svc, getLogs, {
      tailBytes: q.tailBytes,
      ...(q.node ? { nodeId: q.node } : {}),
      ...(q.workload ? { workload: q.workload } : {}),
    });
  }

  /** Each service's manager log (services without a running manager answer an empty text). */
  async applicationLogs(p: Principal, ref: string, tailBytes: number) {
    const app = this.app(p, ref);
    const services = await Promise.all(
      this.servicesOf(app).map(async (s) => ({
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
    const { app, svc } = this.service(p, a, s);
    if (this.supervisor.managerOf(svc.serviceId)) return this.ask(app, svc, getHistory, { limit: 1000 });
    const { events } = await this.core.store.readAggregate(`svc.${app.appId}.${svc.serviceId}`);
    return serviceHistory(events);
  }

  async call(p: Principal, a: string, s: string, method: string, args: unknown, m: Actor) {
    const { app, svc } = this.service(p, a, s);
    const def = this.registry.get(svc.type);
    const mm: AnyManagerMethod | undefined = def.manager.methods[method];
    if (!mm) throw new NotFoundError(`${svc.type} has no method ${method}`);
    const parsed = parseMethodArgs(method, mm.args as z.ZodType, args ?? {});
    return this.ask(app, svc, callMethod, { method, args: parsed }, m.requestId);
  }

  /**
   * Makes an upload the service's code. The whole archive is first read through the rules its nodes
   * unpack it with (`inspectArchive`, the same limits): one they would refuse is answered with that
   * refusal (`validation`, the entry's path and the issue code) and changes nothing, neither the
   * service's archive, nor its bucket, nor its nodes. Then it is stored in the service's bucket and
   * recorded (by the manager, which hands it to the nodes, when the service runs).
   */
  async uploadArchive(p: Principal, a: string, s: string, body: unknown, m: Actor) {
    const { app, svc } = this.service(p, a, s);
    if (!body || typeof (body as Readable)[Symbol.asyncIterator] !== 'function')
      throw new ValidationError('send the archive as the raw body (application/octet-stream)', [
        { path: '$', code: 'unsupported_media_type', message: 'application/octet-stream' },
      ]);
    const maxBytes = this.o.maxArchiveBytes;
    return withUploadedFile(body as AsyncIterable<Uint8Array>, maxBytes, async (file) => {
      await inspectArchive(file);
      await ensureArchiveBucket(this.bus.connection, svc.serviceId);
      const store = new ArchiveStore(this.bus.connection, { serviceId: svc.serviceId });
      const version = `v${Date.now().toString(36)}${createHash('sha256').update(m.requestId).digest('hex').slice(0, 6)}`;
      const info = await store.put(version, createReadStream(file), { maxBytes });
      if (this.supervisor.managerOf(svc.serviceId))
        await this.ask(app, svc, setArchive, { version }, m.requestId);
      else {
        const res = await this.services.run(
          `svc.${app.appId}.${svc.serviceId}`,
          'SetArchive',
          { version, size: info.size, digest: info.digest },
          m,
        );
        await this.core.caughtUp(res.position);
      }
      return { version, size: info.size, digest: info.digest };
    });
  }

  // ---- operations (start, stop, remove)

  /** ConPaaS: nothing starts without credit. */
  private requireCredit(app: ApplicationView): void {
    if ((this.core.directory.users.get(app.owner)?.credit ?? 0) <= 0)
      throw new CpsError('quota_exceeded', 'no credit left: ask an admin for credit');
  }

  async startService(p: Principal, a: string, s: string, m: Actor) {
    const { app, svc } = this.service(p, a, s);
    const again = this.operations.requested(this.startServiceOp, m.requestId);
    if (again) return { operationId: again.operationId };
    this.requireCredit(app);
    if (
      !['INIT', 'STOPPED', 'ERROR'].includes(svc.state) ||
      (this.supervisor.managerOf(svc.serviceId) && svc.state !== 'ERROR')
    )
      throw new ConflictError(`service ${svc.name} is ${svc.state}: start needs INIT or STOPPED`);
    return this.operations.start(this.startServiceOp, this.of(app, svc), m);
  }

  async stopService(p: Principal, a: string, s: string, m: Actor) {
    const { app, svc } = this.service(p, a, s);
    const again = this.operations.requested(this.stopServiceOp, m.requestId);
    if (again) return { operationId: again.operationId };
    if (svc.state === 'STOPPED' || svc.state === 'INIT')
      throw new ConflictError(`service ${svc.name} is ${svc.state}`);
    return this.operations.start(this.stopServiceOp, this.of(app, svc), m);
  }

  async removeService(p: Principal, a: string, s: string, m: Actor) {
    const { app, svc } = this.service(p, a, s);
    return this.operations.start(this.removeServiceOp, this.of(app, svc), m);
  }

  async startApplication(p: Principal, ref: string, m: Actor) {
    const app = this.app(p, ref);
    this.requireCredit(app);
    return this.operations.start(this.startApplicationOp, this.of(app), m);
  }

  async stopApplication(p: Principal, ref: string, m: Actor) {
    const app = this.app(p, ref);
    return this.operations.start(this.stopApplicationOp, this.of(app), m);
  }

  async deleteApplication(p: Principal, ref: string, m: Actor) {
    const app = this.app(p, ref);
    return this.operations.start(this.deleteApplicationOp, this.of(app), m);
  }

  private of(app: ApplicationView, svc?: ServiceView) {
    return { owner: app.owner, appId: app.appId, ...(svc ? { serviceId: svc.serviceId } : {}) };
  }

  // ---- the operations' definitions

  readonly startServiceOp = defineOperation({ kind: 'start_service', run: (op) => this.startAll(op) });
  readonly startApplicationOp = defineOperation({
    kind: 'start_application',
    run: (op) => this.startAll(op),
  });
  readonly stopServiceOp = defineOperation({ kind: 'stop_service', run: (op) => this.stopAll(op) });
  readonly stopApplicationOp = defineOperation({ kind: 'stop_application', run: (op) => this.stopAll(op) });
  readonly removeServiceOp = defineOperation({
    kind: 'remove_service',
    run: async (op) => {
      const { app, services } = this.target(op);
      for (const s of [...services].reverse()) {
        await this.dismantle(app, s, op);
        const r = await this.core.apps.run(
          `app.${app.appId}`,
          'RemoveService',
          { serviceId: s.serviceId },
          { requestId: `${op.operationId}:remove:${s.serviceId}`, actor: 'director' },
        );
        await this.core.caughtUp(r.position);
      }
    },
  });
  readonly deleteApplicationOp = defineOperation({
    kind: 'delete_application',
    run: async (op) => {
      const { app, services } = this.target(op);
      for (const s of [...services].reverse()) await this.dismantle(app, s, op);
      const r = await this.core.apps.run(
        `app.${app.appId}`,
        'Delete',
        {},
        { requestId: `${op.operationId}:delete`, actor: 'director' },
      );
      await this.core.names.release(`app.${app.owner}`, app.name, app.appId, `${op.operationId}:release`);
      await this.core.caughtUp(r.position);
    },
  });

  /** The kinds of operation this class defines. */
  readonly operationKinds = [
    this.startServiceOp,
    this.startApplicationOp,
    this.stopServiceOp,
    this.stopApplicationOp,
    this.removeServiceOp,
    this.deleteApplicationOp,
  ];

  /** The application of an operation and its services in order (the one service, when it names one). */
  private target(op: RunningOperation): { app: ApplicationView; services: ServiceView[] } {
    const app = this.core.directory.apps.get(op.appId ?? '');
    if (!app) throw new NotFoundError('application gone');
    const services = op.serviceId
      ? [this.core.directory.services.get(op.serviceId)].filter((x): x is ServiceView => !!x)
      : this.core.directory.servicesOf(app);
    return { app, services };
  }

  private async startAll(op: RunningOperation): Promise<void> {
    const { app, services } = this.target(op);
    for (const s of services) await this.startOne(app, s, op);
  }

  private async stopAll(op: RunningOperation): Promise<void> {
    const { app, services } = this.target(op);
    for (const s of [...services].reverse()) await this.stopOne(app, s, op);
  }

  /** Stops a service and deletes its archives. */
  private async dismantle(app: ApplicationView, s: ServiceView, op: RunningOperation): Promise<void> {
    await this.stopOne(app, s, op);
    await deleteArchiveBucket(this.bus.connection, s.serviceId);
  }

  private async startOne(app: ApplicationView, s: ServiceView, op: RunningOperation): Promise<void> {
    op.alive();
    if (s.state === 'RUNNING' && this.supervisor.managerOf(s.serviceId)) return;
    await this.born(app.appId, s.serviceId);
    await this.supervisor.ensureManager(app.appId, s.serviceId, s.type, op.operationId);
    const info = await this.bus
      .request(
        subjects.manager(app.appId, s.serviceId),
        startupService,
        { cloud: s.cloud },
        { requestId: `${op.operationId}:startup:${s.serviceId}`, timeoutMs: 30_000 },
      )
      .catch((e: unknown) => {
        if (e instanceof CpsError && e.code === 'conflict') return undefined;
        throw e;
      });
    await this.settled(s.serviceId, ['RUNNING', 'ERROR'], op);
    if (info && this.core.directory.services.get(s.serviceId)?.state === 'ERROR')
      throw new CpsError('conflict', `service ${s.name} failed to start`);
  }

  private async stopOne(app: ApplicationView, s: ServiceView, op: RunningOperation): Promise<void> {
    op.alive();
    if (this.supervisor.managerOf(s.serviceId)) {
      if (!['STOPPED', 'INIT'].includes(s.state)) {
        await this.supervisor.answering(app.appId, s.serviceId);
        await this.bus
          .request(
            subjects.manager(app.appId, s.serviceId),
            shutdownService,
            {},
            { requestId: `${op.operationId}:shutdown:${s.serviceId}`, timeoutMs: 30_000 },
          )
          .catch((e: unknown) => {
            if (e instanceof CpsError && e.code === 'conflict') return undefined;
            throw e;
          });
        await this.settled(s.serviceId, ['STOPPED', 'INIT'], op);
      }
      await this.supervisor.stopManager(app.appId, s.serviceId, op.operationId);
    }
  }

  private settled(serviceId: string, states: readonly string[], op: RunningOperation): Promise<void> {
    return op.until(
      `service ${serviceId} to reach ${states.join(' or ')}`,
      () => states.includes(this.core.directory.services.get(serviceId)?.state ?? ''),
      {
        forMs: this.o.operationTimeoutMs,
        everyMs: 100,
        timedOut: () => new CpsError('timeout', `service ${serviceId} did not reach ${states.join(' or ')}`),
      },
    );
  }
}
