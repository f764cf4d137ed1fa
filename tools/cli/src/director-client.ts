import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, isErrorCode } from '@cps/core';
import type { PlatformHome } from '@cps/platform';
import { createCpsClient, CpsApiError, unwrap, type CpsClient } from '@cps/sdk';
import { resolveContext } from './config.js';

/** The platform's CA bundle, which the director's certificate must chain to. */
const caOf = (home: PlatformHome): string => readFileSync(join(home.dir, 'ca.pem'), 'utf8');

export interface ContextFlags {
  readonly context?: string;
  readonly url?: string;
  readonly token?: string;
  readonly ca?: string;
}

/** An SDK client for the resolved context (flags, `CPS_*` variables, the config file). */
export const client = (flags: ContextFlags): { url: string; cps: CpsClient; context: string } => {
  const { name, ctx } = resolveContext(flags);
  const ca = ctx.ca ? readCa(ctx.ca) : undefined;
  return {
    url: ctx.url,
    context: name,
    cps: createCpsClient({ url: ctx.url, ...(ctx.token ? { token: ctx.token } : {}), ...(ca ? { ca } : {}) }),
  };
};

const readCa = (path: string): string => {
  if (!existsSync(path)) throw new CpsError('not_found', `CA file ${path} does not exist`);
  return readFileSync(path, 'utf8');
};

export const anonymous = (home: PlatformHome, url: string, token?: string): CpsClient =>
  createCpsClient({ url, ca: caOf(home), ...(token ? { token } : {}) });

export const anonymousWithCa = (url: string, ca?: string, token?: string): CpsClient =>
  createCpsClient({ url, ...(ca ? { ca: readCa(ca) } : {}), ...(token ? { token } : {}) });

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

/** Follows an operation until it ends, printing its steps as they come (unless `quiet`); answers it. */
export const waitFor = async (
  url: string,
  cps: CpsClient,
  operationId: string,
  o: { timeoutMs?: number; quiet?: boolean } = {},
): Promise<{ state: string; reason?: string }> => {
  const deadline = Date.now() + (o.timeoutMs ?? 600_000);
  let shown = 0;
  for (;;) {
    const op = await call(url, cps.GET('/v1/operations/{id}', { params: { path: { id: operationId } } }));
    for (const step of (op.steps ?? []).slice(shown)) if (!o.quiet) console.error(`  ${step}`);
    shown = op.steps?.length ?? 0;
    if (op.state !== 'running') return op;
    if (Date.now() > deadline) throw new CpsError('timeout', `operation ${operationId} still running`);
    await new Promise((r) => setTimeout(r, 300));
  }
};
