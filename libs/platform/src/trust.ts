import { createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import type { NodeCertifier } from '@cps/clouds';
import {
  createIssuingCa,
  createRootCa,
  generateKeyPair,
  issueCertificate,
  type CertificateAuthority,
  type Identity,
  type KeyPair,
  ValidationError,
} from '@cps/core';
import {
  createOperatorMaterial,
  issueUserCredentials,
  type BusCredentials,
  type OperatorMaterial,
  type TlsMaterial,
} from '@cps/bus';

const DAY = 24 * 3600_000;

/**
 * Everything secret a platform is made of: the root CA, the bus and user issuing CAs, the services
 * CA and the NATS operator material. Kept sealed at rest by the bootstrap module.
 */
export interface PlatformSecrets {
  readonly root: CertificateAuthority;
  readonly busCa: CertificateAuthority;
  readonly userCa: CertificateAuthority;
  /**
   * Signs the HTTPS certificates of services (a php proxy's). A root of its own, not under `root`:
   * tenants hold the keys of what it signs, and nothing of the platform (the bus, the director's
   * API) trusts it, so such a certificate can never pass for one of the platform's servers.
   */
  readonly servicesCa: CertificateAuthority;
  readonly operator: OperatorMaterial;
}

export interface KeySource {
  next(): KeyPair;
}

export const freshKeys: KeySource = { next: () => generateKeyPair() };

export const createPlatformSecrets = (now: Date, keys: KeySource = freshKeys): PlatformSecrets => {
  const root = createRootCa({ commonName: 'cps root', now, validForMs: 3650 * DAY, key: keys.next() });
  return {
    root,
    busCa: createIssuingCa(root, { commonName: 'cps bus', now, validForMs: 1825 * DAY, key: keys.next() }),
    userCa: createIssuingCa(root, { commonName: 'cps users', now, validForMs: 1825 * DAY, key: keys.next() }),
    servicesCa: createServicesCa(now, keys),
    operator: createOperatorMaterial(),
  };
};

/** The services CA (see {@link PlatformSecrets.servicesCa}); also made for homes created before it. */
export const createServicesCa = (now: Date, keys: KeySource = freshKeys): CertificateAuthority =>
  createRootCa({ commonName: 'cps services', now, validForMs: 3650 * DAY, key: keys.next() });

/** How long a service's certificate from the services CA is valid. */
export const SERVICE_CERT_TTL_MS = 90 * DAY;

/**
 * Signs nodes' HTTPS certificates with the services CA (the Provisioner's certifier): for an RSA
 * public key of 2048 bits or more, naming the hosts the Provisioner gives; the identity (`server`,
 * the node, its application and service) is in the subject.
 */
export const servicesCertifier = (
  s: Pick<PlatformSecrets, 'servicesCa'>,
  now: () => Date = () => new Date(),
): NodeCertifier => ({
  certify: (o) => {
    const at = now();
    const certificate = issueCertificate(s.servicesCa, {
      identity: { role: 'server', id: o.nodeId, appId: o.appId, serviceId: o.serviceId },
      usage: 'server',
      publicKeyPem: rsaPublicKey(o.publicKeyPem),
      now: at,
      validForMs: SERVICE_CERT_TTL_MS,
      dnsNames: o.hosts.filter((h) => isIP(h) === 0),
      ipAddresses: o.hosts.filter((h) => isIP(h) !== 0),
    });
    return {
      certificate,
      ca: s.servicesCa.certPem,
      notAfter: new Date(at.getTime() + SERVICE_CERT_TTL_MS).toISOString(),
    };
  },
});

/** An RSA public key of 2048 bits or more (what the CA signs), else a validation error on the field. */
const rsaPublicKey = (pem: string): string => {
  const bad = (message: string): never => {
    throw new ValidationError(message, [{ path: '$.publicKeyPem', code: 'invalid_key', message }]);
  };
  let key;
  try {
    key = createPublicKey(pem);
  } catch {
    return bad('not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
    bad('an RSA key of 2048 bits or more is needed');
  return key.export({ type: 'spki', format: 'pem' }).toString();
};

/** The CA bundle every bus party trusts: the bus issuing CA and the root. */
export const busTrustPem = (s: Pick<PlatformSecrets, 'busCa'>): string =>
  [s.busCa.certPem, ...s.busCa.chainPem].join('');

/**
 * A nats-server certificate: serves clients and cluster routes (it is also the route's client
 * certificate). Names default to loopback; a cluster server is named by the host name its clients
 * and peers dial.
 */
export const issueServerCert = (
  s: PlatformSecrets,
  name: string,
  now: Date,
  key: KeyPair,
  hosts: readonly string[] = ['localhost', '127.0.0.1'],
): string =>
  issueCertificate(s.busCa, {
    identity: { role: 'server', id: name },
    usage: 'server+client',
    publicKeyPem: key.publicKeyPem,
    now,
    validForMs: 365 * DAY,
    dnsNames: hosts.filter((h) => isIP(h) === 0),
    ipAddresses: hosts.filter((h) => isIP(h) !== 0),
  });

/** What a process needs to join the bus as `identity`: TLS material plus JWT credentials. */
export interface BusIdentity {
  readonly tls: TlsMaterial;
  readonly credentials: { readonly jwt: string; readonly seed: string };
  readonly inboxPrefix: string;
  readonly identity: Identity;
  readonly certExpiresAt: Date;
  readonly bus: BusCredentials;
}

/** Issues a certificate and a user JWT for `identity` (the issuer side of enrollment). */
export const issueBusIdentity = async (
  s: PlatformSecrets,
  identity: Identity,
  opts: { now: Date; ttlMs: number; key: KeyPair },
): Promise<BusIdentity> => {
  const cert = issueCertificate(s.busCa, {
    identity,
    usage: 'client',
    publicKeyPem: opts.key.publicKeyPem,
    now: opts.now,
    validForMs: opts.ttlMs,
  });
  const bus = await issueUserCredentials(s.operator, identity, { now: opts.now, ttlMs: opts.ttlMs });
  return {
    tls: { ca: busTrustPem(s), cert: [cert, s.busCa.certPem].join(''), key: opts.key.privateKeyPem },
    credentials: { jwt: bus.jwt, seed: bus.seed as string },
    inboxPrefix: bus.inboxPrefix,
    identity,
    certExpiresAt: new Date(opts.now.getTime() + opts.ttlMs),
    bus,
  };
};
