import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import forge from 'node-forge';
import {
  createCsr,
  createIssuingCa,
  createRootCa,
  generateKeyPair,
  hasErrorCode,
  identityFromUri,
  identityToUri,
  inspectCertificate,
  isIssuedBy,
  issueCertificate,
  publicKeyFromCsr,
  type Identity,
} from '@cps/core';

const now = new Date('2026-11-24T12:00:00Z');
const DAY = 86_400_000;
const keys = Array.from({ length: 4 }, () => generateKeyPair());
const root = createRootCa({ commonName: 'root', now, validForMs: 10 * DAY, key: keys[0] });
const bus = createIssuingCa(root, { commonName: 'bus', now, validForMs: 5 * DAY, key: keys[1] });
const agent: Identity = { role: 'agent', id: 'n1', userId: 'u1', appId: 'a1', serviceId: 's1', nodeId: 'n1' };

describe('PKI', () => {
  it('builds root -> issuing CA -> leaf, signed with SHA-256', () => {
    const leaf = issueCertificate(bus, {
      identity: agent,
      usage: 'client',
      publicKeyPem: keys[2]!.publicKeyPem,
      now,
      validForMs: DAY,
    });
    expect(isIssuedBy(bus.certPem, root.certPem)).toBe(true);
    expect(isIssuedBy(leaf, bus.certPem)).toBe(true);
    expect(isIssuedBy(leaf, root.certPem)).toBe(false);
    // the native signature is exactly the one forge computes in JavaScript (PKCS#1 v1.5 is deterministic)
    const parsed = forge.pki.certificateFromPem(leaf);
    const native = parsed.signature as string;
    parsed.sign(forge.pki.privateKeyFromPem(bus.keyPem), forge.md.sha256.create());
    expect(Buffer.from(parsed.signature as string, 'binary').equals(Buffer.from(native, 'binary'))).toBe(
      true,
    );
    for (const pem of [root.certPem, bus.certPem, leaf]) {
      expect(forge.pki.oids[forge.pki.certificateFromPem(pem).siginfo.algorithmOid]).toBe(
        'sha256WithRSAEncryption',
      );
    }
    const x = new X509Certificate(leaf);
    expect(x.ca).toBe(false);
    expect(new X509Certificate(bus.certPem).ca).toBe(true);
    expect(x.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
    expect(x.keyUsage).not.toContain('1.3.6.1.5.5.7.3.1');
  });

  it('carries the identity in a URI SAN and the subject, with random positive serials', () => {
    const a = issueCertificate(bus, {
      identity: agent,
      usage: 'client',
      publicKeyPem: keys[2]!.publicKeyPem,
      now,
      validForMs: DAY,
    });
    const b = issueCertificate(bus, {
      identity: agent,
      usage: 'client',
      publicKeyPem: keys[2]!.publicKeyPem,
      now,
      validForMs: DAY,
    });
    const ia = inspectCertificate(a);
    expect(ia.identity).toEqual(agent);
    expect(ia.subject).toContain('CN=agent:n1');
    expect(ia.serial).not.toBe(inspectCertificate(b).serial);
    expect(parseInt(ia.serial.slice(0, 2), 16) & 0x80).toBe(0);
    expect(ia.serial.length).toBeGreaterThanOrEqual(30);
    expect(ia.notAfter.getTime()).toBe(now.getTime() + DAY);
  });

  it('puts DNS and IP SANs and serverAuth on server certificates', () => {
    const pem = issueCertificate(bus, {
      identity: { role: 'server', id: 'nats-n1' },
      usage: 'server+client',
      publicKeyPem: keys[3]!.publicKeyPem,
      now,
      validForMs: DAY,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const x = new X509Certificate(pem);
    expect(x.checkHost('localhost')).toBe('localhost');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
  });

  it('signs a CSR with the key of the CSR and the identity of the issuer, never the subject asked for', () => {
    const csr = createCsr(keys[3]!, 'admin:root-please');
    const pub = publicKeyFromCsr(csr);
    const leaf = issueCertificate(bus, {
      identity: agent,
      usage: 'client',
      publicKeyPem: pub,
      now,
      validForMs: DAY,
    });
    expect(new X509Certificate(leaf).publicKey.export({ type: 'spki', format: 'pem' })).toBe(
      keys[3]!.publicKeyPem,
    );
    expect(inspectCertificate(leaf).subject).not.toContain('root-please');
  });

  it('refuses malformed, tampered and weak CSRs with validation errors at $.csr', () => {
    expect(() => publicKeyFromCsr('not a csr')).toThrow(
      expect.objectContaining({ code: 'validation', issues: [expect.objectContaining({ path: '$.csr' })] }),
    );
    const csr = createCsr(keys[2]!, 'x');
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 1] = der[der.length - 1]! ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => publicKeyFromCsr(tampered)).toThrow(/signature/);
    const weak = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
    const weakCsr = forge.pki.createCertificationRequest();
    weakCsr.publicKey = weak.publicKey;
    weakCsr.sign(weak.privateKey, forge.md.sha256.create());
    let caught: unknown;
    try {
      publicKeyFromCsr(forge.pki.certificationRequestToPem(weakCsr));
    } catch (e) {
      caught = e;
    }
    expect(hasErrorCode(caught, 'validation')).toBe(true);
    expect(() => generateKeyPair(1024)).toThrow(/2048/);
  });

  it('round-trips identities through SPIFFE-style URIs and rejects foreign ones', () => {
    expect(identityFromUri(identityToUri(agent))).toEqual(agent);
    expect(identityFromUri(identityToUri({ role: 'director', id: 'd1' }))).toEqual({
      role: 'director',
      id: 'd1',
    });
    for (const bad of [
      'spiffe://other/agent/n1',
      'spiffe://cps/root/x',
      'spiffe://cps/agent',
      'spiffe://cps/agent/n1/app',
      'spiffe://cps/agent/n1/evil/x',
      'http://cps/agent/n1',
    ]) {
      expect(identityFromUri(bad)).toBeUndefined();
    }
  });
});
