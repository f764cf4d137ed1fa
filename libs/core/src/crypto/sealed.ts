import { createCipheriv, createDecipheriv, createHmac, randomBytes, scryptSync } from 'node:crypto';
import { CpsError } from '../errors/cps-error.js';

const PREFIX = 'cps-sealed:v1:';

/** A 256-bit key that seals secrets at rest (AES-256-GCM). */
export interface SealingKey {
  readonly bytes: Buffer;
}

/**
 * Accepts a base64 32-byte key, or any passphrase of 16+ characters (stretched with scrypt
 * under a fixed, public salt: the passphrase carries the entropy).
 */
export const sealingKeyFrom = (material: string): SealingKey => {
  const trimmed = material.trim();
  const raw = Buffer.from(trimmed, 'base64');
  if (raw.length === 32 && raw.toString('base64') === trimmed) return { bytes: raw };
  if (trimmed.length < 16)
    throw new CpsError(
      'validation',
      'the master key must be 32 bytes base64 or a passphrase of 16+ characters',
    );
  return { bytes: scryptSync(trimmed, 'cps-master-key-v1', 32) };
};

export const newSealingKeyMaterial = (): string => randomBytes(32).toString('base64');

export const seal = (key: SealingKey, plaintext: string | Buffer, context = ''): string => {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key.bytes, iv);
  c.setAAD(Buffer.from(context));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return PREFIX + [iv, c.getAuthTag(), ct].map((b) => b.toString('base64')).join(':');
};

export const isSealed = (text: string): boolean => text.startsWith(PREFIX);

export const unseal = (key: SealingKey, sealed: string, context = ''): Buffer => {
  if (!isSealed(sealed)) throw new CpsError('validation', 'not a sealed value');
  const [iv, tag, ct] = sealed
    .slice(PREFIX.length)
    .split(':')
    .map((s) => Buffer.from(s, 'base64'));
  if (!iv || !tag || !ct) throw new CpsError('validation', 'malformed sealed value');
  const d = createDecipheriv('aes-256-gcm', key.bytes, iv);
  d.setAAD(Buffer.from(context));
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(ct), d.final()]);
  } catch (e) {
    throw new CpsError(
      'unauthenticated',
      'sealed value does not open with this key (wrong master key?)',
      [],
      { cause: e },
    );
  }
};

/**
 * A secret derived from `key` for `purpose` (HMAC-SHA-256, 43 characters of base64url): the same for
 * the same key and purpose, stored nowhere, and telling nothing of the key or of another purpose's.
 */
export const deriveSecret = (key: SealingKey, purpose: string): string =>
  createHmac('sha256', key.bytes).update(`cps-derived-v1\0${purpose}`).digest('base64url');
