import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair } from '@cps/core';
import type { KeySource } from '@cps/platform';

const POOL = 16;
const CACHE_DIR = join(process.cwd(), 'node_modules', '.cache', 'cps-test-keys');

let pool: KeyPair[] | undefined;

/**
 * RSA keys for tests, generated once per checkout and shared by every test file (generation costs
 * ~170 ms a key here). Test-only keys: certificates and JWTs are still fresh per test file.
 */
export const testKeyPool = (): KeyPair[] => {
  if (pool) return pool;
  const file = join(CACHE_DIR, 'keys.json');
  try {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as KeyPair[];
    if (Array.isArray(cached) && cached.length >= POOL) return (pool = cached);
  } catch {
    // no cache yet
  }
  pool = Array.from({ length: POOL }, () => generateKeyPair());
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(pool), { mode: 0o600 });
  renameSync(tmp, file);
  return pool;
};

/** A KeySource that hands out the pooled keys round-robin, starting at a random offset. */
export const pooledKeys = (): KeySource => {
  const keys = testKeyPool();
  let i = Math.floor(Math.random() * keys.length);
  return { next: () => keys[i++ % keys.length] as KeyPair };
};
