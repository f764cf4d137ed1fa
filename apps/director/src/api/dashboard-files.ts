import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { NotFoundError } from '@cps/core';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { sendProblem } from './problem.filter.js';
import type { CpsRequest } from './request.js';

/**
 * The web dashboard's built files (`apps/dashboard`, `vite build`), served by the director at `/`
 * on its own origin: a handful of files, read and gzipped once at start. Any other GET that a
 * browser makes for a page (`Accept: text/html`, outside the API) gets `index.html`, whose router
 * shows the page; everything else that matches no route stays the API's problem+json 404.
 *
 * Every answer carries a strict Content-Security-Policy: scripts, styles and connections only from
 * this origin and no inline script, so that injected markup cannot read the session token.
 */

const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

/** What the API owns: never answered with the dashboard's page. */
const API = /^\/(?:v1(?:\/|$)|healthz$|readyz$|metrics$|openapi\.json$)/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

interface File {
  readonly body: Buffer;
  readonly gzip: Buffer;
  readonly type: string;
  readonly etag: string;
  /** Vite names these by their content hash: cached for good. */
  readonly immutable: boolean;
}

const filesOf = (dir: string): Map<string, File> => {
  const files = new Map<string, File>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const body = readFileSync(path);
    const url = `/${relative(dir, path).split(sep).join('/')}`;
    files.set(url, {
      body,
      gzip: gzipSync(body, { level: 9 }),
      type: TYPES[extname(path)] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      immutable: url.startsWith('/assets/'),
    });
  }
  return files;
};

/** Serves the dashboard built in `dir` (which must hold `index.html`). */
export const serveDashboard = (fastify: FastifyInstance, dir: string, log: Logger): void => {
  const files = filesOf(dir);
  const index = files.get('/index.html');
  if (!index) throw new Error(`no index.html in the dashboard's build (${dir})`);
  fastify.get('/*', (req, reply) => {
    const path = new URL(req.url, 'https://director').pathname;
    const accept = req.headers.accept ?? '';
    const file =
      files.get(path === '/' ? '/index.html' : path) ??
      (!API.test(path) && accept.includes('text/html') ? index : undefined);
    if (!file) {
      sendProblem(log, new NotFoundError(`Route GET:${path} not found`), req as CpsRequest, reply);
      return;
    }
    void reply
      .header('content-type', file.type)
      .header('content-security-policy', DASHBOARD_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('etag', file.etag)
      .header('vary', 'accept-encoding');
    if (req.headers['if-none-match'] === file.etag) return reply.status(304).send();
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gzip) void reply.header('content-encoding', 'gzip');
    return reply.send(gzip ? file.gzip : file.body);
  });
};
