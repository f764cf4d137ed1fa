import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, isErrorCode } from '@cps/core';
import type { PlatformHome } from '@cps/platform';
import {
  createCpsClient,
  CpsApiError,
  followEvents,
  unwrap,
  type components,
  type CpsClient,
} from '@cps/sdk';
import { OperationProgress } from './progress.js';
import { resolveContext } from './config.js';

/** The platform's CA bundle, which the director's certificate must chain to. */
const caOf = (home: PlatformHome): string => readFileSync(join(home.dir, 'ca.pem'), 'utf8');

export interface ContextFlags {
  readonly context?: string;
  readonly url?: string;
  readonly token?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** An SDK client for the resolved context (flags, `CPS_*` variables, the config file). */
export const client = (flags: ContextFlags): { url: string; cps: CpsClient; context: string } => {
  const { name, ctx } = resolveContext(flags);
  const ca = ctx.ca ? readCa(ctx.ca) : undefined;
  const certificate = ctx.cert ? { cert: readPem(ctx.cert), key: readPem(ctx.key ?? '') } : undefined;
  return {
    url: ctx.url,
    context: name,
    cps: createCpsClient({
      url: ctx.url,
      ...(ctx.token ? { token: ctx.token } : {}),
      ...(ca ? { ca } : {}),
      ...(certificate ? { certificate } : {}),
    }),
  };
};

const readPem = (path: string, what = 'file'): string => {
  if (!path || !existsSync(path)) throw new CpsError('not_found', `${what} ${path} does not exist`);
  return readFileSync(path, 'utf8');
};
const readCa = (path: string): string => readPem(path, 'CA file');

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
    throw cliError(url, e);
  }
};

/** A failed call as the CLI reports it: the director's refusal with its code and fields, else unreachable. */
export const cliError = (url: string, e: unknown): CpsError =>
  e instanceof CpsApiError
    ? new CpsError(isErrorCode(e.code) ? e.code : 'internal', e.message, e.issues)
    : new CpsError('unavailable', `the director at ${url} does not answer: ${(e as Error).message}`);

type Operation = components['schemas']['Operation'];

const getOperation = (url: string, cps: CpsClient, id: string): Promise<Operation> =>
  call(url, cps.GET('/v1/operations/{id}', { params: { path: { id } } }));

/** The error of a request or stream ended on purpose (its signal aborted). */
export const isAbort = (e: unknown): boolean => (e as { name?: string } | undefined)?.name === 'AbortError';

/**
 * Follows an operation until it ends and answers it. Progress comes from the live event stream
 * (replayed from the operation's start, so nothing is missed; resumed after a cut) and is printed
 * as it happens, unless `quiet`. The end is confirmed by reading the operation; a check every few
 * seconds covers an end the stream does not show, and polling takes over if the stream cannot be
 * followed.
 */
export const waitFor = async (
  url: string,
  cps: CpsClient,
  operationId: string,
  o: { timeoutMs?: number; quiet?: boolean; checkEveryMs?: number } = {},
): Promise<Operation> => {
  const print = (line: string): void => {
    if (!o.quiet && line) console.error(`  ${line}`);
  };
  const first = await getOperation(url, cps, operationId);
  if (first.state !== 'running') {
    for (const step of first.steps ?? []) print(step);
    return first;
  }
  const deadline = Date.now() + (o.timeoutMs ?? 600_000);
  const abort = new AbortController();
  const check = setInterval(() => {
    // past the deadline the wait ends even while the director does not answer
    if (Date.now() > deadline) return abort.abort();
    getOperation(url, cps, operationId).then(
      (op) => {
        if (op.state !== 'running') abort.abort();
      },
      () => undefined,
    );
  }, o.checkEveryMs ?? 5_000);
  // services are shown by name: those the application has now, and those added meanwhile
  const app = first.appId
    ? await cps.GET('/v1/applications/{app}', { params: { path: { app: first.appId } } }).then(
        (r) => r.data,
        () => undefined,
      )
    : undefined;
  const progress = new OperationProgress(
    {
      operationId,
      ...(first.appId ? { appId: first.appId } : {}),
      ...(first.serviceId ? { serviceId: first.serviceId } : {}),
    },
    new Map((app?.services ?? []).map((s) => [s.serviceId, s.name])),
  );
  try {
    const query = { since: first.startedAt, ...(first.appId ? { application: first.appId } : {}) };
    const onReconnect = (attempt: number, cause: unknown) =>
      attempt === 1 && print(`(event stream cut: ${(cause as Error).message}; reconnecting)`);
    for await (const e of followEvents(cps, { query, signal: abort.signal, reconnect: true, onReconnect })) {
      const seen = progress.see(e);
      seen.lines.forEach(print);
      if (seen.ended) break;
    }
  } catch {
    // aborted, or the stream is not available (an older director, a proxy that buffers): the loop
    // below polls
  } finally {
    clearInterval(check);
    abort.abort();
  }
  // the end as the director records it: the stream may show it a moment before the read model does
  let ended = await getOperation(url, cps, operationId);
  while (ended.state === 'running' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    ended = await getOperation(url, cps, operationId);
  }
  if (ended.state === 'running') throw new CpsError('timeout', `operation ${operationId} still running`);
  return ended;
};
