import { describe, expect, it } from 'vitest';
import { createRootCa, generateKeyPair, hasErrorCode, issueCertificate } from '@cps/core';
import type { ManagerContext, NodeView } from '../contract/context.js';
import { AccessLogStats } from './access-log.js';
import { nginxConf, type SiteConfig } from './nginx.js';
import { applyPhpSettings, bodyLimit, fpmConf, PHP_DEFAULTS, phpIni } from './php-config.js';
import { phpService } from './php.js';
import { documentRoot } from './server.js';
import { checkCertificate, openWith, sealWith } from './tls.js';

const issuesOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (hasErrorCode(e, 'validation'))
      return (e as unknown as { issues: { path: string; code: string }[] }).issues;
    throw e;
  }
  throw new Error('accepted');
};

describe('php settings', () => {
  it('applies known settings in their normal form', () => {
    const s = applyPhpSettings({}, { memory_limit: '256m', display_errors: 'true', max_execution_time: 60 });
    expect(s).toMatchObject({ memory_limit: '256M', display_errors: 'On', max_execution_time: '60' });
    expect(s['date.timezone']).toBe('UTC');
  });

  it('refuses unknown keys, bad values and out-of-range ones, all at once, naming each field', () => {
    expect(
      issuesOf(() =>
        applyPhpSettings(
          {},
          { nope: '1', memory_limit: '8M', max_execution_time: 'soon', 'date.timezone': 'Nowhere/Land' },
        ),
      ),
    ).toEqual([
      expect.objectContaining({ path: '$.settings.nope', code: 'unknown_setting' }),
      expect.objectContaining({ path: '$.settings.memory_limit', code: 'out_of_range' }),
      expect.objectContaining({ path: '$.settings.max_execution_time', code: 'invalid_value' }),
      expect.objectContaining({ path: '$.settings.date.timezone', code: 'invalid_value' }),
    ]);
  });

  it('wants post_max_size at least upload_max_filesize; nginx’s body limit follows the larger', () => {
    expect(issuesOf(() => applyPhpSettings({}, { upload_max_filesize: '64M' }))).toEqual([
      expect.objectContaining({ path: '$.settings.upload_max_filesize', code: 'out_of_range' }),
    ]);
    const s = applyPhpSettings({}, { upload_max_filesize: '64M', post_max_size: '65M' });
    expect(bodyLimit(s)).toBe('66m');
    expect(nginxConf(site({ bodyLimit: bodyLimit(s) }))).toContain('client_max_body_size 66m;');
  });

  it('writes php.ini with the settings and opcache, and a pool that passes only plain values', () => {
    const ini = phpIni({
      settings: { ...PHP_DEFAULTS, memory_limit: '64M' },
      extensions: ['mysqli'],
      work: '/w',
    });
    expect(ini).toContain('memory_limit = 64M');
    expect(ini).toContain('extension = mysqli');
    expect(ini).toContain('zend_extension = opcache');
    const pool = fpmConf({
      work: '/w',
      address: '198.18.0.2',
      port: 20003,
      children: 4,
      env: { MYSQL_HOST: '198.18.0.3', MYSQL_PASSWORD: 'a"b;c', 'bad-name': 'x' },
    });
    expect(pool.conf).toContain('env[MYSQL_HOST] = "198.18.0.3"');
    expect(pool.conf).toContain('listen.allowed_clients = 198.18.0.2');
    expect(pool.conf).not.toContain('a"b');
    expect([...pool.skipped].sort()).toEqual(['MYSQL_PASSWORD', 'bad-name']);
  });
});

const site = (o: Partial<SiteConfig> = {}): SiteConfig => ({
  listen: { address: '198.18.0.2', port: 20000 },
  root: 'code-v1',
  php: { kind: 'local', fpm: { address: '198.18.0.2', port: 20003 } },
  static: { kind: 'local' },
  front: true,
  trusted: [],
  bodyLimit: '17m',
  phpTimeout: 60,
  workers: 2,
  cacheSeconds: 0,
  ...o,
});

describe('nginx configuration', () => {
  it('one node: static files and PHP on the node', () => {
    const c = nginxConf(site());
    expect(c).toContain('root code-v1;');
    expect(c).toContain('try_files $uri $uri/ /index.php$is_args$args;');
    expect(c).toContain('fastcgi_pass 198.18.0.2:20003;');
    // PHP gets the real directory the link points at: one request, one version
    expect(c).toContain('fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;');
    expect(c).not.toContain('upstream');
  });

  it('backends: weighted, failed ones out for 2 s, idempotent requests retried, the proxy’s own PHP as backup', () => {
    const c = nginxConf(
      site({
        php: {
          kind: 'remote',
          servers: [
            { nodeId: 'n1', address: '198.18.0.4', port: 20000, weight: 3 },
            { nodeId: 'n2', address: '198.18.0.5', port: 20000, weight: 1 },
          ],
        },
        fallback: {
          listen: { address: '198.18.0.2', port: 20002 },
          fpm: { address: '198.18.0.2', port: 20003 },
        },
      }),
    );
    expect(c).toContain('server 198.18.0.4:20000 weight=3 max_fails=1 fail_timeout=2s;');
    expect(c).toContain('server 198.18.0.2:20002 backup;');
    expect(c).toContain('proxy_next_upstream error timeout http_502 http_503 http_504;');
    expect(c).toContain('listen 198.18.0.2:20002;');
    expect(c).toContain('try_files $uri @php;');
  });

  it('a volume in the document root: its files served by the node itself, never a script run there', () => {
    const c = nginxConf(
      site({
        volumes: ['wp-content/uploads'],
        php: { kind: 'remote', servers: [] },
        static: { kind: 'local' },
      }),
    );
    const at = c.indexOf('location ^~ /wp-content/uploads/ {');
    expect(at).toBeGreaterThan(0);
    // before the PHP location: a prefix with ^~ wins over every regular expression
    expect(at).toBeLessThan(c.indexOf('location ~ [^/]\\.php(/|$)'));
    expect(c.slice(at, c.indexOf('\n    }', at))).toContain('return 403;');
    expect(nginxConf(site())).not.toContain('location ^~');
  });

  it('no code yet: every request answers 503 with Retry-After', () => {
    const c = nginxConf(site({ root: undefined }));
    expect(c).toContain('return 503;');
    expect(c).not.toContain('fastcgi_pass');
  });

  it('the micro-cache keys on the version and skips visitors with a cookie', () => {
    const c = nginxConf(site({ cacheSeconds: 5 }));
    expect(c).toContain('fastcgi_cache_valid 200 301 302 404 5s;');
    expect(c).toContain('fastcgi_cache_key "$realpath_root$scheme');
    expect(c).toContain('fastcgi_no_cache $cps_no_cache;');
    expect(nginxConf(site())).not.toContain('cache');
  });

  it('a node behind the proxy believes only the proxy’s X-Forwarded-For', () => {
    const c = nginxConf(site({ front: false, trusted: ['198.18.0.2'] }));
    expect(c).toContain('set_real_ip_from 198.18.0.2;');
    expect(c).toContain('fastcgi_param HTTPS $cps_https;');
  });
});

describe('the access log figures', () => {
  it('counts requests per second, percentiles and errors over the window, from chunks cut anywhere', () => {
    const stats = new AccessLogStats(10);
    const now = 1_800_000_000_000;
    const second = now / 1000 - 5;
    const lines = Array.from(
      { length: 100 },
      (_, i) =>
        `${second}.${String(i).padStart(3, '0')} ${i < 5 ? 502 : i < 8 ? 404 : 200} ${((i + 1) / 1000).toFixed(3)}\n`,
    ).join('');
    stats.push(lines.slice(0, 37));
    stats.push(Buffer.from(lines.slice(37)));
    const f = stats.figures(now);
    expect(f.http_requests_per_s).toBe(10);
    expect(f.http_5xx_per_s).toBe(0.5);
    expect(f.http_4xx_per_s).toBe(0.3);
    expect(f.http_p50_ms).toBeGreaterThanOrEqual(50);
    expect(f.http_p50_ms).toBeLessThan(53);
    expect(f.http_p99_ms).toBeGreaterThanOrEqual(99);
    expect(f.http_p99_ms).toBeLessThan(104);
    // a line from outside the window, and garbage, count for nothing
    stats.push(`${now / 1000 - 60} 200 0.001\nnot a line\n`);
    expect(stats.figures(now).http_requests_per_s).toBe(10);
    expect(stats.figures(now + 30_000).http_requests_per_s).toBe(0);
  });
});

describe('the archive a php service takes', () => {
  it('has index.php or index.html at its root or in its only top-level directory', () => {
    const check = phpService.checkArchive!;
    expect(() => check(['index.php', 'lib/a.php'])).not.toThrow();
    expect(() => check(['wordpress/index.php', 'wordpress/wp-login.php'])).not.toThrow();
    for (const bad of [[], ['README'], ['a/index.php', 'b/index.php'], ['README', 'site/index.php']])
      expect(issuesOf(() => check(bad))).toEqual([
        expect.objectContaining({ path: '$.archive', code: 'no_index' }),
      ]);
    expect(documentRoot(['index.html'])).toBe('');
    expect(documentRoot(['wordpress'])).toBe('wordpress');
    expect(documentRoot(['a', 'b'])).toBeUndefined();
  });
});

describe('the proxy’s certificate', () => {
  it('refuses what is not a certificate or not a key, naming the field', () => {
    expect(issuesOf(() => checkCertificate('hello', 'x', new Date()))).toEqual([
      expect.objectContaining({ path: '$.certificate', code: 'invalid_certificate' }),
    ]);
    const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
    expect(issuesOf(() => checkCertificate(broken, 'x', new Date()))).toEqual([
      expect.objectContaining({ path: '$.certificate', code: 'invalid_certificate' }),
    ]);
  });

  it('seals the key with the service’s secret: only that secret opens it, and a changed byte is refused', () => {
    const secretA = Buffer.alloc(32, 1).toString('base64url');
    const secretB = Buffer.alloc(32, 2).toString('base64url');
    const sealed = sealWith(secretA, '-----BEGIN PRIVATE KEY-----');
    expect(sealed).not.toContain('PRIVATE');
    expect(openWith(secretA, sealed)).toBe('-----BEGIN PRIVATE KEY-----');
    expect(() => openWith(secretB, sealed)).toThrow();
    const [v, iv, tag, body] = sealed.split(':');
    // the next-to-last character changed for another (it was checked against the last one before, so
    // one run in 64 changed nothing)
    const flipped = `${v}:${iv}:${tag}:${body!.slice(0, -2)}${body!.at(-2) === 'A' ? 'B' : 'A'}${body!.slice(-1)}`;
    expect(() => openWith(secretA, flipped)).toThrow();
  });
});

describe('a certificate from the platform’s services CA', () => {
  const DAY = 24 * 3600_000;
  const ca = createRootCa({ commonName: 'cps services', now: new Date(), validForMs: 365 * DAY });
  const SECRET = 'x'.repeat(43);
  const proxy = (nodeId: string): NodeView => ({
    nodeId,
    role: 'proxy',
    cloud: 'local',
    state: 'running',
    address: '198.18.1.5',
    ports: { from: 20000, to: 20019 },
  });
  /** The service as a manager sees it: a proxy, and a certificate the platform issued for `issuedFor`. */
  const service = (o: { proxy: string; issuedFor?: string; daysLeft: number }) => {
    const key = generateKeyPair();
    const certificate = issueCertificate(ca, {
      identity: { role: 'server', id: o.issuedFor ?? o.proxy },
      usage: 'server',
      publicKeyPem: key.publicKeyPem,
      now: new Date(),
      validForMs: o.daysLeft * DAY,
      ipAddresses: ['198.18.1.5'],
    });
    const tls = {
      certificate,
      sealedKey: sealWith(SECRET, key.privateKeyPem),
      redirect: true,
      view: checkCertificate(certificate, key.privateKeyPem, new Date()),
      ...(o.issuedFor === 'user' ? {} : { platform: { nodeId: o.issuedFor ?? o.proxy } }),
    };
    const recorded: { name: string; data: Record<string, unknown> }[] = [];
    const asked: string[] = [];
    const ctx = {
      appId: 'a1',
      serviceId: 'w1',
      nodes: () => [proxy(o.proxy)],
      state: () => ({ held: {}, settings: {}, weights: {}, cacheSeconds: 0, tls }),
      secret: () => SECRET,
      record: async (name: string, data: Record<string, unknown>) => void recorded.push({ name, data }),
      issueCertificate: async (nodeId: string, publicKeyPem: string) => {
        asked.push(nodeId);
        return {
          certificate: issueCertificate(ca, {
            identity: { role: 'server', id: nodeId },
            usage: 'server',
            publicKeyPem,
            now: new Date(),
            validForMs: 90 * DAY,
            ipAddresses: ['198.18.1.5'],
          }),
          ca: ca.certPem,
          notAfter: new Date(Date.now() + 90 * DAY).toISOString(),
        };
      },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    } as unknown as ManagerContext;
    return { ctx, recorded, asked };
  };
  const renew = (ctx: ManagerContext) => phpService.manager.periodic!.run(ctx);

  it('is left alone while the proxy is the same and more than 30 days are left', async () => {
    const s = service({ proxy: 'p1', daysLeft: 60 });
    await renew(s.ctx);
    expect(s.asked).toEqual([]);
    expect(s.recorded).toEqual([]);
  });

  it('is issued again, redirect kept, when less than 30 days are left or the proxy moved', async () => {
    for (const s of [
      service({ proxy: 'p1', daysLeft: 10 }),
      service({ proxy: 'p2', issuedFor: 'p1', daysLeft: 60 }),
    ]) {
      await renew(s.ctx);
      const proxyId = (s.ctx.nodes()[0] as NodeView).nodeId;
      expect(s.asked).toEqual([proxyId]);
      expect(s.recorded).toHaveLength(1);
      expect(s.recorded[0]).toMatchObject({
        name: 'tls_set',
        data: { redirect: true, platform: { nodeId: proxyId } },
      });
      // the new key is sealed, never in clear
      expect(JSON.stringify(s.recorded[0]!.data)).not.toContain('PRIVATE KEY');
      expect(openWith(SECRET, s.recorded[0]!.data['sealedKey'] as string)).toContain('PRIVATE KEY');
    }
  });

  it('never replaces a certificate the user gave, however close its end', async () => {
    const s = service({ proxy: 'p1', issuedFor: 'user', daysLeft: 1 });
    await renew(s.ctx);
    expect(s.asked).toEqual([]);
    expect(s.recorded).toEqual([]);
  });
});
