import { isSealed } from '@cps/core';

/** What a secret is replaced with. */
export const REDACTED = '[redacted]';

const SECRET_WORDS = new Set([
  'password',
  'passwords',
  'passwd',
  'passphrase',
  'secret',
  'secrets',
  'token',
  'tokens',
  'key',
  'keys',
  'hash',
  'hashes',
  'seed',
  'seeds',
  'salt',
  'credential',
  'credentials',
  'creds',
  'jwt',
  'nkey',
]);
/** Run-together spellings (`apikey`, `PRIVATEKEY`) that word splitting cannot see. */
const SECRET_PARTS = ['password', 'passwd', 'secret', 'apikey', 'privatekey', 'accesskey', 'authtoken'];
/** A name ending in one of these describes a secret without being one (`tokenId`, `keyName`). */
const NOT_SECRET_ENDINGS = new Set(['id', 'ids', 'kind', 'name', 'names', 'type', 'count', 'scopes']);

const wordsOf = (name: string): string[] =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);

/**
 * True for a field name that names a secret: any word of it is `password`, `secret`, `token`,
 * `key`, `hash`, `seed`, `credentials`, ... (`passwordHash`, `token_hash`, `userKey`, `apiKey`),
 * unless it merely refers to one (`tokenId`, `keyName`).
 */
export const isSecretName = (name: string): boolean => {
  const words = wordsOf(name);
  const last = words.at(-1);
  if (last !== undefined && NOT_SECRET_ENDINGS.has(last) && words.length > 1) return false;
  if (words.some((w) => SECRET_WORDS.has(w))) return true;
  const flat = words.join('');
  return SECRET_PARTS.some((p) => flat.includes(p));
};

const SECRET_VALUES: readonly RegExp[] = [
  /^scrypt\$/i,
  /^cps_[a-z0-9]+_[A-Za-z0-9_-]{20,}$/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /^S[UAONCPX][A-Z2-7]{54,}$/,
];

/** True for a value that is a secret whatever its field: sealed values, password hashes, bearer tokens, private keys, NATS seeds. */
export const isSecretValue = (value: string): boolean =>
  isSealed(value) || SECRET_VALUES.some((r) => r.test(value));

const MAX_DEPTH = 64;

const walk = (value: unknown, depth: number): unknown => {
  if (typeof value === 'string') return isSecretValue(value) ? REDACTED : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    out[k] = isSecretName(k) && v !== null ? REDACTED : walk(v, depth + 1);
  }
  return out;
};

/**
 * A copy of `value` (event data: JSON) with every secret replaced by `"[redacted]"`, at any depth:
 * fields named like a secret (see {@link isSecretName}), whatever their value, and strings that
 * are secrets by their form (see {@link isSecretValue}). The input is not changed.
 */
export const redactSecrets = (value: unknown): unknown => walk(value, 0);
