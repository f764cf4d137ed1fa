import { Controller, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { routes } from '../api/routes.js';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Route } from '../api/route.decorator.js';
import type { Principal } from '../api/request.js';
import type { Platform } from '../platform/platform.js';
import { PLATFORM } from './tokens.js';

type R = typeof routes;

/** Health, metrics, the OpenAPI document, and the platform's own resources. */
@Controller()
export class PlatformController {
  constructor(@Inject(PLATFORM) private readonly platform: Platform) {}

  @Route(routes.health)
  health(): RouteOutput<R['health']> {
    return this.platform.health();
  }

  @Route(routes.ready)
  ready(@Res({ passthrough: true }) reply: FastifyReply): RouteOutput<R['ready']> {
    const r = this.platform.ready();
    if (r.status !== 'ok') void reply.status(503);
    return r;
  }

  @Route(routes.metrics)
  async metrics(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    void reply.header('content-type', this.platform.metrics.registry.contentType);
    return this.platform.metrics.registry.metrics();
  }

  @Route(routes.openapi)
  openapi(): RouteOutput<R['openapi']> {
    return this.platform.openapi();
  }

  @Route(routes.serviceTypes)
  serviceTypes(): RouteOutput<R['serviceTypes']> {
    return { serviceTypes: this.platform.serviceTypes() };
  }

  @Route(routes.clouds)
  clouds(): RouteOutput<R['clouds']> {
    return { clouds: this.platform.clouds() };
  }

  @Route(routes.resources)
  resources(@Caller() p: Principal): RouteOutput<R['resources']> {
    return { resources: this.platform.resources(p) };
  }

  @Route(routes.getOperation)
  operation(
    @Input() i: RouteInput<R['getOperation']>,
    @Caller() p: Principal,
  ): RouteOutput<R['getOperation']> {
    return this.platform.operation(p, i.params.id);
  }

  @Route(routes.enroll)
  enroll(@Input() i: RouteInput<R['enroll']>): Promise<RouteOutput<R['enroll']>> {
    return this.platform.enroll(i.body);
  }
}
