import { Body, Controller, Inject } from '@nestjs/common';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Req, Route } from '../api/route.decorator.js';
import { actorOf, commandIdOf, type Principal, type RequestContext } from '../api/request.js';
import type { Manifests } from './manifests.js';
import { manifestRoutes } from './manifests.routes.js';

type R = typeof manifestRoutes;

/** Injection token of the {@link Manifests} service. */
export const MANIFESTS = Symbol('Manifests');

/** Validate, deploy and export manifests; applications are the caller's own (others' answer 404). */
@Controller()
export class ManifestsController {
  constructor(@Inject(MANIFESTS) private readonly manifests: Manifests) {}

  // both read the body as sent (`@Body`), not as the route's documenting schema parsed it
  @Route(manifestRoutes.validateManifest)
  validate(@Body() body: unknown): RouteOutput<R['validateManifest']> {
    return this.manifests.validate(body);
  }

  @Route(manifestRoutes.deployManifest)
  deploy(
    @Body() body: unknown,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['deployManifest']>> {
    return this.manifests.deploy(p, body, {
      requestId: commandIdOf(c, 'deploy-manifest'),
      actor: actorOf(c),
    });
  }

  @Route(manifestRoutes.exportManifest)
  manifest(
    @Input() i: RouteInput<R['exportManifest']>,
    @Caller() p: Principal,
  ): Promise<RouteOutput<R['exportManifest']>> {
    return this.manifests.manifestOf(p, i.params.app);
  }
}
