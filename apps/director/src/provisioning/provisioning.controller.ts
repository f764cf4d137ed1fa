import { Controller, Inject } from '@nestjs/common';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Route } from '../api/route.decorator.js';
import type { Principal } from '../api/request.js';
import type { Provisioning } from './provisioning.js';
import { provisioningRoutes } from './provisioning.routes.js';

type R = typeof provisioningRoutes;

/** Injection token of the {@link Provisioning} service. */
export const PROVISIONING = Symbol('Provisioning');

/** The clouds, the caller's nodes with their cost, and the enrollment of cloud nodes. */
@Controller()
export class ProvisioningController {
  constructor(@Inject(PROVISIONING) private readonly provisioning: Provisioning) {}

  @Route(provisioningRoutes.clouds)
  clouds(): RouteOutput<R['clouds']> {
    return { clouds: this.provisioning.clouds() };
  }

  @Route(provisioningRoutes.resources)
  resources(@Caller() p: Principal): RouteOutput<R['resources']> {
    return { resources: this.provisioning.resources(p) };
  }

  @Route(provisioningRoutes.enroll)
  enroll(@Input() i: RouteInput<R['enroll']>): Promise<RouteOutput<R['enroll']>> {
    return this.provisioning.enroll(i.body);
  }

  @Route(provisioningRoutes.reenroll)
  reenroll(@Input() i: RouteInput<R['reenroll']>): Promise<RouteOutput<R['reenroll']>> {
    return this.provisioning.reenroll(i.body);
  }
}
