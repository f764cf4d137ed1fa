import { defineRoute } from '../api/route.js';
import {
  CertificateListSchema,
  CertificatesQuerySchema,
  IssuedCertificateSchema,
  NewCertificateSchema,
  SerialParamsSchema,
} from './certificates.schemas.js';

/** The routes of client certificates: issue, list, revoke. */
export const certificateRoutes = {
  createCertificate: defineRoute({
    operationId: 'createCertificate',
    method: 'POST',
    path: '/v1/certificates',
    summary:
      'A client certificate for yourself, from the user CA: sign your CSR, or (`bundle`) a new key and its certificate, the key shown once',
    tag: 'users',
    body: NewCertificateSchema,
    response: IssuedCertificateSchema,
    errors: ['quota_exceeded', 'conflict'],
  }),
  listCertificates: defineRoute({
    operationId: 'listCertificates',
    method: 'GET',
    path: '/v1/certificates',
    summary: 'Your client certificates, keys never shown (admins: anyone’s, with `user`)',
    tag: 'users',
    query: CertificatesQuerySchema,
    response: CertificateListSchema,
  }),
  revokeCertificate: defineRoute({
    operationId: 'revokeCertificate',
    method: 'DELETE',
    path: '/v1/certificates/{serial}',
    summary: 'Revoke one of your client certificates: the next request with it is refused',
    tag: 'users',
    params: SerialParamsSchema,
    status: 204,
  }),
} as const;
