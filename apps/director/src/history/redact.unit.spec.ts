import { describe, expect, it } from 'vitest';
import { newSealingKeyMaterial, seal, sealingKeyFrom } from '@cps/core';
import { isSecretName, REDACTED, redactSecrets } from './redact.js';

describe('redactSecrets', () => {
  it('replaces fields named like secrets, at any depth, and keeps the rest', () => {
    const data = {
      userId: 'u1',
      username: 'alice',
      passwordHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
      token: { tokenId: 't1', hash: 'a'.repeat(64) },
      grants: [{ tokenId: 't1', hash: 'a'.repeat(64), name: 'ci', scopes: ['read'] }],
      nested: { deeper: { apiKey: 'k', client_secret: 's', 'private-key': 'p', tokenHash: 'h', count: 3 } },
      config: { password: { nested: 'object' }, secrets: ['a', 'b'], keyName: 'main', tokenId: 'x' },
      digest: 'b'.repeat(64),
      nothing: null,
    };
    expect(redactSecrets(data)).toEqual({
      userId: 'u1',
      username: 'alice',
      passwordHash: REDACTED,
      // a field named like a secret goes whole, whatever it holds
      token: REDACTED,
      grants: [{ tokenId: 't1', hash: REDACTED, name: 'ci', scopes: ['read'] }],
      nested: {
        deeper: {
          apiKey: REDACTED,
          client_secret: REDACTED,
          'private-key': REDACTED,
          tokenHash: REDACTED,
          count: 3,
        },
      },
      config: { password: REDACTED, secrets: REDACTED, keyName: 'main', tokenId: 'x' },
      digest: 'b'.repeat(64),
      nothing: null,
    });
    // the input is left as it was
    expect(data.passwordHash).toMatch(/^scrypt\$/);
  });

  it('replaces values that are secrets by their form, whatever their field', () => {
    const key = sealingKeyFrom(newSealingKeyMaterial());
    const sealed = seal(key, 'db-password');
    const out = redactSecrets({
      config: { dbUrl: sealed, list: ['plain', sealed] },
      note: 'scrypt$16384$8$1$x$y',
      bearer: `cps_t0123456789ab_${'A'.repeat(43)}`,
      pem: '-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n',
      seedish: `SU${'A'.repeat(56)}`,
      certificate: '-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n',
    });
    expect(out).toEqual({
      config: { dbUrl: REDACTED, list: ['plain', REDACTED] },
      note: REDACTED,
      bearer: REDACTED,
      pem: REDACTED,
      seedish: REDACTED,
      certificate: '-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n',
    });
    expect(JSON.stringify(out)).not.toContain('cps-sealed:');
  });

  it('passes scalars and empty shapes through', () => {
    expect(redactSecrets(3)).toBe(3);
    expect(redactSecrets('hello')).toBe('hello');
    expect(redactSecrets(null)).toBe(null);
    expect(redactSecrets(undefined)).toBe(undefined);
    expect(redactSecrets([])).toEqual([]);
    expect(redactSecrets({})).toEqual({});
  });

  it('tells secret names from names that refer to secrets', () => {
    for (const n of [
      'password',
      'passwordHash',
      'hash',
      'token',
      'TOKEN',
      'api_key',
      'userKey',
      'tokenHash',
      'apikey',
    ])
      expect(isSecretName(n), n).toBe(true);
    for (const n of ['tokenId', 'keyName', 'serial', 'digest', 'owner', 'monkey', 'credit', 'id'])
      expect(isSecretName(n), n).toBe(false);
  });
});
