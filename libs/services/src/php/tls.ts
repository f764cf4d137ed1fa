import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { ValidationError, type Issue } from '@cps/core';

/**
 * The proxy's HTTPS certificate as a user gives it: checked (a certificate, then its chain; a key
 * that is its key; not expired) before anything is recorded, and its key kept sealed in the
 * service's events with a key of the service (`ctx.secret`), never in clear.
 */

export interface CertificateView {
  readonly subject: string;
  readonly issuer: string;
  readonly validTo: string;
  readonly fingerprint256: string;
  readonly names: string[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Checks a certificate (PEM, the server's first, then its chain) and its key; what it says. */
export const checkCertificate = (certificate: string, key: string, now: Date): CertificateView => {
  const pems = certificate.match(PEM_CERT) ?? [];
  const fail = (issue: Issue): never => {
    throw new ValidationError(issue.message, [issue]);
  };
  if (pems.length === 0)
    fail({ path: '$.certificate', code: 'invalid_certificate', message: 'no PEM certificate in it' });
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pems[0]!);
    pems.slice(1).forEach((p) => new X509Certificate(p));
  } catch (e) {
    return fail({
      path: '$.certificate',
      code: 'invalid_certificate',
      message: `not a certificate: ${(e as Error).message}`,
    });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    return fail({
      path: '$.key',
      code: 'invalid_key',
      message: `not a private key: ${(e as Error).message}`,
    });
  }
  if (!x509.checkPrivateKey(privateKey))
    fail({ path: '$.key', code: 'key_mismatch', message: 'the key is not the certificate’s key' });
  if (Date.parse(x509.validTo) < now.getTime())
    fail({ path: '$.certificate', code: 'expired', message: `the certificate expired on ${x509.validTo}` });
  return {
    subject: x509.subject.replace(/\n/g, ', '),
    issuer: x509.issuer.replace(/\n/g, ', '),
    validTo: new Date(x509.validTo).toISOString(),
    fingerprint256: x509.fingerprint256,
    names: (x509.subjectAltName ?? '').split(', ').filter(Boolean),
  };
};

/** `secret` is a 43-character base64url secret of the service (32 bytes): AES-256-GCM. */
export const sealWith = (secret: string, clear: string): string => {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', Buffer.from(secret, 'base64url'), iv);
  const body = Buffer.concat([c.update(clear, 'utf8'), c.final()]);
  return [
    'v1',
    iv.toString('base64url'),
    c.getAuthTag().toString('base64url'),
    body.toString('base64url'),
  ].join(':');
};

export const openWith = (secret: string, sealed: string): string => {
  const [v, iv, tag, body] = sealed.split(':');
  if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('not a sealed value');
  const d = createDecipheriv('aes-256-gcm', Buffer.from(secret, 'base64url'), Buffer.from(iv, 'base64url'));
  d.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
};
