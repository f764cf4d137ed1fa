import { z } from 'zod';
import { RefSchema, TimeSchema } from '../api/schemas.js';

/** The largest CSR accepted, in bytes (the PEM is ASCII: characters are bytes). */
export const CSR_MAX_BYTES = 16 * 1024;
/** Validity of an issued certificate, in days. */
export const MIN_DAYS = 1;
export const MAX_DAYS = 365;
export const DEFAULT_DAYS = 90;

/** One PKCS#10 request in PEM, ASCII only. */
const PEM_CSR =
  /^[\r\n\t ]*-----BEGIN CERTIFICATE REQUEST-----[A-Za-z0-9+/=\r\n\t ]+-----END CERTIFICATE REQUEST-----[\r\n\t ]*$/;

/** Certificate serials as this API shows them: lowercase hex. */
export const SerialSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{2,64}$/, 'a certificate serial (hex)')
  .transform((s) => s.toLowerCase());

/**
 * `POST /v1/certificates`: exactly one of `csr` (the caller keeps the key) or `bundle: true` (the
 * director makes the key and answers it once). The subject of a CSR is ignored.
 */
export const NewCertificateSchema = z
  .strictObject({
    csr: z
      .string()
      .max(CSR_MAX_BYTES, { abort: true })
      .regex(PEM_CSR, 'a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)')
      .optional()
      .describe('a PKCS#10 request in PEM (RSA >= 2048 bits); its subject is ignored'),
    bundle: z
      .literal(true)
      .optional()
      .describe('the director generates the key and answers it once, with the certificate'),
    days: z.number().int().min(MIN_DAYS).max(MAX_DAYS).default(DEFAULT_DAYS).describe('validity'),
  })
  .superRefine((b, ctx) => {
    if (b.csr === undefined && b.bundle === undefined)
      ctx.addIssue({ code: 'custom', path: [], message: 'give `csr` or `bundle: true`' });
    if (b.csr !== undefined && b.bundle !== undefined)
      ctx.addIssue({ code: 'custom', path: ['bundle'], message: '`csr` and `bundle` exclude each other' });
  })
  .describe('exactly one of `csr` and `bundle`');
export type NewCertificate = z.output<typeof NewCertificateSchema>;

export const CertificateSchema = z
  .object({
    serial: z.string().describe('lowercase hex'),
    subject: z.string(),
    notAfter: TimeSchema,
    createdAt: TimeSchema,
    revoked: z.boolean(),
  })
  .meta({ id: 'ClientCertificate' });

export const CertificateListSchema = z
  .object({ certificates: z.array(CertificateSchema) })
  .meta({ id: 'ClientCertificateList' });

export const IssuedCertificateSchema = z
  .object({
    serial: z.string().describe('lowercase hex'),
    subject: z.string(),
    notAfter: TimeSchema,
    certificate: z.string().describe('PEM: the certificate, then the user CA that issued it'),
    privateKey: z
      .string()
      .optional()
      .describe('PEM (PKCS#8), `bundle` only: shown once, never stored by the director'),
    ca: z.string().describe('PEM: the CAs to trust for the director’s own certificate'),
  })
  .meta({ id: 'IssuedClientCertificate' });

export const CertificatesQuerySchema = z.strictObject({
  user: RefSchema.optional().describe('a user (id or name): admins may list anyone’s'),
});

export const SerialParamsSchema = z.object({ serial: SerialSchema });
