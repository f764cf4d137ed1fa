import { createHash, sign, verify, X509Certificate } from 'node:crypto';

/** What a re-enrolling node asks for: a CSR for its new key and the public half of its new nkey. */
export interface ReenrollClaim {
  readonly csr: string;
  readonly userKey: string;
  /** When the node signed (ISO 8601); the director accepts {@link REENROLL_PROOF_WINDOW_MS} either side. */
  readonly signedAt: string;
}

/** How far `signedAt` may lie from the director's clock (5 minutes). */
export const REENROLL_PROOF_WINDOW_MS = 5 * 60_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** SHA-256 (hex) of a public key's PEM: how the issuer recognises a requester's certificate key. */
export const keyHashOf = (publicKeyPem: string): string => sha256(publicKeyPem.trim());

/** The text signed: a fixed label, the time, the CSR's digest and the user key, one a line. */
const proofText = (c: ReenrollClaim): Buffer =>
  Buffer.from(`cps-reenroll/v1\n${c.signedAt}\n${sha256(c.csr)}\n${c.userKey}`, 'utf8');

/** Signs `claim` with the private key of the node's current (possibly expired) certificate; base64. */
export const signReenrollClaim = (privateKeyPem: string, claim: ReenrollClaim): string =>
  sign('sha256', proofText(claim), privateKeyPem).toString('base64');

/** True when `signature` is `claim` signed by the key `certPem` (its first certificate) certifies. */
export const verifyReenrollClaim = (certPem: string, claim: ReenrollClaim, signature: string): boolean => {
  try {
    return verify(
      'sha256',
      proofText(claim),
      new X509Certificate(certPem).publicKey,
      Buffer.from(signature, 'base64'),
    );
  } catch {
    return false;
  }
};
