import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, isErrorCode } from '@cps/core';
import type { PlatformHome } from '@cps/platform';
import { createCpsClient, CpsApiError, unwrap, type CpsClient } from '@cps/sdk';

/** The CLI's credentials for a platform (like a kubeconfig): `<home>/cli.json`, mode 0600. */
export interface CliCredentials {
  readonly url: string;
  readonly token: string;
}

const credentialsFile = (home: PlatformHome): string => join(home.dir, 'cli.json');

export const saveCredentials = (home: PlatformHome, c: CliCredentials): void =>
  writeFileSync(credentialsFile(home), JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });

/** The platform's CA bundle, which the director's certificate must chain to. */
const caOf = (home: PlatformHome): string => readFileSync(join(home.dir, 'ca.pem'), 'utf8');

/** An SDK client with the CLI's stored credentials. */
export const signedIn = (home: PlatformHome): { url: string; cps: CpsClient } => {
  const file = credentialsFile(home);
  if (!existsSync(file))
    throw new CpsError('unauthenticated', `no credentials in ${file}: run \`cps up\` on this platform first`);
  const c = JSON.parse(readFileSync(file, 'utf8')) as CliCredentials;
  return { url: c.url, cps: createCpsClient({ url: c.url, token: c.token, ca: caOf(home) }) };
};

export const anonymous = (home: PlatformHome, url: string, token?: string): CpsClient =>
  createCpsClient({ url, ca: caOf(home), ...(token ? { token } : {}) });

/**
 * The SDK's answer, or the director's refusal as a CpsError (code, message, offending fields); an
 * unreachable director says so plainly.
 */
export const call = async <T>(
  url: string,
  request: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> => {
  try {
    return await unwrap(request);
  } catch (e) {
    if (e instanceof CpsApiError)
      throw new CpsError(isErrorCode(e.code) ? e.code : 'internal', e.message, e.issues);
    throw new CpsError('unavailable', `the director at ${url} does not answer: ${(e as Error).message}`);
  }
};

/** Follows an operation until it ends; answers it. */
export const waitFor = async (
  url: string,
  cps: CpsClient,
  operationId: string,
  timeoutMs = 300_000,
): Promise<{ state: string; reason?: string }> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const op = await call(url, cps.GET('/v1/operations/{id}', { params: { path: { id: operationId } } }));
    if (op.state !== 'running') return op;
    if (Date.now() > deadline) throw new CpsError('timeout', `operation ${operationId} still running`);
    await new Promise((r) => setTimeout(r, 300));
  }
};
