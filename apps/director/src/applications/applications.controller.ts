import { Controller, Inject } from '@nestjs/common';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Req, Route } from '../api/route.decorator.js';
import { actorOf, commandIdOf, type Principal, type RequestContext } from '../api/request.js';
import type { Services } from '../services/services.js';
import type { ApplicationOperations } from './application-operations.js';
import type { Applications } from './applications.js';
import { applicationRoutes } from './applications.routes.js';
import { encodeAppCursor } from './applications.schemas.js';

type R = typeof applicationRoutes;
const meta = (c: RequestContext, what: string) => ({ requestId: commandIdOf(c, what), actor: actorOf(c) });

/** Injection tokens of the {@link Applications} and {@link ApplicationOperations} services. */
export const APPLICATIONS = Symbol('Applications');
export const APPLICATION_OPERATIONS = Symbol('ApplicationOperations');
/** Injection token of the {@link Services} service (the application's logs are its services'). */
export const APPLICATION_SERVICES = Symbol('ApplicationServices');

/** Applications; every lookup is scoped to the caller (others' answer 404). */
@Controller()
export class ApplicationsController {
  constructor(
    @Inject(APPLICATIONS) private readonly apps: Applications,
    @Inject(APPLICATION_OPERATIONS) private readonly ops: ApplicationOperations,
    @Inject(APPLICATION_SERVICES) private readonly services: Services,
  ) {}

  @Route(applicationRoutes.listApplications)
  list(
    @Input() i: RouteInput<R['listApplications']>,
    @Caller() p: Principal,
  ): RouteOutput<R['listApplications']> {
    const page = this.apps.page(p, i.query);
    return {
      applications: page.items.map((a) => this.apps.appDto(a)),
      ...(page.next ? { nextCursor: encodeAppCursor(page.next) } : {}),
    };
  }

  @Route(applicationRoutes.createApplication)
  async create(
    @Input() i: RouteInput<R['createApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['createApplication']>> {
    return this.apps.appDto(await this.apps.create(p, i.body, meta(c, 'create-app')));
  }

  @Route(applicationRoutes.getApplication)
  get(@Input() i: RouteInput<R['getApplication']>, @Caller() p: Principal): RouteOutput<R['getApplication']> {
    return this.apps.appDto(this.apps.app(p, i.params.app));
  }

  @Route(applicationRoutes.updateApplication)
  async update(
    @Input() i: RouteInput<R['updateApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['updateApplication']>> {
    return this.apps.appDto(await this.apps.update(p, i.params.app, i.body, meta(c, 'update-app')));
  }

  @Route(applicationRoutes.deleteApplication)
  delete(
    @Input() i: RouteInput<R['deleteApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['deleteApplication']>> {
    return this.ops.deleteApplication(p, i.params.app, meta(c, 'delete-app'));
  }

  @Route(applicationRoutes.startApplication)
  start(
    @Input() i: RouteInput<R['startApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['startApplication']>> {
    return this.ops.startApplication(p, i.params.app, meta(c, 'start-app'));
  }

  @Route(applicationRoutes.stopApplication)
  stop(
    @Input() i: RouteInput<R['stopApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['stopApplication']>> {
    return this.ops.stopApplication(p, i.params.app, meta(c, 'stop-app'));
  }

  @Route(applicationRoutes.applicationLogs)
  appLogs(
    @Input() i: RouteInput<R['applicationLogs']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['applicationLogs']>> {
    return this.services.applicationLogs(p, i.params.app, i.query.tailBytes);
  }
}
