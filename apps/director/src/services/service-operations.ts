import { aggregateIds, ConflictError, CpsError, NotFoundError } from '@cps/core';
import { refuseIfLinked } from '../applications/app-decider.js';
import { subjects, type Bus, shutdownService, startupService } from '@cps/bus';
import { deleteArchiveBucket, deleteDataBucket, ensureDataBucket } from '@cps/archives';
import { type ServiceCommand, type ServiceEvent, type ServiceState } from '@cps/services';
import type { Principal } from '../api/request.js';
import type { Actor, Aggregates, DirectorCore } from '../core/director-core.js';
import type { ApplicationView, ServiceView } from '../core/directory.js';
import type { Applications } from '../applications/applications.js';
import { defineOperation, type RunningOperation } from '../operations/operation.js';
import type { Operations } from '../operations/operations.js';
import type { Supervisor } from './supervisor.js';

export interface ServiceOperationsOptions {
  /** How long a service may take to reach the state a start or a stop waits for. */
  readonly operationTimeoutMs: number;
}

/**
 * Starting, stopping and removing a service, each an operation (its kind defined here once), and the
 * steps they take for one service, which the application's operations take for each of theirs.
 */
export class ServiceOperations {
  constructor(
    private readonly core: DirectorCore,
    private readonly bus: Bus,
    private readonly supervisor: Supervisor,
    private readonly applications: Applications,
    private readonly aggregates: Aggregates<ServiceCommand, ServiceEvent, ServiceState>,
    private readonly operations: Operations,
    private readonly o: ServiceOperationsOptions,
  ) {}

  readonly start = defineOperation({
    kind: 'start_service',
    run: async (op) => {
      for (const [app, s] of this.target(op)) await this.startOne(app, s, op);
    },
  });

  readonly stop = defineOperation({
    kind: 'stop_service',
    run: async (op) => {
      for (const [app, s] of this.target(op)) await this.stopOne(app, s, op);
    },
  });

  /** Stops the service, deletes its archives, and takes it out of its application. */
  readonly remove = defineOperation({
    kind: 'remove_service',
    run: async (op) => {
      for (const [app, s] of this.target(op)) {
        await this.dismantle(app, s, op);
        const r = await this.applications.apps.run(
          aggregateIds.app(app.appId),
          'RemoveService',
          { serviceId: s.serviceId },
          { requestId: `${op.operationId}:remove:${s.serviceId}`, actor: 'director' },
        );
        await this.core.caughtUp(r.position);
      }
    },
  });

  readonly kinds = [this.start, this.stop, this.remove];

  async startService(p: Principal, a: string, s: string, m: Actor) {
    const { app, svc } = this.applications.service(p, a, s);
    const again = this.operations.requested(this.start, m.requestId);
    if (again) return { operationId: again.operationId };
    this.applications.requireCredit(app);
    if (
      !['INIT', 'STOPPED', 'ERROR'].includes(svc.state) ||
      (this.supervisor.managerOf(svc.serviceId) && svc.state !== 'ERROR')
    )
      throw new ConflictError(`service ${svc.name} is ${svc.state}: start needs INIT or STOPPED`);
    return this.operations.start(this.start, operationOn(app, svc), m);
  }

  async stopService(p: Principal, a: string, s: string, m: Actor) {
    const { app, svc } = this.applications.service(p, a, s);
    const again = this.operations.requested(this.stop, m.requestId);
    if (again) return { operationId: again.operationId };
    if (svc.state === 'STOPPED' || svc.state === 'INIT')
      throw new ConflictError(`service ${svc.name} is ${svc.state}`);
    return this.operations.start(this.stop, operationOn(app, svc), m);
  }

  async removeService(p: Principal, a: string, s: string, m: Actor) {
    const { app, svc } = this.applications.service(p, a, s);
    // refused before anything stops: a linked service is not removed from under the one linking it
    const state = await this.applications.apps.state(aggregateIds.app(app.appId));
    if (state.status === 'ACTIVE') refuseIfLinked(state.services, svc.serviceId);
    return this.operations.start(this.remove, operationOn(app, svc), m);
  }

  /** The application of an operation on one service, and that service (none once it is gone). */
  private target(op: RunningOperation): [ApplicationView, ServiceView][] {
    const app = this.core.directory.apps.get(op.appId ?? '');
    if (!app) throw new NotFoundError('application gone');
    const s = this.core.directory.services.get(op.serviceId ?? '');
    return s ? [[app, s]] : [];
  }

  /** Stops a service and deletes its archives. */
  async dismantle(app: ApplicationView, s: ServiceView, op: RunningOperation): Promise<void> {
    await this.stopOne(app, s, op);
    await deleteArchiveBucket(this.bus.connection, s.serviceId);
    await deleteDataBucket(this.bus.connection, s.serviceId);
  }

  /** Starts one service: its manager (unless it runs), then `startup`, and waits until it is RUNNING. */
  async startOne(app: ApplicationView, s: ServiceView, op: RunningOperation): Promise<void> {
    op.alive();
    if (s.state === 'RUNNING' && this.supervisor.managerOf(s.serviceId)) return;
    await this.born(app.appId, s.serviceId);
    // the manager's own objects (backups): its bucket exists before it runs
    await ensureDataBucket(this.bus.connection, s.serviceId);
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

  /** Stops one service: `shutdown`, waits until it is STOPPED, then ends its manager. */
  async stopOne(app: ApplicationView, s: ServiceView, op: RunningOperation): Promise<void> {
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

  /**
   * Creates the aggregate of a service the application has (before any manager exists: its manager
   * finds it at start) unless it exists: `addService` creates it right after the application adds
   * the service, and a start creates it for a service whose creation was cut short in between.
   */
  private async born(appId: string, serviceId: string): Promise<void> {
    const aggregate = aggregateIds.service(appId, serviceId);
    if ((await this.aggregates.state(aggregate)).status !== 'NONE') return;
    const app = await this.applications.apps.state(aggregateIds.app(appId));
    const entry = app.status === 'ACTIVE' ? app.services.find((x) => x.serviceId === serviceId) : undefined;
    if (!entry) throw new NotFoundError(`no service ${serviceId}`);
    await this.aggregates
      .run(
        aggregate,
        'Create',
        {
          appId,
          serviceId,
          type: entry.type,
          config: entry.config,
          ...(entry.links ? { links: entry.links } : {}),
          ...(entry.manifest ? { manifest: entry.manifest } : {}),
        },
        { requestId: `${serviceId}:born`, actor: 'director' },
      )
      .catch((e: unknown) => {
        // created meanwhile
        if (!(e instanceof CpsError && e.code === 'conflict')) throw e;
      });
  }
}

/** What an operation on an application, or one of its services, is recorded with. */
export const operationOn = (app: ApplicationView, svc?: ServiceView) => ({
  owner: app.owner,
  appId: app.appId,
  ...(svc ? { serviceId: svc.serviceId } : {}),
});
