import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode, type ErrorCode } from '@cps/core';
import { fetchArchive, type FetchArchiveOptions } from '@cps/archives';

const KiB = 1024;
const BODY = Buffer.alloc(10 * KiB, 7);

const redirect = (res: ServerResponse, to: string): void => {
  res.writeHead(302, { location: to }).end();
};

const routes: Record<string, (res: ServerResponse, base: string) => void> = {
  '/ok/a.tgz': (res) => res.writeHead(200, { 'content-length': BODY.length }).end(BODY),
  '/ok/to-a': (res) => redirect(res, '/ok/a.tgz'),
  '/ok/to-private': (res, base) => redirect(res, `${base}/private/a.tgz`),
  '/ok/to-file': (res) => redirect(res, 'file:///etc/passwd'),
  '/ok/loop': (res) => redirect(res, '/ok/loop'),
  '/ok/missing': (res) => res.writeHead(404).end(),
  '/ok/big': (res) => res.writeHead(200, { 'content-length': 2 * 1024 * KiB }).end(),
  '/ok/big-chunked': (res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(64 * KiB);
    let sent = 0;
    const more = (): void => {
      while (sent < 64 && !res.destroyed) {
        sent++;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  },
  '/ok/encoded-bomb': (res) =>
    res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(Buffer.alloc(64 * 1024 * KiB))),
  '/ok/stalls': (res) => {
    res.writeHead(200, { 'content-length': BODY.length });
    res.write(BODY.subarray(0, KiB));
  },
  '/ok/hangs': () => undefined,
  '/private/a.tgz': (res) => res.writeHead(200).end('secret'),
};

describe('fetchArchive against a local HTTP server', () => {
  let server: Server;
  let base: string;
  const hits: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      const route = routes[req.url ?? ''];
      if (route === undefined) res.writeHead(404).end();
      else route(res, base);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  const opts = (o: Partial<FetchArchiveOptions> = {}): FetchArchiveOptions => ({
    allow: [`${base}/ok/`],
    maxBytes: 1024 * KiB,
    timeoutMs: 5_000,
    ...o,
  });
  const refusal = async (url: string, code: ErrorCode, issue?: string, o?: Partial<FetchArchiveOptions>) => {
    const e = await fetchArchive(url, opts(o)).then(
      () => expect.fail(`fetched ${url}`),
      (err: unknown) => err,
    );
    expect(hasErrorCode(e, code), String(e)).toBe(true);
    if (issue !== undefined && hasErrorCode(e, code))
      expect(e.issues[0]).toMatchObject({ path: '$.url', code: issue });
  };

  it('downloads an allowed URL, and follows an allowed redirect', async () => {
    const r = await fetchArchive(`${base}/ok/a.tgz`, opts());
    expect(r).toEqual({ url: `${base}/ok/a.tgz`, bytes: expect.any(Uint8Array) });
    expect(Buffer.from(r.bytes).equals(BODY)).toBe(true);
    await expect(fetchArchive(`${base}/ok/to-a`, opts())).resolves.toMatchObject({ url: `${base}/ok/a.tgz` });
  });

  it('refuses a URL outside the allow-list without requesting it', async () => {
    hits.length = 0;
    await refusal(`${base}/private/a.tgz`, 'forbidden', 'not_allowed');
    await refusal(`${base}/okay/a.tgz`, 'forbidden', 'not_allowed', { allow: [`${base}/ok`] });
    await refusal(`${base}/ok/a.tgz`, 'forbidden', 'not_allowed', { allow: ['http://127.0.0.1'] });
    await refusal(`${base}/ok/a.tgz`, 'forbidden', 'not_allowed', {
      allow: [base.replace('127.0.0.1', 'localhost')],
    });
    expect(hits).toEqual([]);
  });

  it('refuses other schemes and credentials in the URL', async () => {
    await refusal('file:///etc/passwd', 'validation', 'scheme', { allow: ['file:///'] });
    await refusal(`ftp://127.0.0.1/ok/a.tgz`, 'validation', 'scheme');
    await refusal(`http://user:pw@127.0.0.1/ok/a.tgz`, 'validation', 'credentials');
  });

  it('refuses a redirect to a URL outside the allow-list before following it', async () => {
    hits.length = 0;
    await refusal(`${base}/ok/to-private`, 'forbidden', 'redirect_not_allowed');
    await refusal(`${base}/ok/to-file`, 'validation', 'scheme');
    expect(hits).toEqual(['/ok/to-private', '/ok/to-file']);
    await refusal(`${base}/ok/loop`, 'validation', 'too_many_redirects');
  });

  it('refuses bodies over maxBytes: by Content-Length, while streaming, and inflated by content-encoding', async () => {
    await refusal(`${base}/ok/big`, 'payload_too_large', 'too_large');
    await refusal(`${base}/ok/big-chunked`, 'payload_too_large', 'too_large');
    await refusal(`${base}/ok/encoded-bomb`, 'payload_too_large', 'too_large');
  });

  it('maps HTTP errors and times out on a server that stalls or never answers', async () => {
    await refusal(`${base}/ok/missing`, 'not_found', 'http_status');
    await refusal(`${base}/ok/stalls`, 'timeout', undefined, { timeoutMs: 300 });
    await refusal(`${base}/ok/hangs`, 'timeout', undefined, { timeoutMs: 300 });
  });
});
