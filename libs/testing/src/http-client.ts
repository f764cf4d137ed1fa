import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Got {
  readonly status: number;
  readonly body: string;
}

/**
 * One GET, as HTTP clients do it: a request sent on a kept-alive connection the server had just
 * closed (nginx closes its idle ones when it reloads) is sent again once, on a new connection
 * (RFC 9112, 9.3.1; Node's documentation of `reusedSocket`). Any other error rejects; an answer, even
 * a 502, is never sent again. Redirections are not followed.
 */
export const httpGet = (url: string, timeoutMs = 10_000, retried = false): Promise<Got> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!retried && req.reusedSocket && (e.code === 'ECONNRESET' || e.message === 'socket hang up'))
        resolve(httpGet(url, timeoutMs, true));
      else reject(e);
    });
    req.end();
  });

/**
 * The body of `path` over HTTPS from `at`, trusting `ca` only and checking the certificate names the
 * address; the error's text when there is no answer.
 */
export const httpsText = (
  at: { readonly address: string; readonly port: number },
  ca: string | Buffer,
  path = '/',
): Promise<string> =>
  new Promise<string>((resolve) => {
    const req = httpsRequest({ host: at.address, port: at.port, path, ca, timeout: 5_000 }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => (b += d.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(String(e)));
    req.end();
  });
