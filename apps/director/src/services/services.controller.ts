import { pipeline } from 'node:stream/promises';
import { Controller, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Req, Route } from '../api/route.decorator.js';
import { actorOf, commandIdOf, type Principal, type RequestContext } from '../api/request.js';
import { takeOverReply } from '../api/raw-reply.js';
import type { ServiceOperations } from './service-operations.js';
import type { Services } from './services.js';
import { serviceRoutes } from './services.routes.js';

type R = typeof serviceRoutes;
const meta = (c: RequestContext, what: string) => ({ requestId: commandIdOf(c, what), actor: actorOf(c) });

/** Injection tokens of the {@link Services} and {@link ServiceOperations} services. */
export const SERVICES = Symbol('Services');
export const SERVICE_OPERATIONS = Symbol('ServiceOperations');

/** The service types, and the services of the caller's applications (others' answer 404). */
@Controller()
export class ServicesController {
  constructor(
    @Inject(SERVICES) private readonly services: Services,
    @Inject(SERVICE_OPERATIONS) private readonly ops: ServiceOperations,
  ) {}

  @Route(serviceRoutes.serviceTypes)
  serviceTypes(): RouteOutput<R['serviceTypes']> {
    return { serviceTypes: this.services.serviceTypes() };
  }

  @Route(serviceRoutes.listServices)
  list(@Input() i: RouteInput<R['listServices']>, @Caller() p: Principal): RouteOutput<R['listServices']> {
    return { services: this.services.list(p, i.params.app).map((s) => this.services.serviceDto(s)) };
  }

  @Route(serviceRoutes.addService)
  async addService(
    @Input() i: RouteInput<R['addService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['addService']>> {
    return this.services.serviceDto(
      await this.services.addService(p, i.params.app, i.body, meta(c, 'add-service')),
    );
  }

  @Route(serviceRoutes.getService)
  service(@Input() i: RouteInput<R['getService']>, @Caller() p: Principal): RouteOutput<R['getService']> {
    return this.services.serviceDto(this.services.get(p, i.params.app, i.params.svc));
  }

  @Route(serviceRoutes.updateService)
  async updateService(
    @Input() i: RouteInput<R['updateService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['updateService']>> {
    return this.services.serviceDto(
      await this.services.renameService(
        p,
        i.params.app,
        i.params.svc,
        i.body.name,
        meta(c, 'rename-service'),
      ),
    );
  }

  @Route(serviceRoutes.removeService)
  removeService(
    @Input() i: RouteInput<R['removeService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['removeService']>> {
    return this.ops.removeService(p, i.params.app, i.params.svc, meta(c, 'remove-service'));
  }

  @Route(serviceRoutes.startService)
  startService(
    @Input() i: RouteInput<R['startService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['startService']>> {
    return this.ops.startService(p, i.params.app, i.params.svc, meta(c, 'start-service'));
  }

  @Route(serviceRoutes.stopService)
  stopService(
    @Input() i: RouteInput<R['stopService']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['stopService']>> {
    return this.ops.stopService(p, i.params.app, i.params.svc, meta(c, 'stop-service'));
  }

  @Route(serviceRoutes.listNodes)
  nodes(
    @Input() i: RouteInput<R['listNodes']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['listNodes']>> {
    return this.services.nodes(p, i.params.app, i.params.svc);
  }

  @Route(serviceRoutes.addNodes)
  addNodes(
    @Input() i: RouteInput<R['addNodes']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['addNodes']>> {
    return this.services.addNodes(p, i.params.app, i.params.svc, i.body, meta(c, 'add-nodes'));
  }

  @Route(serviceRoutes.removeNodes)
  removeNodes(
    @Input() i: RouteInput<R['removeNodes']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['removeNodes']>> {
    return this.services.removeNodes(p, i.params.app, i.params.svc, i.body, meta(c, 'remove-nodes'));
  }

  @Route(serviceRoutes.getNode)
  node(@Input() i: RouteInput<R['getNode']>, @Caller() p: Principal): Promise<RouteOutput<R['getNode']>> {
    return this.services.node(p, i.params.app, i.params.svc, i.params.node);
  }

  @Route(serviceRoutes.serviceLogs)
  logs(
    @Input() i: RouteInput<R['serviceLogs']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['serviceLogs']>> {
    return this.services.logs(p, i.params.app, i.params.svc, i.query);
  }

  @Route(serviceRoutes.serviceHistory)
  history(
    @Input() i: RouteInput<R['serviceHistory']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['serviceHistory']>> {
    return this.services.history(p, i.params.app, i.params.svc);
  }

  @Route(serviceRoutes.callMethod)
  call(
    @Input() i: RouteInput<R['callMethod']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['callMethod']>> {
    return this.services.call(p, i.params.app, i.params.svc, i.params.method, i.body, meta(c, 'call'));
  }

  @Route(serviceRoutes.uploadArchive)
  upload(
    @Input() i: RouteInput<R['uploadArchive']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['uploadArchive']>> {
    return this.services.archives.upload(p, i.params.app, i.params.svc, i.body, meta(c, 'archive'), {
      enable: i.query.enable,
    });
  }

  @Route(serviceRoutes.listArchives)
  listArchives(
    @Input() i: RouteInput<R['listArchives']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['listArchives']>> {
    return this.services.archives.list(p, i.params.app, i.params.svc);
  }

  /**
   * Takes the response over once the version is found (a refusal before is problem+json): its
   * bytes as they come from the bucket. Content that fails its digest ends the connection early,
   * short of its `content-length`.
   */
  @Route(serviceRoutes.downloadArchive)
  async downloadArchive(
    @Input() i: RouteInput<R['downloadArchive']>,
    @Caller() p: Principal,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const { params } = i;
    const archive = await this.services.archives.open(p, params.app, params.svc, params.version);
    const res = takeOverReply(reply, {
      'content-type': 'application/octet-stream',
      'content-length': archive.info.size,
      'content-disposition': `attachment; filename="${archive.info.version}"`,
    });
    await pipeline(archive.chunks, res).catch(() => res.destroy());
  }

  @Route(serviceRoutes.enableArchive)
  enableArchive(
    @Input() i: RouteInput<R['enableArchive']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['enableArchive']>> {
    const { app, svc, version } = i.params;
    return this.services.archives.enable(p, app, svc, version, meta(c, 'enable-archive'));
  }

  @Route(serviceRoutes.deleteArchive)
  deleteArchive(@Input() i: RouteInput<R['deleteArchive']>, @Caller() p: Principal): Promise<void> {
    const { app, svc, version } = i.params;
    return this.services.archives.delete(p, app, svc, version);
  }
}
