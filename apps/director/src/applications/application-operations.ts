import { aggregateIds, nameScopes, NotFoundError } from '@cps/core';
import type { Principal } from '../api/request.js';
import type { Actor, DirectorCore } from '../core/director-core.js';
import type { ApplicationView, ServiceView } from '../core/directory.js';
import { defineOperation, type RunningOperation } from '../operations/operation.js';
import type { Operations } from '../operations/operations.js';
import { operationOn, type ServiceOperations } from '../services/service-operations.js';
import type { Applications } from './applications.js';

/**
 * Starting, stopping and deleting a whole application, each an operation (its kind defined here once)
 * over its services: started in their order, stopped and removed in the reverse order.
 */
export class ApplicationOperations {
  constructor(
    private readonly core: DirectorCore,
    private readonly applications: Applications,
    private readonly services: ServiceOperations,
    private readonly operations: Operations,
  ) {}

  readonly start = defineOperation({
    kind: 'start_application',
    run: async (op) => {
      const { app, services } = this.target(op);
      for (const s of services) await this.services.startOne(app, s, op);
    },
  });

  readonly stop = defineOperation({
    kind: 'stop_application',
    run: async (op) => {
      const { app, services } = this.target(op);
      for (const s of services.reverse()) await this.services.stopOne(app, s, op);
    },
  });

  /** Stops every service and deletes its archives, then the application, and frees its name. */
  readonly delete = defineOperation({
    kind: 'delete_application',
    run: async (op) => {
      const { app, services } = this.target(op);
      for (const s of services.reverse()) await this.services.dismantle(app, s, op);
      const r = await this.applications.apps.run(
        aggregateIds.app(app.appId),
        'Delete',
        {},
        { requestId: `${op.operationId}:delete`, actor: 'director' },
      );
      await this.core.names.release(
        nameScopes.applicationsOf(app.owner),
        app.name,
        app.appId,
        `${op.operationId}:release`,
      );
      await this.core.caughtUp(r.position);
    },
  });

  readonly kinds = [this.start, this.stop, this.delete];

  async startApplication(p: Principal, ref: string, m: Actor) {
    const app = this.applications.app(p, ref);
    this.applications.requireCredit(app);
    return this.operations.start(this.start, operationOn(app), m);
  }

  async stopApplication(p: Principal, ref: string, m: Actor) {
    return this.operations.start(this.stop, operationOn(this.applications.app(p, ref)), m);
  }

  async deleteApplication(p: Principal, ref: string, m: Actor) {
    return this.operations.start(this.delete, operationOn(this.applications.app(p, ref)), m);
  }

  /** The application of an operation and its services, in order. */
  private target(op: RunningOperation): { app: ApplicationView; services: ServiceView[] } {
    const app = this.core.directory.apps.get(op.appId ?? '');
    if (!app) throw new NotFoundError('application gone');
    return { app, services: this.core.directory.servicesOf(app) };
  }
}
