import { Controller, Inject } from '@nestjs/common';
import { routes } from '../api/routes.js';
import { encodeAppCursor } from '../api/schemas.js';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Req, Route } from '../api/route.decorator.js';
import { actorOf, commandIdOf, type Principal, type RequestContext } from '../api/request.js';
import type { Applications } from '../applications/applications.js';
import { APPLICATIONS } from './tokens.js';

type R = typeof routes;
const meta = (c: RequestContext, what: string) => ({ requestId: commandIdOf(c, what), actor: actorOf(c) });

/** Applications and their services; every lookup is scoped to the caller (others' answer 404). */
@Controller()
export class ApplicationsController {
  constructor(@Inject(APPLICATIONS) private readonly apps: Applications) {}

  @Route(routes.listApplications)
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

  @Route(routes.createApplication)
  async create(
    @Input() i: RouteInput<R['createApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['createApplication']>> {
    return this.apps.appDto(await this.apps.create(p, i.body, meta(c, 'create-app')));
  }

  @Route(routes.getApplication)
  get(@Input() i: RouteInput<R['getApplication']>, @Caller() p: Principal): RouteOutput<R['getApplication']> {
    return this.apps.appDto(this.apps.app(p, i.params.app));
  }

  @Route(routes.updateApplication)
  async update(
    @Input() i: RouteInput<R['updateApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['updateApplication']>> {
    return this.apps.appDto(await this.apps.update(p, i.params.app, i.body, meta(c, 'update-app')));
  }

  @Route(routes.deleteApplication)
  delete(
    @Input() i: RouteInput<R['deleteApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['deleteApplication']>> {
    return this.apps.deleteApplication(p, i.params.app, meta(c, 'delete-app'));
  }

  @Route(routes.startApplication)
  start(
    @Input() i: RouteInput<R['startApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['startApplication']>> {
    return this.apps.startApplication(p, i.params.app, meta(c, 'start-app'));
  }

  @Route(routes.stopApplication)
  stop(
    @Input() i: RouteInput<R['stopApplication']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['stopApplication']>> {
    return this.apps.stopApplication(p, i.params.app, meta(c, 'stop-app'));
  }

  @Route(routes.applicationLogs)
  appLogs(
    @Input() i: RouteInput<R['applicationLogs']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['applicationLogs']>> {
    return this.apps.applicationLogs(p, i.params.app, i.query.tailBytes);
  }

  @Route(routes.listServices)
  services(
    @Input() i: RouteInput<R['listServices']>,
    @Caller() p: Principal,
  ): RouteOutput<R['listServices']> {
    const app = this.apps.app(p, i.params.app);
    return { services: this.apps.servicesOf(app).map((s) => this.apps.serviceDto(s)) };
  }

  @Route(routes.addService)
  async addService(
    @Input() i: RouteInput<R['addService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['addService']>> {
    return this.apps.serviceDto(await this.apps.addService(p, i.params.app, i.body, meta(c, 'add-service')));
  }

  @Route(routes.getService)
  service(@Input() i: RouteInput<R['getService']>, @Caller() p: Principal): RouteOutput<R['getService']> {
    return this.apps.serviceDto(this.apps.service(p, i.params.app, i.params.svc).svc);
  }

  @Route(routes.updateService)
  async updateService(
    @Input() i: RouteInput<R['updateService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['updateService']>> {
    return this.apps.serviceDto(
      await this.apps.renameService(p, i.params.app, i.params.svc, i.body.name, meta(c, 'rename-service')),
    );
  }

  @Route(routes.removeService)
  removeService(
    @Input() i: RouteInput<R['removeService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['removeService']>> {
    return this.apps.removeService(p, i.params.app, i.params.svc, meta(c, 'remove-service'));
  }

  @Route(routes.startService)
  startService(
    @Input() i: RouteInput<R['startService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['startService']>> {
    return this.apps.startService(p, i.params.app, i.params.svc, meta(c, 'start-service'));
  }

  @Route(routes.stopService)
  stopService(
    @Input() i: RouteInput<R['stopService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['stopService']>> {
    return this.apps.stopService(p, i.params.app, i.params.svc, meta(c, 'stop-service'));
  }

  @Route(routes.listNodes)
  nodes(
    @Input() i: RouteInput<R['listNodes']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['listNodes']>> {
    return this.apps.nodes(p, i.params.app, i.params.svc);
  }

  @Route(routes.addNodes)
  addNodes(
    @Input() i: RouteInput<R['addNodes']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['addNodes']>> {
    return this.apps.addNodes(p, i.params.app, i.params.svc, i.body, meta(c, 'add-nodes'));
  }

  @Route(routes.removeNodes)
  removeNodes(
    @Input() i: RouteInput<R['removeNodes']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['removeNodes']>> {
    return this.apps.removeNodes(p, i.params.app, i.params.svc, i.body, meta(c, 'remove-nodes'));
  }

  @Route(routes.getNode)
  node(@Input() i: RouteInput<R['getNode']>, @Caller() p: Principal): Promise<RouteOutput<R['getNode']>> {
    return this.apps.node(p, i.params.app, i.params.svc, i.params.node);
  }

  @Route(routes.serviceLogs)
  logs(
    @Input() i: RouteInput<R['serviceLogs']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['serviceLogs']>> {
    return this.apps.logs(p, i.params.app, i.params.svc, i.query);
  }

  @Route(routes.serviceHistory)
  history(
    @Input() i: RouteInput<R['serviceHistory']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['serviceHistory']>> {
    return this.apps.history(p, i.params.app, i.params.svc);
  }

  @Route(routes.callMethod)
  call(
    @Input() i: RouteInput<R['callMethod']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['callMethod']>> {
    return this.apps.call(p, i.params.app, i.params.svc, i.params.method, i.body, meta(c, 'call'));
  }

  @Route(routes.uploadArchive)
  upload(
    @Input() i: RouteInput<R['uploadArchive']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['uploadArchive']>> {
    return this.apps.uploadArchive(p, i.params.app, i.params.svc, i.body, meta(c, 'archive'));
  }
}
