import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveStore, ensureArchiveBucket } from '@cps/archives';
import { addNodes, getLogs, removeNodes, setArchive } from '@cps/bus';
import { LocalCloud } from '@cps/clouds';
import { eventually, httpGet as get, httpsText, ServiceHarness, type Got } from '@cps/testing';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tar.gz of `files` (paths may have directories), as a user uploads code. */
const tarGz = async (files: Record<string, string>): Promise<Buffer> => {
  const src = mkdtempSync(join(tmpdir(), 'cps-php-code-'));
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(dirname(join(src, name)), { recursive: true });
    writeFileSync(join(src, name), body);
  }
  const file = `${src}.tar.gz`;
  await tarCreate({ gzip: true, file, cwd: src }, Object.keys(files));
  const bytes = readFileSync(file);
  rmSync(src, { recursive: true, force: true });
  rmSync(file, { force: true });
  return bytes;
};

/**
 * A version of the test application: its page says the version twice, once from index.php and once
 * from a file it includes, a little later: a response that mixes versions shows two different ones.
 */
const app = (v: string) =>
  tarGz({
    'index.php': `<?php $a = '${v}'; usleep(20000); include __DIR__ . '/lib.php'; echo "A=$a B=$b node=" . getenv('CPS_SERVICE') . "\\n";`,
    'lib.php': `<?php $b = '${v}';`,
    'info.php': `<?php header('Content-Type: application/json'); echo json_encode(['memory_limit' => ini_get('memory_limit'), 'upload' => ini_get('upload_max_filesize'), 'tz' => date_default_timezone_get(), 'opcache' => function_exists('opcache_get_status') && opcache_get_status(false) !== false, 'mysqli' => extension_loaded('mysqli')]);`,
    'static/hello.txt': `hello ${v}\n`,
  });

/** A client asking for `url` in a loop; every answer kept (status and body), failures counted. */
class Loop {
  readonly answers: Got[] = [];
  readonly failures: string[] = [];
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  constructor(private readonly url: () => string) {}
  start(): this {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          const g = await get(this.url());
          this.answers.push(g);
          if (g.status !== 200) this.failures.push(`${g.status} ${g.body.slice(0, 200)}`);
        } catch (e) {
          this.failures.push(String(e));
        }
      }
    })();
    return this;
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

describe('php: nginx and php-fpm nodes serving versions of the code', () => {
  let h: ServiceHarness;
  let url = '';
  const versions = new Map<string, string>();

  const explain = async () => {
    const nodes = await h.nodes().catch(() => []);
    console.log(JSON.stringify(nodes, null, 1));
    console.log((await h.request(getLogs, {}).catch(() => ({ text: '' }))).text.slice(-4000));
    for (const n of nodes)
      for (const workload of ['agent', 'nginx', 'php-fpm']) {
        const { text } = await h
          .request(getLogs, { nodeId: n.nodeId, workload, tailBytes: 20_000 })
          .catch(() => ({ text: '' }));
        console.log(n.nodeId, workload, text.slice(-3000));
      }
    for (const n of nodes)
      console.log(
        n.nodeId,
        readFileSync(join(h.host.dir, 'cloud', 'nodes', n.nodeId, 'work', 'nginx.conf'), 'utf8'),
      );
  };

  const upload = async (name: string, bytes: Buffer) => {
    await new ArchiveStore(h.host.bus.connection, { serviceId: h.serviceId }).put(name, bytes, {
      maxBytes: 1 << 24,
    });
    versions.set(name, name);
  };
  const enable = (version: string) => h.request(setArchive, { version }, { timeoutMs: 60_000 });
  const endpoint = async () => {
    const i = await h.info();
    const e = (i.endpoints as Record<string, { address: string; port: number }>)['http'];
    if (!e) throw new Error('no http endpoint');
    return `http://${e.address}:${e.port}`;
  };
  /** The `https` endpoint, once the service shows one. */
  const httpsEndpoint = () =>
    eventually(
      async () => ((await h.info()).endpoints as Record<string, { address: string; port: number }>)['https'],
      (e) => e !== undefined,
      20_000,
    );
  const serving = (v: string, ms = 60_000) =>
    eventually(
      () => get(`${url}/`).catch((e: unknown) => ({ status: 0, body: String(e) })),
      (g) => g.status === 200 && g.body.startsWith(`A=${v} B=${v}`),
      ms,
    );

  beforeAll(async () => {
    h = await ServiceHarness.start({ type: 'php', hostMode: LocalCloud.hostModeUnavailable() === undefined });
    try {
      await ensureArchiveBucket(h.host.bus.connection, h.serviceId);
      await h.startup();
      await upload('v1', await app('v1'));
      await enable('v1');
      url = await eventually(
        () => endpoint().catch(() => ''),
        (u) => u !== '',
        30_000,
      );
      await serving('v1');
    } catch (e) {
      await explain();
      throw e;
    }
  }, 240_000);
  afterAll(async () => h?.cleanup());

  it('serves PHP and static files from one node with opcache and the extensions on', async () => {
    expect((await get(`${url}/`)).body).toMatch(/^A=v1 B=v1 node=/);
    expect(await get(`${url}/static/hello.txt`)).toEqual({ status: 200, body: 'hello v1\n' });
    expect((await get(`${url}/nothing-here.txt`)).status).toBe(200); // a pretty URL goes to index.php
    const info = JSON.parse((await get(`${url}/info.php`)).body) as Record<string, unknown>;
    expect(info).toMatchObject({ memory_limit: '128M', tz: 'UTC', opcache: true, mysqli: true });
    expect((await get(`${url}/.hidden`)).status).toBe(403);
  });

  it('refuses unknown and out-of-range php settings, changes nothing, then applies good ones everywhere', async () => {
    const before = await h.call('get_php_configuration');
    for (const [settings, path, code] of [
      [{ no_such_thing: '1' }, '$.settings.no_such_thing', 'unknown_setting'],
      [{ memory_limit: '9G' }, '$.settings.memory_limit', 'out_of_range'],
      [{ memory_limit: 'lots' }, '$.settings.memory_limit', 'invalid_value'],
      [{ 'date.timezone': 'Mars/Olympus' }, '$.settings.date.timezone', 'invalid_value'],
      [{ upload_max_filesize: '64M' }, '$.settings.upload_max_filesize', 'out_of_range'],
    ] as const) {
      const e = await h.call('update_php_configuration', { settings }).then(
        () => undefined,
        (x: unknown) => x as { code: string; issues?: { path: string; code: string }[] },
      );
      expect(e?.code, JSON.stringify(settings)).toBe('validation');
      expect(e?.issues).toContainEqual(expect.objectContaining({ path, code }));
    }
    expect(await h.call('get_php_configuration')).toEqual(before);
    await h.call('update_php_configuration', {
      settings: { memory_limit: '256M', 'date.timezone': 'Europe/Amsterdam', upload_max_filesize: '8M' },
    });
    await eventually(
      () => get(`${url}/info.php`).then((g) => JSON.parse(g.body) as Record<string, unknown>),
      (i) => i['memory_limit'] === '256M' && i['tz'] === 'Europe/Amsterdam' && i['upload'] === '8M',
      20_000,
    );
  });

  it('spreads PHP over two backends added while a client loops, without a failed request', async () => {
    const loop = new Loop(() => `${url}/`).start();
    try {
      await h.request(addNodes, { nodes: { backend: 2 } }, { timeoutMs: 30_000 });
      await h.until('RUNNING', 120_000);
      // both backends answer: their own access logs count requests
      await eventually(
        async () =>
          (
            (await h.call('get_service_performance')) as {
              nodes: { role: string; http_requests_total?: number }[];
            }
          ).nodes,
        (nodes) => nodes.filter((n) => n.role === 'backend' && (n.http_requests_total ?? 0) > 5).length === 2,
        60_000,
      );
      await sleep(500);
    } finally {
      await loop.stop();
    }
    if (loop.failures.length > 0) await explain();
    expect(loop.failures).toEqual([]);
    expect(loop.answers.length).toBeGreaterThan(20);
  });

  it('switches to a new version under load: no failed request, no response mixing two versions; rolls back', async () => {
    await upload('v2', await app('v2'));
    const loop = new Loop(() => `${url}/`).start();
    try {
      await enable('v2');
      await serving('v2');
      await sleep(500);
      await enable('v1');
      await serving('v1');
      await sleep(300);
    } finally {
      await loop.stop();
    }
    expect(loop.failures).toEqual([]);
    const bodies = loop.answers.map((a) => a.body.slice(0, 9));
    expect(bodies.filter((b) => b !== 'A=v1 B=v1' && b !== 'A=v2 B=v2')).toEqual([]);
    expect(bodies).toContain('A=v2 B=v2');
  });

  it('packs PHP back onto the proxy when the backends go, without a failed request', async () => {
    const loop = new Loop(() => `${url}/`).start();
    try {
      const backends = (await h.nodes()).filter((n) => n.role === 'backend').map((n) => n.nodeId);
      await h.request(removeNodes, { nodeIds: backends }, { timeoutMs: 30_000 });
      await eventually(
        () => h.nodes(),
        (ns) => ns.filter((n) => n.role === 'backend' && n.state !== 'removed').length === 0,
        60_000,
      );
      await sleep(500);
    } finally {
      await loop.stop();
    }
    expect(loop.failures).toEqual([]);
    expect((await get(`${url}/`)).body).toMatch(/^A=v1 B=v1/);
  });

  it('keeps anonymous answers for a while when the micro-cache is on, never a signed-in visitor’s, and starts afresh with a new version', async () => {
    const head = async (headers: Record<string, string> = {}) => {
      // a new connection each time: the cache's changes reload nginx, which closes idle ones
      const r = await fetch(`${url}/`, { headers: { ...headers, connection: 'close' } });
      return { cache: r.headers.get('x-cache'), body: await r.text() };
    };
    expect((await head()).cache).toBeNull();
    await h.call('set_cache', { seconds: 30 });
    await eventually(
      async () => [await head(), await head()],
      ([, b]) => b!.cache === 'HIT',
      20_000,
    );
    expect((await head({ cookie: 'wordpress_logged_in_x=1' })).cache).not.toBe('HIT');
    await enable('v2');
    await serving('v2');
    await h.call('set_cache', { seconds: 0 });
    await eventually(
      () => head(),
      (r) => r.cache === null,
      20_000,
    );
  });

  it('serves HTTPS with the user’s certificate, redirects plain HTTP when asked, refuses a key that is not the certificate’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cps-php-tls-'));
    const address = new URL(url).hostname;
    const certFor = (name: string) => {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '2',
          '-subj',
          `/CN=${name}`,
          '-addext',
          `subjectAltName=IP:${address}`,
          '-keyout',
          join(dir, `${name}.key`),
          '-out',
          join(dir, `${name}.crt`),
        ],
        { stdio: 'ignore' },
      );
      return {
        certificate: readFileSync(join(dir, `${name}.crt`), 'utf8'),
        key: readFileSync(join(dir, `${name}.key`), 'utf8'),
      };
    };
    try {
      const site = certFor('site');
      const other = certFor('other');
      const refused = await h.call('set_certificate', { certificate: site.certificate, key: other.key }).then(
        () => undefined,
        (e: unknown) => e as { code: string; issues?: { path: string; code: string }[] },
      );
      expect(refused?.code).toBe('validation');
      expect(refused?.issues).toContainEqual(
        expect.objectContaining({ path: '$.key', code: 'key_mismatch' }),
      );
      expect(await h.call('get_certificate')).toEqual({});

      await h.call('set_certificate', { ...site, redirect_http: true });
      const https = await httpsEndpoint();
      const body = await eventually(
        () => httpsText(https!, site.certificate),
        (b) => b.startsWith('A=v'),
        20_000,
      );
      expect(body).toMatch(/^A=v\d B=v\d/);
      const plain = await eventually(
        () => fetch(`${url}/x?y=1`, { redirect: 'manual', headers: { connection: 'close' } }),
        (r) => r.status === 301,
        10_000,
      );
      expect(plain.headers.get('location')).toBe(`https://${https!.address}:${https!.port}/x?y=1`);
      // the key is sealed in the service's events, never shown
      expect(JSON.stringify(await h.call('get_certificate'))).not.toContain('PRIVATE KEY');
      await h.call('remove_certificate');
      await eventually(
        () => get(`${url}/`).then((g) => g.status),
        (st) => st === 200,
        20_000,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves HTTPS with a certificate the platform’s services CA issues for the proxy’s address', async () => {
    const refused = await h.call('set_certificate', { platform: true, certificate: 'x', key: 'y' }).then(
      () => undefined,
      (e: unknown) => e as { code: string; issues?: { path: string; code: string }[] },
    );
    expect(refused?.issues).toContainEqual(expect.objectContaining({ path: '$.platform', code: 'conflict' }));
    const set = (await h.call('set_certificate', { platform: true })) as {
      ca: string;
      names: string[];
      issuer: string;
    };
    const address = new URL(url).hostname;
    expect(set.names).toContain(`IP Address:${address}`);
    expect(set.issuer).toContain('cps services');
    const https = await httpsEndpoint();
    // a client that trusts the services CA (and checks the name: the address) gets the page
    const body = await eventually(
      () => httpsText(https!, set.ca),
      (b) => b.startsWith('A=v'),
      20_000,
    );
    expect(body).toMatch(/^A=v\d B=v\d/);
    expect(await h.call('get_certificate')).toMatchObject({ certificate: { issuer: set.issuer } });
    await h.call('remove_certificate');
  });
});
