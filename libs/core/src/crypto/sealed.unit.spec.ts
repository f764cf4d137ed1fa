import { describe, expect, it } from 'vitest';
import {
  deriveSecret,
  hasErrorCode,
  isSealed,
  newSealingKeyMaterial,
  seal,
  sealingKeyFrom,
  unseal,
} from '@cps/core';

const attempt = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe('sealing at rest (AES-256-GCM)', () => {
  const key = sealingKeyFrom(newSealingKeyMaterial());

  it('round-trips, and never shows the clear text', () => {
    const s = seal(key, '-----BEGIN PRIVATE KEY-----secret', 'ctx');
    expect(isSealed(s)).toBe(true);
    expect(s).not.toContain('secret');
    expect(unseal(key, s, 'ctx').toString()).toBe('-----BEGIN PRIVATE KEY-----secret');
    expect(seal(key, 'x')).not.toBe(seal(key, 'x'));
  });

  it('refuses another key, another context, and tampering', () => {
    const s = seal(key, 'secret', 'ctx');
    expect(
      hasErrorCode(
        attempt(() => unseal(sealingKeyFrom(newSealingKeyMaterial()), s, 'ctx')),
        'unauthenticated',
      ),
    ).toBe(true);
    expect(
      hasErrorCode(
        attempt(() => unseal(key, s, 'other')),
        'unauthenticated',
      ),
    ).toBe(true);
    const parts = s.split(':');
    const ct = Buffer.from(parts.at(-1)!, 'base64');
    ct[0] = ct[0]! ^ 1;
    expect(
      hasErrorCode(
        attempt(() => unseal(key, [...parts.slice(0, -1), ct.toString('base64')].join(':'), 'ctx')),
        'unauthenticated',
      ),
    ).toBe(true);
    expect(
      hasErrorCode(
        attempt(() => unseal(key, 'plain', 'ctx')),
        'validation',
      ),
    ).toBe(true);
  });

  it('accepts a 32-byte base64 key or a long passphrase, nothing weaker', () => {
    expect(sealingKeyFrom('a passphrase of sixteen+').bytes).toHaveLength(32);
    expect(
      hasErrorCode(
        attempt(() => sealingKeyFrom('short')),
        'validation',
      ),
    ).toBe(true);
  });

  it('derives one stable secret per key and purpose, unrelated to the others', () => {
    const other = sealingKeyFrom(newSealingKeyMaterial());
    const a = deriveSecret(key, 'svc:s1/admin');
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(deriveSecret(key, 'svc:s1/admin')).toBe(a);
    expect(deriveSecret(key, 'svc:s1/replication')).not.toBe(a);
    expect(deriveSecret(other, 'svc:s1/admin')).not.toBe(a);
  });
});
