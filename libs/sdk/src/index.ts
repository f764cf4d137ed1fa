import createClient, { type Client } from 'openapi-fetch';
import { Agent, fetch as undiciFetch } from 'undici';
import type { components, operations, paths } from './openapi.gen.js';

export type { components, operations, paths };

/** The director's answer to a failed request (`application/problem+json`). */
export type Problem = components['schemas']['Problem'];

/** A typed client of the cps director: every route of `/openapi.json`, with its inputs and answers. */
export type CpsClient = Client<paths>;

export interface CpsClientOptions {
  /** The director's base URL, e.g. `https://127.0.0.1:14443`. */
  readonly url: string;
  /** A session or API token (`cps_…`). */
  readonly token?: string;
  /** PEM bundle the director's certificate must chain to (the platform CA); system CAs when absent. */
  readonly ca?: string;
  /** A client certificate and key (PEM), instead of or besides a token. */
  readonly certificate?: { readonly cert: string; readonly key: string };
  /** Per-request timeout in ms (default 60 s). */
  readonly timeoutMs?: number;
}

/**
 * Creates a client. Every call answers `{ data, error, response }`: `error` is the problem+json body
 * (with its stable `code` and `issues`) when the director refused; see {@link CpsApiError.from}.
 *
 * ```ts
 * const cps = createCpsClient({ url, token, ca });
 * const { data, error } = await cps.GET('/v1/applications/{app}', { params: { path: { app: 'shop' } } });
 * ```
 */
export const createCpsClient = (o: CpsClientOptions): CpsClient => {
  const dispatcher = new Agent({
    connect: {
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.certificate ? { cert: o.certificate.cert, key: o.certificate.key } : {}),
    },
    headersTimeout: o.timeoutMs ?? 60_000,
    bodyTimeout: o.timeoutMs ?? 60_000,
  });
  const fetchWithTls = async (input: Request): Promise<Response> => {
    const body = input.body ? await input.arrayBuffer() : undefined;
    const r = await undiciFetch(input.url, {
      method: input.method,
      headers: [...input.headers.entries()],
      ...(body ? { body: new Uint8Array(body) } : {}),
      dispatcher,
    });
    // undici's Response is the same class the platform's fetch returns on Node 20
    return r as unknown as Response;
  };
  return createClient<paths>({
    baseUrl: o.url.replace(/\/+$/, ''),
    fetch: fetchWithTls,
    headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
  });
};

/** A refused request, with the director's stable code, message and offending fields. */
export class CpsApiError extends Error {
  override readonly name = 'CpsApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: readonly { path: string; code: string; message: string }[] = [],
  ) {
    super(message);
  }

  /** From an openapi-fetch answer's `error` and `response`. */
  static from(error: unknown, response: Response): CpsApiError {
    const p = error as Partial<Problem> | undefined;
    return new CpsApiError(
      response.status,
      typeof p?.code === 'string' ? p.code : 'internal',
      typeof p?.detail === 'string' ? p.detail : `HTTP ${response.status}`,
      Array.isArray(p?.issues) ? p.issues : [],
    );
  }
}

/** The answer's data, or a {@link CpsApiError} thrown with the director's code and issues. */
export const unwrap = async <T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> => {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw CpsApiError.from(error, response);
  return data as T;
};
