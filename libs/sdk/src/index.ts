import { tlsFetch } from './tls-fetch.js';
import { clientOver, type CpsClient } from './client.js';

export * from './client.js';

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
  const fetchWithTls = tlsFetch({
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.certificate ? { cert: o.certificate.cert, key: o.certificate.key } : {}),
    timeoutMs: o.timeoutMs ?? 60_000,
  });
  return clientOver(fetchWithTls, o.url, o.token);
};
