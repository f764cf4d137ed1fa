import { Controller, Inject } from '@nestjs/common';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, Input, Req, Route } from '../api/route.decorator.js';
import { commandIdOf, type Principal, type RequestContext } from '../api/request.js';
import type { Certificates } from './certificates.js';
import { certificateRoutes } from './certificates.routes.js';

type R = typeof certificateRoutes;

/** Injection token of the {@link Certificates} service. */
export const CERTIFICATES = Symbol('Certificates');

/** `POST`, `GET /v1/certificates` and `DELETE /v1/certificates/{serial}`. */
@Controller()
export class CertificatesController {
  constructor(@Inject(CERTIFICATES) private readonly certificates: Certificates) {}

  @Route(certificateRoutes.createCertificate)
  create(
    @Input() i: RouteInput<R['createCertificate']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['createCertificate']>> {
    return this.certificates.issue(p, i.body, commandIdOf(c, 'certificate'));
  }

  @Route(certificateRoutes.listCertificates)
  list(
    @Input() i: RouteInput<R['listCertificates']>,
    @Caller() p: Principal,
  ): RouteOutput<R['listCertificates']> {
    return { certificates: this.certificates.list(p, i.query.user) };
  }

  @Route(certificateRoutes.revokeCertificate)
  async revoke(
    @Input() i: RouteInput<R['revokeCertificate']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<void> {
    await this.certificates.revoke(p, i.params.serial, commandIdOf(c, 'revoke-certificate'));
  }
}
