import { Controller, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { RouteOutput } from '../api/route.js';
import { Route } from '../api/route.decorator.js';
import type { Platform } from './platform.js';
import { platformRoutes } from './platform.routes.js';

type R = typeof platformRoutes;

/** Injection token of the {@link Platform} service. */
export const PLATFORM = Symbol('Platform');

/** Liveness, readiness, metrics and the OpenAPI document. */
@Controller()
export class PlatformController {
  constructor(@Inject(PLATFORM) private readonly platform: Platform) {}

  @Route(platformRoutes.health)
  health(): RouteOutput<R['health']> {
    return this.platform.health();
  }

  @Route(platformRoutes.ready)
  ready(@Res({ passthrough: true }) reply: FastifyReply): RouteOutput<R['ready']> {
    const r = this.platform.ready();
    if (r.status !== 'ok') void reply.status(503);
    return r;
  }

  @Route(platformRoutes.metrics)
  async metrics(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    void reply.header('content-type', this.platform.metrics.registry.contentType);
    return this.platform.metrics.registry.metrics();
  }

  @Route(platformRoutes.openapi)
  openapi(): RouteOutput<R['openapi']> {
    return this.platform.openapi();
  }
}
