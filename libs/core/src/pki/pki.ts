import {
  constants,
  generateKeyPair as generateKeyPairCb,
  privateEncrypt,
  generateKeyPairSync,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { createRequire } from 'node:module';
import type Forge from 'node-forge';
import { ValidationError } from '../errors/cps-error.js';
import { identityFromUri, identityToUri, type Identity } from './identity.js';

let loaded: typeof Forge | undefined;
/** node-forge, loaded at first use: most processes that import this library never sign anything. */
const forge = (): typeof Forge => (loaded ??= createRequire(import.meta.url)('node-forge') as typeof Forge);

export interface KeyPair {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/** A CA: its certificate and private key (PEM), plus the chain above it (PEM, leaf-first). */
export interface CertificateAuthority {
  readonly certPem: string;
  readonly keyPem: string;
  readonly chainPem: readonly string[];
}

export type CertUsage = 'server' | 'client' | 'server+client';

export interface IssueOptions {
  readonly identity: Identity;
  readonly usage: CertUsage;
  readonly publicKeyPem: string;
  readonly now: Date;
  readonly validForMs: number;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface CertificateInfo {
  readonly serial: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly identity?: Identity;
  readonly fingerprint256: string;
}

const RSA_BITS = 2048;
const CLOCK_SKEW_MS = 5 * 60_000;

/** RSA key pair from Node's native generator (forge's is ~50x slower). */
export const generateKeyPair = (bits = RSA_BITS): KeyPair => {
  if (bits < RSA_BITS) throw new ValidationError(`RSA keys must have at least ${RSA_BITS} bits`);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
};

/** Like {@link generateKeyPair}, off the event loop (Node's thread pool). */
export const generateKeyPairAsync = (bits = RSA_BITS): Promise<KeyPair> => {
  if (bits < RSA_BITS)
    return Promise.reject(new ValidationError(`RSA keys must have at least ${RSA_BITS} bits`));
  return new Promise((resolve, reject) =>
    generateKeyPairCb(
      'rsa',
      {
        modulusLength: bits,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      },
      (err, publicKey, privateKey) =>
        err ? reject(err) : resolve({ privateKeyPem: privateKey, publicKeyPem: publicKey }),
    ),
  );
};

/**
 * Keeps a few key pairs generated ahead (in the thread pool), so issuing an identity does not wait
 * ~170 ms for RSA generation.
 */
export class KeyPairPool {
  private readonly ready: Promise<KeyPair>[] = [];

  constructor(private readonly size = 4) {
    for (let i = 0; i < size; i++) this.ready.push(generateKeyPairAsync());
  }

  take(): Promise<KeyPair> {
    const next = this.ready.shift() ?? generateKeyPairAsync();
    this.ready.push(generateKeyPairAsync());
    return next;
  }
}

/** A random positive serial of 128 bits (the high bit cleared so DER keeps it positive). */
const randomSerial = (): string => {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x01;
  return b.toString('hex');
};

/** The DER prefix of a SHA-256 DigestInfo (RFC 8017, section 9.2, note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * The private key as forge's signer, signing with Node's native RSA: RSASSA-PKCS1-v1_5 over the
 * SHA-256 digest forge computed of what it signs (a certificate's or a CSR's to-be-signed part).
 * The signature is the same forge would make in JavaScript, about 50x faster.
 */
const nativeSigner = (keyPem: string): Forge.pki.rsa.PrivateKey =>
  ({
    sign: (md: Forge.md.MessageDigest): string => {
      if (md.algorithm !== 'sha256')
        throw new Error(`only SHA-256 signatures are made here, not ${md.algorithm}`);
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      return privateEncrypt(
        { key: keyPem, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO, digest]),
      ).toString('binary');
    },
  }) as unknown as Forge.pki.rsa.PrivateKey;

const attrsFor = (cn: string, ou?: string): Forge.pki.CertificateField[] => [
  { shortName: 'O', value: 'cps' },
  ...(ou ? [{ shortName: 'OU', value: ou }] : []),
  { shortName: 'CN', value: cn },
];

const newCert = (publicKeyPem: string, now: Date, validForMs: number): Forge.pki.Certificate => {
  const cert = forge().pki.createCertificate();
  cert.publicKey = forge().pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + validForMs);
  return cert;
};

const signWith = (cert: Forge.pki.Certificate, keyPem: string): string => {
  cert.sign(nativeSigner(keyPem), forge().md.sha256.create());
  return forge().pki.certificateToPem(cert);
};

/** A self-signed platform root CA. */
export const createRootCa = (opts: {
  commonName: string;
  now: Date;
  validForMs: number;
  key?: KeyPair;
}): CertificateAuthority => {
  const key = opts.key ?? generateKeyPair(3072);
  const cert = newCert(key.publicKeyPem, opts.now, opts.validForMs);
  cert.setSubject(attrsFor(opts.commonName, 'root'));
  cert.setIssuer(attrsFor(opts.commonName, 'root'));
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  return { certPem: signWith(cert, key.privateKeyPem), keyPem: key.privateKeyPem, chainPem: [] };
};

/** An issuing CA under `parent` (path length 0: it signs leaves only). */
export const createIssuingCa = (
  parent: CertificateAuthority,
  opts: { commonName: string; now: Date; validForMs: number; key?: KeyPair },
): CertificateAuthority => {
  const key = opts.key ?? generateKeyPair();
  const parentCert = forge().pki.certificateFromPem(parent.certPem);
  const cert = newCert(key.publicKeyPem, opts.now, opts.validForMs);
  cert.setSubject(attrsFor(opts.commonName, 'issuing'));
  cert.setIssuer(parentCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  return {
    certPem: signWith(cert, parent.keyPem),
    keyPem: key.privateKeyPem,
    chainPem: [parent.certPem, ...parent.chainPem],
  };
};

/** Issues a leaf certificate for `identity`: the identity is in the subject DN and a URI SAN. */
export const issueCertificate = (ca: CertificateAuthority, opts: IssueOptions): string => {
  const caCert = forge().pki.certificateFromPem(ca.certPem);
  const cert = newCert(opts.publicKeyPem, opts.now, opts.validForMs);
  cert.setSubject(attrsFor(`${opts.identity.role}:${opts.identity.id}`, opts.identity.role));
  cert.setIssuer(caCert.subject.attributes);
  const altNames: { type: number; value?: string; ip?: string }[] = [
    { type: 6, value: identityToUri(opts.identity) },
  ];
  for (const d of opts.dnsNames ?? []) altNames.push({ type: 2, value: d });
  for (const ip of opts.ipAddresses ?? []) altNames.push({ type: 7, ip });
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: 'extKeyUsage',
      serverAuth: opts.usage !== 'client',
      clientAuth: opts.usage !== 'server',
    },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  return signWith(cert, ca.keyPem);
};

/** A CSR made where the private key lives (the user's machine, a cloud node). */
export const createCsr = (key: KeyPair, commonName: string): string => {
  const csr = forge().pki.createCertificationRequest();
  csr.publicKey = forge().pki.publicKeyFromPem(key.publicKeyPem);
  csr.setSubject([{ shortName: 'CN', value: commonName }]);
  csr.sign(nativeSigner(key.privateKeyPem), forge().md.sha256.create());
  return forge().pki.certificationRequestToPem(csr);
};

/**
 * Checks a CSR's self-signature and key size and returns its public key. The subject the CSR asks
 * for is ignored: the issuer decides the identity.
 */
export const publicKeyFromCsr = (csrPem: string): string => {
  let csr: ReturnType<typeof Forge.pki.certificationRequestFromPem>;
  try {
    csr = forge().pki.certificationRequestFromPem(csrPem);
  } catch (e) {
    throw new ValidationError(
      'malformed CSR',
      [{ path: '$.csr', code: 'malformed', message: 'not a PEM CSR' }],
      { cause: e },
    );
  }
  let verified: boolean;
  try {
    verified = csr.verify();
  } catch {
    verified = false; // forge throws on a garbled signature block
  }
  if (!verified)
    throw new ValidationError('CSR signature does not verify', [
      { path: '$.csr', code: 'bad_signature', message: 'signature does not verify' },
    ]);
  const pub = csr.publicKey as Forge.pki.rsa.PublicKey | null;
  if (!pub || pub.n.bitLength() < RSA_BITS) {
    throw new ValidationError(`CSR key must be RSA >= ${RSA_BITS} bits`, [
      { path: '$.csr', code: 'weak_key', message: `RSA >= ${RSA_BITS} bits required` },
    ]);
  }
  return forge().pki.publicKeyToPem(pub);
};

/** Reads what cps needs from a certificate (Node's parser: also checks the PEM is sound). */
export const inspectCertificate = (pem: string): CertificateInfo => {
  const x = new X509Certificate(pem);
  const uri = (x.subjectAltName ?? '')
    .split(', ')
    .find((s) => s.startsWith('URI:'))
    ?.slice(4);
  const identity = uri ? identityFromUri(uri) : undefined;
  return {
    serial: x.serialNumber.toLowerCase(),
    subject: x.subject,
    issuer: x.issuer,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    fingerprint256: x.fingerprint256,
    ...(identity ? { identity } : {}),
  };
};

/** True when `certPem` was signed by `caPem` (signature check only). */
export const isIssuedBy = (certPem: string, caPem: string): boolean =>
  new X509Certificate(certPem).verify(new X509Certificate(caPem).publicKey);
