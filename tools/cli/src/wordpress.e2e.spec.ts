import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud, namespaceOfAddress } from '@cps/clouds';
import { cliPlatform, eventually, httpGet } from '@cps/testing';

interface Listed {
  nodeId: string;
  role: string;
  state: string;
  address?: string;
  ports?: { from: number; to: number };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PASSWORD = 'Blog-owner-2026';

/** The processes of a host-mode node (its network namespace), by pid. */
const pidsOfNode = (address: string): number[] =>
  execFileSync('ip', ['netns', 'pids', namespaceOfAddress(address)!], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map(Number);
const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
};
const kill9 = (pids: readonly number[]): void => {
  for (const pid of pids)
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
};

/** One visit's status (0: no answer), sent again once only as clients do (see `httpGet`). */
const status = (url: string): Promise<number> =>
  httpGet(url, 15_000).then(
    (r) => r.status,
    () => 0,
  );

/**
 * A person's first steps, over HTTP through the proxy (ConPaaS's and WordPress's own way): the
 * install's second step, a login, a post made through the REST API, that post read by an anonymous
 * visitor.
 */
const installAndPost = async (base: string, title: string): Promise<{ cookie: string; nonce: string }> => {
  const form = (o: Record<string, string>) => new URLSearchParams(o);
  let r = await fetch(`${base}/wp-admin/install.php?step=2`, {
    method: 'POST',
    body: form({
      weblog_title: 'cps',
      user_name: 'admin',
      admin_password: PASSWORD,
      admin_password2: PASSWORD,
      pw_weak: 'on',
      admin_email: 'admin@example.test',
      blog_public: '0',
    }),
    redirect: 'manual',
  });
  expect(r.status).toBe(200);
  expect(await r.text()).toContain('<h1>Success!</h1>');
  r = await fetch(`${base}/wp-login.php`, {
    method: 'POST',
    headers: { cookie: 'wordpress_test_cookie=WP%20Cookie%20check' },
    body: form({
      log: 'admin',
      pwd: PASSWORD,
      'wp-submit': 'Log In',
      redirect_to: `${base}/wp-admin/`,
      testcookie: '1',
    }),
    redirect: 'manual',
  });
  expect(r.status).toBe(302);
  const cookie = r.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const nonce = await (
    await fetch(`${base}/wp-admin/admin-ajax.php?action=rest-nonce`, { headers: { cookie } })
  ).text();
  expect(nonce).toMatch(/^[0-9a-f]{10}$/);
  r = await fetch(`${base}/wp-json/wp/v2/posts`, {
    method: 'POST',
    headers: { cookie, 'X-WP-Nonce': nonce, 'content-type': 'application/json' },
    body: JSON.stringify({ title, content: 'Written through the REST API.', status: 'publish' }),
  });
  expect(r.status).toBe(201);
  const { link } = (await r.json()) as { link: string };
  expect(link.startsWith(base)).toBe(true);
  const page = await fetch(link);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain(title);
  expect(await (await fetch(`${base}/`)).text()).toContain(title);
  return { cookie, nonce };
};

/** A POST with the headers given, `host` included (which `fetch` does not send as given). */
const post = (
  url: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': String(body.length) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
    req.end(body);
  });

/** A GIF of one pixel whose two colours are random: a picture no other run uploads. */
const uniqueGif = (): Buffer =>
  Buffer.concat([
    Buffer.from('GIF89a', 'latin1'),
    Buffer.from([1, 0, 1, 0, 0x80, 0, 0]),
    randomBytes(6),
    Buffer.from([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b]),
  ]);
const sha256 = (b: Buffer | ArrayBuffer): string =>
  createHash('sha256')
    .update(Buffer.from(b as ArrayBuffer))
    .digest('hex');

/** One visit: its status (0: no answer, then `error` says why) and when it started and ended. */
interface Visit {
  readonly status: number;
  readonly error?: string;
  readonly start: number;
  readonly end: number;
}

/** A visitor reloading a page in a loop: every visit kept. */
class Visitor {
  readonly visits: Visit[] = [];
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  constructor(private readonly url: string) {}
  start(): this {
    this.done = (async () => {
      while (!this.stopped) {
        const start = Date.now();
        const got = await httpGet(this.url, 15_000).then(
          (r) => ({ status: r.status }),
          (e: Error) => ({ status: 0, error: e.message }),
        );
        this.visits.push({ ...got, start, end: Date.now() });
      }
    })();
    return this;
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
  failed(): Visit[] {
    return this.visits.filter((v) => v.status !== 200);
  }
  /**
   * The failed visits that were being answered when a process was killed at one of `kills` and were
   * cut off mid-answer (`aborted`): once the proxy has begun passing a backend's answer on, no other
   * backend can finish it. Every other visit must be answered.
   */
  cutAt(kills: readonly number[]): Visit[] {
    return this.failed().filter(
      (v) => v.error === 'aborted' && kills.some((k) => v.start <= k && k <= v.end),
    );
  }
}

/**
 * WordPress as a person deploys it: `cps deploy examples/wordpress/manifest.json` (the README's main
 * job), then `wordpress-2`, whose two backends and replicated database keep it answering while
 * parts of it are killed. Host mode: each node a host of its own.
 */
describe.skipIf(LocalCloud.hostModeUnavailable() !== undefined)('WordPress in one command', () => {
  const platform = cliPlatform('cps-wordpress-');
  const { cps } = platform;
  const example = (name: string) => join(process.cwd(), 'examples', name, 'manifest.json');
  const urlOf = async (app: string): Promise<string> => {
    const info = JSON.parse((await cps('--json', 'service', 'info', 'web', '--app', app)).stdout) as {
      endpoints?: Record<string, { address: string; port: number }>;
    };
    const e = info.endpoints?.['http'];
    if (!e) throw new Error('no http endpoint yet');
    return `http://${e.address}:${e.port}`;
  };
  const nodes = async (app: string, svc: string): Promise<Listed[]> =>
    (JSON.parse((await cps('--json', 'service', 'nodes', svc, '--app', app)).stdout) as { nodes: Listed[] })
      .nodes;

  beforeAll(async () => {
    execFileSync('bash', [join(process.cwd(), 'examples', 'wordpress', 'build.sh')], { stdio: 'ignore' });
    await platform.init();
    await cps('up');
  }, 180_000);
  afterAll(() => platform.cleanup(), 60_000);

  it('deploys WordPress: the install completes through the proxy, a post made over REST is served to anyone', async () => {
    const started = Date.now();
    expect((await cps('deploy', example('wordpress'))).stdout).toMatch(/deployed: /);
    const base = await eventually(
      () => urlOf('wordpress').catch(() => ''),
      (u) => u !== '',
      30_000,
    );
    await eventually(
      () => status(`${base}/wp-admin/install.php`),
      (s) => s === 200,
      60_000,
    );
    console.log(`deploy to install page: ${Date.now() - started} ms`);
    // the CLI shows the URL
    expect((await cps('service', 'info', 'web', '--app', 'wordpress')).stdout).toContain(base);
    await installAndPost(base, 'Hello from cps');
  }, 180_000);

  it('comes back whole after cps down and cps up: the same URL, the post still there', async () => {
    const base = await urlOf('wordpress');
    await cps('down');
    await cps('up');
    const page = await eventually(
      () =>
        fetch(`${base}/`, { signal: AbortSignal.timeout(10_000) }).then(
          async (r) => (r.status === 200 ? r.text() : ''),
          () => '',
        ),
      (t) => t.includes('Hello from cps'),
      120_000,
    );
    expect(page).toContain('Hello from cps');
  }, 240_000);

  it('wordpress-2: both backends serve; a backend’s php-fpm and then its whole node killed, the database primary killed: WordPress keeps answering', async () => {
    await cps('deploy', example('wordpress-2'));
    const base = await eventually(
      () => urlOf('wordpress-2').catch(() => ''),
      (u) => u !== '',
      30_000,
    );
    await eventually(
      () => status(`${base}/wp-admin/install.php`),
      (s) => s === 200,
      120_000,
    );
    await eventually(
      async () =>
        (await nodes('wordpress-2', 'web')).filter((n) => n.role === 'backend' && n.state === 'running'),
      (b) => b.length === 2,
      120_000,
    );
    await installAndPost(base, 'Two backends');
    const perf = async () =>
      (
        JSON.parse(
          (await cps('--json', 'service', 'call', 'web', 'get_service_performance', '--app', 'wordpress-2'))
            .stdout,
        ) as { nodes: { nodeId: string; role: string; http_requests_total?: number }[] }
      ).nodes;
    const visitor = new Visitor(`${base}/`).start();
    const kills: number[] = [];
    try {
      // the proxy spreads the front page over both backends: each one's access log counts its share
      await eventually(
        perf,
        (ns) => ns.filter((n) => n.role === 'backend' && (n.http_requests_total ?? 0) >= 3).length === 2,
        60_000,
      );
      const [first, second] = (await nodes('wordpress-2', 'web')).filter((n) => n.role === 'backend');
      // kill -9 of one backend's php-fpm (master and children): its nginx answers 502, the proxy asks the other
      const fpm = pidsOfNode(first!.address!).filter((p) => cmdline(p).startsWith('php-fpm'));
      expect(fpm.length).toBeGreaterThan(0);
      kills.push(Date.now());
      kill9(fpm);
      await sleep(3_000);
      // then the whole other node, every process of it
      const victims = pidsOfNode(second!.address!);
      kills.push(Date.now());
      kill9(victims);
      await sleep(6_000);
    } finally {
      await visitor.stop();
    }
    const cut = visitor.cutAt(kills);
    console.log(
      `front page during the kills: ${visitor.visits.length} requests, ${visitor.failed().length} failed, ${cut.length} of them cut off by a kill`,
    );
    // every visit answered, but one being answered by a killed process (at most one per kill)
    expect(visitor.failed().filter((v) => !cut.includes(v))).toEqual([]);
    expect(cut.length).toBeLessThanOrEqual(kills.length);
    expect(visitor.visits.length).toBeGreaterThan(10);

    // the database's primary node killed (every process of it): WordPress answers again, by itself,
    // within 15 s, on the promoted replica
    const primary = JSON.parse(
      (await cps('--json', 'service', 'call', 'db', 'get_connection_info', '--app', 'wordpress-2')).stdout,
    ) as { primary: string; host: string };
    const killedAt = Date.now();
    kill9(pidsOfNode(primary.host));
    await sleep(500);
    const back = await eventually(
      () =>
        fetch(`${base}/`, { signal: AbortSignal.timeout(15_000) }).then(
          async (r) => ({ s: r.status, body: await r.text(), at: Date.now() }),
          () => ({ s: 0, body: '', at: Date.now() }),
        ),
      // the front page with the post, read from the database
      (r) => r.s === 200 && r.body.includes('Two backends'),
      30_000,
    );
    console.log(`WordPress answered again ${back.at - killedAt} ms after the primary was killed`);
    const promoted = JSON.parse(
      (await cps('--json', 'service', 'call', 'db', 'get_connection_info', '--app', 'wordpress-2')).stdout,
    ) as { primary: string };
    // the replica promoted: a dead agent is its manager's to fail and replace, never revived meanwhile
    expect(promoted.primary).not.toBe(primary.primary);
    console.log(`the replica ${promoted.primary} was promoted`);
    expect(back.at - killedAt).toBeLessThan(15_000);
  }, 420_000);

  it('wordpress-ha: a picture uploaded through one backend is served by the other and by the proxy, still once that backend is removed; a script put on the volume never runs', async () => {
    // room on 2 cores: wordpress-2 has been shown
    await cps('app', 'delete', 'wordpress-2');
    const started = Date.now();
    await cps('deploy', example('wordpress-ha'));
    const base = await eventually(
      () => urlOf('wordpress-ha').catch(() => ''),
      (u) => u !== '',
      60_000,
    );
    await eventually(
      () => status(`${base}/wp-admin/install.php`),
      (s) => s === 200,
      180_000,
    );
    const backends = await eventually(
      async () =>
        (await nodes('wordpress-ha', 'web')).filter((n) => n.role === 'backend' && n.state === 'running'),
      (b) => b.length === 2,
      120_000,
    );
    console.log(`wordpress-ha: install page after ${Date.now() - started} ms`);
    const { cookie, nonce } = await installAndPost(base, 'Shared uploads');
    const [first, second] = backends.map((b) => `http://${b.address!}:${b.ports!.from}`);
    // each backend serves the site itself once configured with its volume (until then the proxy's
    // own PHP answers for it)
    for (const at of [first!, second!])
      await eventually(
        () => status(`${at}/wp-login.php`),
        (s) => s === 200,
        120_000,
      );

    // uploaded through the first backend itself (as the site's host: WordPress names its login
    // cookie after the site's URL)
    const gif = uniqueGif();
    const r = await post(`${first!}/wp-json/wp/v2/media`, gif, {
      host: new URL(base).host,
      cookie,
      'X-WP-Nonce': nonce,
      'content-type': 'image/gif',
      'content-disposition': 'attachment; filename="pixel.gif"',
    });
    expect(r.status, r.body).toBe(201);
    const path = new URL((JSON.parse(r.body) as { source_url: string }).source_url).pathname;
    expect(path).toMatch(/^\/wp-content\/uploads\/\d{4}\/\d{2}\/pixel[^/]*\.gif$/);
    const served = async (at: string) => {
      const res = await fetch(`${at}${path}`, { signal: AbortSignal.timeout(15_000) });
      return { status: res.status, sum: sha256(await res.arrayBuffer()) };
    };
    const want = { status: 200, sum: sha256(gif) };
    expect(await served(second!)).toEqual(want);
    expect(await served(base)).toEqual(want);

    // a tenant's script put on the volume (by the workload user of the second backend): never run
    const put = await platform.asTenant(
      backends[1]!.nodeId,
      `echo '<?php echo "ran";' > wp-content/uploads/evil.php`,
    );
    expect(put).toEqual({ ok: true, out: '' });
    for (const at of [base, first!, second!]) {
      const res = await fetch(`${at}/wp-content/uploads/evil.php`);
      expect(res.status).toBe(403);
      expect(await res.text()).not.toContain('ran');
    }

    // the first backend removed: its upload is still served, from the volume
    await cps('service', 'remove-nodes', 'web', backends[0]!.nodeId, '--app', 'wordpress-ha');
    await eventually(
      async () => (await nodes('wordpress-ha', 'web')).find((n) => n.nodeId === backends[0]!.nodeId)?.state,
      (s) => s === undefined || s === 'removed',
      120_000,
    );
    expect(await served(base)).toEqual(want);
    expect(await served(second!)).toEqual(want);
  }, 600_000);
});
