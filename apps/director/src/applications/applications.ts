import { aggregateIds, nameScopes, CpsError, NotFoundError } from '@cps/core';
import type { Principal } from '../api/request.js';
import { Aggregates, hashId, type Actor, type DirectorCore } from '../core/director-core.js';
import { nodesPerRole, type ApplicationView, type ServiceView } from '../core/directory.js';
import { appDecider, type AppCommand, type AppState } from './app-decider.js';
import type { AppEvent } from './app-events.js';
import type { AppCursor } from './applications.schemas.js';

export interface ApplicationsOptions {
  readonly maxApplicationsPerUser: number;
}

/**
 * Applications: the director's side of them (names, ownership, the order of their services), kept
 * in the application aggregates. Every lookup is scoped to the caller (others' answer 404).
 */
export class Applications {
  /** The application aggregates (`app.<appId>`): name, description, services with their settings. */
  readonly apps: Aggregates<AppCommand, AppEvent, AppState>;

  constructor(
    private readonly core: DirectorCore,
    private readonly o: ApplicationsOptions,
  ) {
    this.apps = new Aggregates(core.store, appDecider, core.snapshots);
  }

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
      services: this.core.directory.servicesOf(a).map((s) => ({
        serviceId: s.serviceId,
        name: s.name,
        type: s.type,
        cloud: s.cloud,
        state: s.state,
        nodes: nodesPerRole(s),
      })),
    };
  }

  async create(p: Principal, r: { name: string; description: string }, m: Actor): Promise<ApplicationView> {
    // admins are not held to the per-user quota
    if (p.role !== 'admin' && this.list(p).length >= this.o.maxApplicationsPerUser)
      throw new CpsError('quota_exceeded', `at most ${this.o.maxApplicationsPerUser} applications per user`);
    const appId = hashId('a', m.requestId);
    await this.core.names.claim(nameScopes.applicationsOf(p.userId), r.name, appId, `${m.requestId}:name`);
    try {
      const res = await this.apps.run(
        aggregateIds.app(appId),
        'Create',
        { appId, owner: p.userId, name: r.name, description: r.description },
        m,
      );
      await this.core.caughtUp(res.position);
    } catch (e) {
      await this.core.names
        .release(nameScopes.applicationsOf(p.userId), r.name, appId, `${m.requestId}:release`)
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
      await this.core.names.claim(
        nameScopes.applicationsOf(a.owner),
        r.name as string,
        a.appId,
        `${m.requestId}:name`,
      );
    const old = a.name;
    const res = await this.apps.run(
      aggregateIds.app(a.appId),
      'Update',
      {
        ...(r.name !== undefined ? { name: r.name } : {}),
        ...(r.description !== undefined ? { description: r.description } : {}),
      },
      m,
    );
    if (rename)
      await this.core.names.release(
        nameScopes.applicationsOf(a.owner),
        old,
        a.appId,
        `${m.requestId}:release`,
      );
    await this.core.caughtUp(res.position);
    return this.app(p, a.appId);
  }

  /** ConPaaS: nothing starts without credit. */
  requireCredit(app: ApplicationView): void {
    if ((this.core.directory.users.get(app.owner)?.credit ?? 0) <= 0)
      throw new CpsError('quota_exceeded', 'no credit left: ask an admin for credit');
  }
}
