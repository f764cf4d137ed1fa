import type { DirectorFeature } from '../feature.js';
import { CERTIFICATES, CertificatesController } from './certificates.controller.js';
import { Certificates } from './certificates.js';
import { certificateRoutes } from './certificates.routes.js';

/**
 * Client certificates (ConPaaS's `getcerts`): `POST /v1/certificates` signs a CSR or makes a key
 * and certificate for the caller, from the user CA; `GET` lists them (admins: anyone's, with
 * `user`); `DELETE /v1/certificates/{serial}` revokes one. A recorded, live certificate signs
 * requests in place of a token (see `Accounts.authenticate`).
 */
export const certificateFeature: DirectorFeature = {
  name: 'certificates',
  routes: certificateRoutes,
  create: (ctx) => ({
    controllers: [CertificatesController],
    providers: [{ provide: CERTIFICATES, useValue: new Certificates(ctx.core, ctx.accounts.users) }],
  }),
};
