import { z } from 'zod';
import { createCsr, issuesFromZod, ValidationError, type Issue } from '@cps/core';
import { subjects } from '@cps/bus';
import type { Enrolled, IdentityIssuer } from '../identity/identity-issuer.js';
import type { BusIdentity } from '../trust.js';
import { exchangeForIdentity, type EnrollReply, type ExchangeOptions } from './exchange.js';

/** Where the director serves enrollment (`POST`, JSON body {@link EnrollRequest}). */
export const ENROLL_PATH = '/v1/nodes/enroll';

const USER_KEY = /^U[A-Z2-7]{55}$/;

/** A PEM certificate request, as a node sends it. */
export const CsrSchema = z
  .string()
  .max(16 * 1024)
  .regex(/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/, 'a PEM certificate request');
export const UserKeySchema = z.string().regex(USER_KEY, 'an nkey user public key');

/**
 * A node's enrollment request: its one-time token, a CSR for the key it made itself and the public
 * half of the nkey it made itself. Unknown keys are refused.
 */
export const EnrollRequestSchema = z.strictObject({
  token: z.string().min(1).max(200),
  csr: CsrSchema,
  userKey: UserKeySchema,
});
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

/** `body` parsed with `schema`, else a `validation` error naming each offending path. */
export const parseRequest = <S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> => {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issues: Issue[] = issuesFromZod(r.error);
  throw new ValidationError(
    `invalid ${what} request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
    issues,
  );
};

/** What the director answers a node that enrolled or re-enrolled. */
export const replyOf = (e: Enrolled): EnrollReply => ({
  identity: e.identity,
  cert: e.cert,
  ca: e.ca,
  jwt: e.jwt,
  expiresAt: e.expiresAt,
  inboxPrefix: subjects.inbox(e.identity),
});

/**
 * The logic of `POST /v1/nodes/enroll`, free of any HTTP framework: validates `body` (a
 * `validation` error naming each offending path), trades the token through `issuer.enroll` and
 * returns the reply. A bad, expired or used token is `unauthenticated`; other errors keep their
 * CpsError codes for the caller to map to HTTP statuses.
 */
export const handleEnrollment = async (
  issuer: Pick<IdentityIssuer, 'enroll'>,
  body: unknown,
): Promise<EnrollReply> => {
  const r = parseRequest(EnrollRequestSchema, body, 'enrollment');
  return replyOf(await issuer.enroll(r.token, r.csr, r.userKey));
};

export interface EnrollNodeOptions extends ExchangeOptions {
  readonly token: string;
}

/**
 * The node side of enrollment: makes the node's RSA key and user nkey (neither leaves the node),
 * trades `token` for a certificate and JWT at `<url>/v1/nodes/enroll` over HTTPS trusting only
 * `caPem`, writes the resulting {@link BusIdentity} to `<nodeDir>/identity.json` (0600, as
 * `joinBus` reads it) and returns it. Network errors and 5xx replies are retried with back-off and
 * the same request (the director recognises the retry even when it redeemed the token the first
 * time), 4xx never; an error reply surfaces as a CpsError with the reply's `code` (`unauthenticated`
 * for a bad or used token). Nothing is written unless enrollment succeeds.
 */
export const enrollNode = (o: EnrollNodeOptions): Promise<BusIdentity> =>
  exchangeForIdentity(o, ENROLL_PATH, ({ key, user }): EnrollRequest => ({
    token: o.token,
    csr: createCsr(key, 'cps-node'),
    userKey: user.publicKey,
  }));
