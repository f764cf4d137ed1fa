import { CpsError, isCpsError, ValidationError, type ErrorCode } from '@cps/core';

/** Where and how much {@link fetchArchive} may download. */
export interface FetchArchiveOptions {
  /**
   * URL prefixes a download (and every redirect hop) must start with, e.g.
   * `https://github.com/acme/`. A prefix matches only at a path boundary: `https://example.com/a`
   * allows `https://example.com/a/x.tgz` and `https://example.com/a?x`, not `https://example.com/ab`
   * nor `https://example.com.evil.org/`.
   */
  readonly allow: readonly string[];
  /** Largest body accepted; reading stops at the first byte past it. Default 256 MiB. */
  readonly maxBytes?: number;
  /** For the whole download, redirects and body included. Default 60 s. */
  readonly timeoutMs?: number;
  /** Default 5. */
  readonly maxRedirects?: number;
}

/** A downloaded archive. */
export interface FetchedArchive {
  /** The URL the body came from, after redirects. */
  readonly url: string;
  readonly bytes: Uint8Array;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const urlIssue = (code: string, message: string) => [{ path: '$.url', code, message }];

const parse = (raw: string, base?: URL): URL => {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new ValidationError('invalid URL', urlIssue('invalid_url', 'not an absolute URL'));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ValidationError(
      `scheme ${url.protocol} is not allowed`,
      urlIssue('scheme', 'only http and https'),
    );
  if (url.username !== '' || url.password !== '')
    throw new ValidationError(
      'URLs with credentials are not allowed',
      urlIssue('credentials', 'no credentials'),
    );
  return url;
};

const prefixes = (allow: readonly string[]): string[] =>
  allow.map((prefix, i) => {
    try {
      return new URL(prefix).href;
    } catch {
      throw new ValidationError('invalid allowed prefix', [
        { path: `$.allow[${i}]`, code: 'invalid_url', message: 'not an absolute URL' },
      ]);
    }
  });

const allowed = (url: URL, allow: readonly string[]): boolean =>
  allow.some((p) => {
    if (!url.href.startsWith(p)) return false;
    const next = url.href.charAt(p.length);
    return p.endsWith('/') || next === '' || next === '/' || next === '?' || next === '#';
  });

const check = (url: URL, allow: readonly string[], hop: number): void => {
  if (!allowed(url, allow))
    throw new CpsError(
      'forbidden',
      hop === 0 ? `${url.href} is not an allowed archive source` : `redirect to ${url.href} is not allowed`,
      urlIssue(hop === 0 ? 'not_allowed' : 'redirect_not_allowed', `${url.href} matches no allowed prefix`),
    );
};

const statusCode = (status: number): ErrorCode =>
  status === 404 || status === 410
    ? 'not_found'
    : status >= 500 || status === 429
      ? 'unavailable'
      : 'validation';

const tooLarge = (maxBytes: number): CpsError =>
  new CpsError(
    'payload_too_large',
    `the archive is larger than ${maxBytes} bytes`,
    urlIssue('too_large', `over ${maxBytes} bytes`),
  );

const readBody = async (res: Response, maxBytes: number): Promise<Uint8Array> => {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge(maxBytes);
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  if (res.body === null) return new Uint8Array(0);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    parts.push(value);
  }
  return Buffer.concat(parts, size);
};

const failure = (e: unknown, url: URL, signal: AbortSignal): CpsError => {
  if (isCpsError(e)) return e;
  if (signal.aborted)
    return new CpsError('timeout', `downloading ${url.href} took too long`, [], { cause: e });
  return new CpsError('unavailable', `cannot download ${url.href}: ${(e as Error).message}`, [], {
    cause: e,
  });
};

/**
 * Downloads a code archive over http(s) from an allowed source. Refuses: a URL that is not http(s)
 * or carries credentials (`validation`, path `$.url`), a URL or any redirect hop outside `allow`
 * (`forbidden`, path `$.url`; redirects are followed by hand and each hop is checked before it is
 * requested), a body over `maxBytes` (`payload_too_large`, by Content-Length or while reading), more
 * than `maxRedirects` hops (`validation`) and a download slower than `timeoutMs` (`timeout`). HTTP
 * errors map to `not_found` (404, 410), `unavailable` (5xx, 429) or `validation`. The body is asked
 * for without content encoding, so the server cannot make fetch inflate it.
 */
export const fetchArchive = async (raw: string, o: FetchArchiveOptions): Promise<FetchedArchive> => {
  const maxBytes = o.maxBytes ?? 256 * 1024 * 1024;
  const maxRedirects = o.maxRedirects ?? 5;
  const signal = AbortSignal.timeout(o.timeoutMs ?? 60_000);
  const allow = prefixes(o.allow);
  let url = parse(raw);
  check(url, allow, 0);
  try {
    for (let hop = 0; ; hop++) {
      const res = await fetch(url, {
        redirect: 'manual',
        signal,
        headers: { accept: '*/*', 'accept-encoding': 'identity' },
      });
      const location = res.headers.get('location');
      if (REDIRECTS.has(res.status) && location !== null) {
        await res.body?.cancel();
        if (hop >= maxRedirects)
          throw new ValidationError(
            'too many redirects',
            urlIssue('too_many_redirects', `over ${maxRedirects}`),
          );
        url = parse(location, url);
        check(url, allow, hop + 1);
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new CpsError(
          statusCode(res.status),
          `${url.href} answered ${res.status}`,
          urlIssue('http_status', `HTTP ${res.status}`),
        );
      }
      return { url: url.href, bytes: await readBody(res, maxBytes) };
    }
  } catch (e) {
    throw failure(e, url, signal);
  }
};
