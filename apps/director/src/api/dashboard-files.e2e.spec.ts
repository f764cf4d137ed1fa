import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@cps/core';
import type { Director } from '../director.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';

const INDEX = '<!doctype html><title>cps</title><script type="module" src="/assets/app-1a2b.js"></script>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4_000))});`;

/** The director serving a dashboard build at `/`: its files, its page for every browser path, its headers. */
describe('the dashboard’s files, served by the director', () => {
  let h: DirectorHarness;
  let d: Director;
  let c: Client;
  const build = mkdtempSync(join(tmpdir(), 'cps-dashboard-build-'));
  const key = generateKeyPair();

  beforeAll(async () => {
    mkdirSync(join(build, 'assets'));
    writeFileSync(join(build, 'index.html'), INDEX);
    writeFileSync(join(build, 'assets', 'app-1a2b.js'), SCRIPT);
    h = await DirectorHarness.start();
    d = await h.startDirector('d1', { dashboard: build, httpsKey: key });
    c = h.client(d);
  });
  afterAll(async () => {
    await h?.cleanup();
    rmSync(build, { recursive: true, force: true });
  });

  it('answers / and any page a browser asks for with index.html, under a strict CSP', async () => {
    for (const path of ['/', '/apps/shop', '/apps/shop/services/web?x=1', '/events']) {
      const r = await c.request('GET', path, { headers: { accept: 'text/html,*/*' } });
      expect(r.status, path).toBe(200);
      expect(r.text).toBe(INDEX);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.headers['content-security-policy']).toMatch(/default-src 'self'.*script-src 'self'/);
      expect(r.headers['content-security-policy']).not.toMatch(/unsafe/);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['cache-control']).toBe('no-cache');
    }
  });

  it('serves assets compressed when asked, cached for good, and 304 for a known version', async () => {
    const plain = await c.request('GET', '/assets/app-1a2b.js');
    expect(plain.status).toBe(200);
    expect(plain.text).toBe(SCRIPT);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const zipped = await c.request('GET', '/assets/app-1a2b.js', { headers: { 'accept-encoding': 'gzip' } });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.bytes.length).toBeLessThan(SCRIPT.length / 10);
    expect(gunzipSync(zipped.bytes).toString()).toBe(SCRIPT);
    const again = await c.request('GET', '/assets/app-1a2b.js', {
      headers: { 'if-none-match': String(plain.headers['etag']) },
    });
    expect(again.status).toBe(304);
    expect(again.bytes.length).toBe(0);
  });

  it('keeps the API’s answers: problem+json 404 for unknown API paths and for non-browser requests', async () => {
    for (const [path, accept] of [
      ['/v1/nope', 'text/html'],
      ['/v1', 'text/html'],
      ['/apps/shop', 'application/json'],
      ['/assets/missing.js', '*/*'],
    ] as const) {
      const r = await c.request('GET', path, { headers: { accept } });
      expect(r.status, path).toBe(404);
      expect(r.headers['content-type'], path).toMatch(/^application\/problem\+json/);
      expect(r.body.code).toBe('not_found');
    }
    expect((await c.get('/healthz')).status).toBe(200);
    expect((await c.get('/openapi.json')).body.openapi).toBeDefined();
  });

  it('keeps its HTTPS key across restarts when given one, so a pinned key stays trusted', async () => {
    const spki = async (dir: Director) => {
      const { connect } = await import('node:tls');
      const u = new URL(dir.url);
      return new Promise<string>((resolve, reject) => {
        const s = connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
          const pem = s.getPeerX509Certificate()?.publicKey.export({ type: 'spki', format: 'pem' });
          s.end();
          resolve(String(pem).trim());
        });
        s.on('error', reject);
      });
    };
    expect(await spki(d)).toBe(key.publicKeyPem.trim());
    await d.stop();
    d = await h.startDirector('d1', { dashboard: build, httpsKey: key });
    expect(await spki(d)).toBe(key.publicKeyPem.trim());
    const other = await h.startDirector('d2');
    expect(await spki(other)).not.toBe(key.publicKeyPem.trim());
    // without a build, / is the API's 404
    expect((await h.client(other).request('GET', '/', { headers: { accept: 'text/html' } })).status).toBe(
      404,
    );
  });
});
