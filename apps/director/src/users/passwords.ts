import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, n: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const o: ScryptOptions = { N: n, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
    scryptCb(password.normalize('NFKC'), salt, 32, o, (err, key) => (err ? reject(err) : resolve(key)));
  });

/** scrypt cost (2^15: ~100 ms on this class of machine; tests may lower it). */
export const DEFAULT_SCRYPT_N = 2 ** 15;

/** `scrypt$<N>$<salt>$<hash>` with a fresh 16-byte salt per password. */
export const hashPassword = async (password: string, n = DEFAULT_SCRYPT_N): Promise<string> => {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, n);
  return `scrypt$${n}$${salt.toString('base64url')}$${key.toString('base64url')}`;
};

/** Checks a password against a stored hash in constant time; false for any malformed hash. */
export const verifyPassword = async (password: string, stored: string): Promise<boolean> => {
  const [scheme, n, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), Number(n));
  return key.length === expected.length && timingSafeEqual(key, expected);
};
