import { z } from 'zod';
import { createCsr } from '@cps/core';
import type { IdentityIssuer } from '../identity/identity-issuer.js';
import { signReenrollClaim } from '../identity/reenroll-proof.js';
import type { BusIdentity } from '../trust.js';
import { CsrSchema, parseRequest, replyOf, UserKeySchema } from './enrollment.js';
import { exchangeForIdentity, type EnrollReply, type ExchangeOptions } from './exchange.js';

/** Where the director serves re-enrollment (`POST`, JSON body {@link ReenrollRequest}). */
export const REENROLL_PATH = '/v1/nodes/reenroll';

/**
 * A node's re-enrollment request: the certificate it holds (expired, at most 30 days ago), a CSR for
 * a new key and the public half of a new nkey, the time it signed, and its signature of the three
 * with the key of that certificate. Unknown keys are refused.
 */
export const ReenrollRequestSchema = z.strictObject({
  cert: z
    .string()
    .max(16 * 1024)
    .regex(/-----BEGIN CERTIFICATE-----/, 'a PEM certificate'),
  csr: CsrSchema,
  userKey: UserKeySchema,
  signedAt: z.iso.datetime(),
  signature: z.string().min(1).max(2048),
});
export type ReenrollRequest = z.infer<typeof ReenrollRequestSchema>;

/**
 * The logic of `POST /v1/nodes/reenroll`, free of any HTTP framework: validates `body` and trades the
 * proof for fresh credentials through `issuer.reenroll`. A certificate that is not this platform's
 * node certificate, a bad or stale signature are `unauthenticated`; a revoked or removed identity, or
 * one expired too long ago, `forbidden` (the code says which).
 */
export const handleReenrollment = async (
  issuer: Pick<IdentityIssuer, 'reenroll'>,
  body: unknown,
): Promise<EnrollReply> =>
  replyOf(await issuer.reenroll(parseRequest(ReenrollRequestSchema, body, 're-enrollment')));

export interface ReenrollNodeOptions extends ExchangeOptions {
  /** The identity the node holds (its certificate expired, or about to). */
  readonly current: Pick<BusIdentity, 'tls'>;
  readonly clock?: () => Date;
}

/**
 * The node side of re-enrollment: makes a new RSA key and user nkey, proves at
 * `<url>/v1/nodes/reenroll` that it holds the key of `current`'s certificate (it signs the new CSR,
 * user key and the time with it), writes the new {@link BusIdentity} to `<nodeDir>/identity.json`
 * and returns it. Retries as enrollment does (network errors and 5xx, with the same request).
 */
export const reenrollNode = (o: ReenrollNodeOptions): Promise<BusIdentity> =>
  exchangeForIdentity(o, REENROLL_PATH, ({ key, user }): ReenrollRequest => {
    const claim = {
      csr: createCsr(key, 'cps-node'),
      userKey: user.publicKey,
      signedAt: (o.clock?.() ?? new Date()).toISOString(),
    };
    return { cert: o.current.tls.cert, ...claim, signature: signReenrollClaim(o.current.tls.key, claim) };
  });
