// (s) The web dashboard (apps/dashboard), served by a real local platform (`cps up` on a fresh
// CPS_HOME) and driven in Debian's Chromium (headless, through playwright-core), as a person uses it:
//  - first-load size: the JS and CSS that `/` loads, as the director sends them (gzip) and raw, next
//    to React + ReactDOM alone (bundled and minified here by rolldown, as vite does the dashboard);
//  - the applications page with 1,000 applications: from `page.goto('/')` (signed in) until the
//    1,000th row is there and its link can be clicked, next to fetching the same two pages of the API
//    from Node (and from the page's own `fetch`);
//  - event to screen: applications created one at a time from Node while the page is open, from the
//    event's time in the event store (`at`) to its row in the page (a MutationObserver), next to the
//    same delay seen by a bare Node client following the event stream (the SDK's `followEvents`).
// Each run has a browser of its own (fresh profile: its first load is a cold one). The platform is
// brought down with `cps down` and every temp dir removed, whatever happens.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { freePort, PlatformHome } from '@cps/platform';
import { createCpsClient, followEvents, unwrap } from '@cps/sdk';
import { until } from '../lib/processes.mjs';
import { median, percentile, sleep } from '../lib/stats.mjs';

const exec = promisify(execFile);
const CLI = join(process.cwd(), 'tools', 'cli', 'bin', 'cps.js');
const DIST = join(process.cwd(), 'apps', 'dashboard', 'dist');
/** Debian's Chromium (the `chromium` package), as in the dashboard's browser tests. */
const CHROMIUM = process.env.CPS_CHROMIUM ?? '/usr/bin/chromium';
/** The browser tests' launch flags, shared with them (apps/dashboard/chromium-flags.json). */
const FLAGS = JSON.parse(
  readFileSync(join(process.cwd(), 'apps', 'dashboard', 'chromium-flags.json'), 'utf8'),
);
const PASSWORD = 'bench-dashboard-admin-password';
const APPS = 1_000;
/** The applications made in prepare: `app-0000` .. `app-0999`, so the 1,000th row is `app-0999`. */
const appName = (i) => `app-${String(i).padStart(4, '0')}`;
const LAST = appName(APPS - 1);
const CREATE_IN_FLIGHT = 10;
/** Page loads per run (after the cold one), applications created one at a time per run, their spacing. */
const LOADS = { full: 5, quick: 3 };
const EVENTS = { full: 50, quick: 15 };
const SPACING_MS = 150;
const KB = 1000;

const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);
const wall = () => performance.timeOrigin + performance.now();

const unavailable = () => {
  if (!existsSync(CHROMIUM)) return `needs Chromium (${CHROMIUM}; Debian's chromium package)`;
  if (!existsSync(join(DIST, 'index.html'))) return 'needs the dashboard built (npm run build)';
  return undefined;
};

/** The SHA-256 (base64) of the director's public key, its certificate checked against the platform CA. */
const directorSpki = (url, ca) =>
  new Promise((resolve, reject) => {
    const u = new URL(url);
    const socket = connect({ host: u.hostname, port: Number(u.port), ca }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (!cert) return reject(new Error('the director showed no certificate'));
      resolve(
        createHash('sha256')
          .update(cert.publicKey.export({ type: 'spki', format: 'der' }))
          .digest('base64'),
      );
    });
    socket.on('error', reject);
  });

/** GET `url` as sent over the wire: the body's bytes (not decoded) and its content-encoding. */
const wireGet = (url, ca, gzip) =>
  new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { ca, headers: { accept: '*/*', ...(gzip ? { 'accept-encoding': 'gzip' } : {}) }, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`GET ${url}: ${res.statusCode}`));
          resolve({ body: Buffer.concat(chunks), encoding: res.headers['content-encoding'] });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });

/** React + ReactDOM alone (createRoot and one element), bundled and minified by rolldown, gzipped. */
const reactAlone = async () => {
  const { rolldown } = await import('rolldown');
  const ENTRY = '\0react-alone';
  const bundle = await rolldown({
    input: ENTRY,
    cwd: process.cwd(),
    platform: 'browser',
    logLevel: 'silent',
    transform: { define: { 'process.env.NODE_ENV': '"production"' } },
    plugins: [
      {
        name: 'react-alone',
        resolveId: (id) => (id === ENTRY ? ENTRY : null),
        load: (id) =>
          id === ENTRY
            ? "import { createElement } from 'react';\nimport { createRoot } from 'react-dom/client';\n" +
              "createRoot(document.getElementById('root')).render(createElement('div'));\n"
            : null,
      },
    ],
  });
  try {
    const { output } = await bundle.generate({ format: 'esm', minify: true });
    const code = Buffer.from(output.map((c) => (c.type === 'chunk' ? c.code : '')).join(''));
    return { raw: code.length, gz: gzipSync(code, { level: 9 }).length };
  } finally {
    await bundle.close();
  }
};

/** Every application the admin sees, both pages, as the dashboard fetches them. */
const allApplications = async (api) => {
  const all = [];
  for (let after; ;) {
    const page = await unwrap(
      api.GET('/v1/applications', { params: { query: { limit: 500, ...(after ? { after } : {}) } } }),
    );
    all.push(...page.applications);
    if (!page.nextCursor) return all;
    after = page.nextCursor;
  }
};

/** Runs `fn` over `items`, `inFlight` at a time. */
const inBatches = async (items, inFlight, fn) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
};

/** ApplicationCreated events since `since` (ISO): name -> the time recorded in the event store (ms). */
const createdAt = async (api, since) => {
  const at = new Map();
  for (let after; ;) {
    const page = await unwrap(
      api.GET('/v1/events', {
        params: { query: { type: 'ApplicationCreated', since, limit: 500, ...(after ? { after } : {}) } },
      }),
    );
    for (const e of page.events) if (typeof e.data?.name === 'string') at.set(e.data.name, Date.parse(e.at));
    if (!page.nextCursor || page.events.length === 0) return at;
    after = page.nextCursor;
  }
};

/** In the page, before its own scripts: the session, and when the applications table first holds `rows` rows. */
const INIT = ({ session, rows }) => {
  sessionStorage.setItem('cps.session', session);
  window.__rowsAt = undefined;
  window.__paintedAt = undefined;
  const observer = new MutationObserver(() => {
    const body = document.querySelector('table[aria-label="applications"] tbody');
    if (body && body.rows.length >= rows) {
      window.__rowsAt = performance.now();
      observer.disconnect();
      // a task queued from the next frame runs once that frame (style, layout, paint) is done
      requestAnimationFrame(() => setTimeout(() => (window.__paintedAt = performance.now())));
    }
  });
  observer.observe(document, { childList: true, subtree: true });
};

/** Where a load's time went, in ms from navigation start (read in the page after the load). */
const BREAKDOWN = () => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const assets = res.filter((r) => new URL(r.name).pathname.startsWith('/assets/'));
  const api = res.filter((r) => new URL(r.name).pathname === '/v1/applications');
  const max = (xs) => (xs.length ? Math.max(...xs) : NaN);
  return {
    html: nav?.responseEnd ?? NaN,
    assets: max(assets.map((r) => r.responseEnd)),
    appsStart: api.length ? Math.min(...api.map((r) => r.startTime)) : NaN,
    appsEnd: max(api.map((r) => r.responseEnd)),
    rows: window.__rowsAt ?? NaN,
    painted: window.__paintedAt ?? NaN,
    origin: performance.timeOrigin,
  };
};

/** In the open page: the time each application's row is first inserted, by name (from `prefix`). */
const WATCH_ROWS = (prefix) => {
  window.__seen = {};
  window.__frame = {};
  const note = (row, t) => {
    const name = row.querySelector('td a')?.textContent;
    if (!name || !name.startsWith(prefix) || window.__seen[name] !== undefined) return;
    window.__seen[name] = t;
    requestAnimationFrame(() => (window.__frame[name] = performance.timeOrigin + performance.now()));
  };
  new MutationObserver((mutations) => {
    const t = performance.timeOrigin + performance.now();
    for (const m of mutations)
      for (const n of m.addedNodes) {
        if (n.nodeType !== 1) continue;
        if (n.tagName === 'TR') note(n, t);
        else for (const row of n.querySelectorAll('tr')) note(row, t);
      }
  }).observe(document.body, { childList: true, subtree: true });
};

/** The page's /v1/applications requests since `from` (ms from navigation start): count and durations. */
const APP_FETCHES = (from) =>
  performance
    .getEntriesByType('resource')
    .filter((r) => r.startTime >= from && new URL(r.name).pathname === '/v1/applications')
    .map((r) => r.duration);

const stats = (values) => ({
  p50: percentile(values, 50),
  p95: percentile(values, 95),
  max: values.length ? Math.max(...values) : NaN,
});

const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : '-');

export default {
  id: 'dashboard',
  letter: 's',
  title: 'the web dashboard in Chromium: first-load size, 1,000 applications, event to screen',
  fixture: 'none',
  unavailable,
  prepareTimeoutMs: 240_000,
  runTimeoutMs: 300_000,
  figures: [
    {
      key: 'jsGz',
      label: 's. first load: JS, gzipped (raw: React + ReactDOM alone)',
      unit: 'kB',
      target: null,
    },
    { key: 'cssGz', label: 's. first load: CSS, gzipped', unit: 'kB', target: null, baseline: false },
    {
      key: 'totalGz',
      label: 's. first load: JS + CSS, gzipped (raw: React + ReactDOM)',
      unit: 'kB',
      target: { on: 'cps', op: '<=', value: 300 },
    },
    {
      key: 'totalRaw',
      label: 's. first load: JS + CSS, uncompressed (raw: React + ReactDOM)',
      unit: 'kB',
      target: null,
    },
    {
      key: 'apps1k',
      label: 's. / with 1,000 applications to interactive (raw: Node fetches them)',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 1_000 },
    },
    {
      key: 'apps1kBrowser',
      label: "s. the same (raw: the page's own fetch of them)",
      unit: 'ms',
      target: null,
    },
    {
      key: 'apps1kCold',
      label: 's. the same, first load of a fresh profile (raw: Node fetch)',
      unit: 'ms',
      target: null,
    },
    {
      key: 'eventP50',
      label: 's. event to row in the page, p50 (raw: Node SSE client)',
      unit: 'ms',
      target: null,
    },
    {
      key: 'eventP95',
      label: 's. event to row in the page, p95 (raw: Node SSE client)',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 250 },
    },
    {
      key: 'eventMax',
      label: 's. event to row in the page, max (raw: Node SSE client)',
      unit: 'ms',
      target: null,
    },
  ],

  async prepare(_fx, opts) {
    const root = mkdtempSync(join(tmpdir(), 'cps-bench-dashboard-'));
    const home = join(root, 'home');
    const env = {
      ...process.env,
      CPS_HOME: home,
      CPS_CONFIG_DIR: join(root, 'config'),
      CPS_LOCAL_MODE: 'process',
      CPS_ADMIN_PASSWORD: PASSWORD,
    };
    const s = { root, home, env, up: false, browser: undefined, consoleErrors: [], quick: opts.quick };
    try {
      await PlatformHome.init(home, { env, natsPort: await freePort(), directorPort: await freePort() });
      let t0 = performance.now();
      s.up = true;
      await exec(process.execPath, [CLI, 'up'], { env, timeout: 120_000 });
      log(`cps up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      s.url = JSON.parse(readFileSync(join(home, 'run', 'director.json'), 'utf8')).url.replace(/\/+$/, '');
      s.ca = readFileSync(join(home, 'ca.pem'), 'utf8');
      s.spki = await directorSpki(s.url, s.ca);
      const session = await unwrap(
        createCpsClient({ url: s.url, ca: s.ca }).POST('/v1/sessions', {
          body: { username: 'admin', password: PASSWORD },
        }),
      );
      s.session = JSON.stringify({ token: session.token, user: session.user });
      s.api = createCpsClient({ url: s.url, ca: s.ca, token: session.token });
      t0 = performance.now();
      await inBatches(
        Array.from({ length: APPS }, (_, i) => appName(i)),
        CREATE_IN_FLIGHT,
        (name) => unwrap(s.api.POST('/v1/applications', { body: { name, description: `bench ${name}` } })),
      );
      const listed = (await allApplications(s.api)).length;
      if (listed !== APPS) throw new Error(`the director lists ${listed} applications, expected ${APPS}`);
      log(
        `${APPS} applications created in ${((performance.now() - t0) / 1000).toFixed(1)} s (${CREATE_IN_FLIGHT} in flight)`,
      );
      s.react = await reactAlone();
      log(`React + ReactDOM alone: ${s.react.raw} bytes minified, ${s.react.gz} gzipped`);
      return s;
    } catch (e) {
      await this.dispose(s);
      throw e;
    }
  },

  async run(s, runIndex) {
    const { chromium } = await import('playwright-core');
    const loads = s.quick ? LOADS.quick : LOADS.full;
    const events = s.quick ? EVENTS.quick : EVENTS.full;
    log(
      `run ${runIndex + 1}: load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const profile = mkdtempSync(join(tmpdir(), 'cps-bench-chromium-'));
    const errors = [];
    let context;
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [...FLAGS, `--ignore-certificate-errors-spki-list=${s.spki}`],
        viewport: { width: 1280, height: 900 },
      });
      s.browser = context;
      await context.addInitScript(INIT, { session: s.session, rows: APPS });
      const page = context.pages()[0] ?? (await context.newPage());
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
      // a navigation (each load) or the browser's end cuts the page's event stream: expected, counted apart
      let streamCuts = 0;
      page.on('requestfailed', (r) => {
        const path = new URL(r.url()).pathname;
        if (path === '/v1/events/stream' && r.failure()?.errorText === 'net::ERR_ABORTED') streamCuts++;
        else errors.push(`request failed: ${r.method()} ${path} ${r.failure()?.errorText}`);
      });
      const firstLoad = [];
      const onResponse = (r) => {
        const type = r.request().resourceType();
        if (type === 'script' || type === 'stylesheet')
          firstLoad.push({ url: r.url(), type, encoding: r.headers()['content-encoding'] });
      };

      /** From goto to the 1,000th row there and its link clickable (ms, timed here), and where it went. */
      const loadPage = async () => {
        const wall0 = wall();
        const t0 = performance.now();
        await page.goto(`${s.url}/`, { waitUntil: 'commit' });
        // the 1,000th row's link (a CSS locator: a role-and-name query would scan every link's name)
        const link = page.locator(`table[aria-label="applications"] tbody tr:nth-child(${APPS}) td a`);
        await link.waitFor();
        await link.click({ trial: true });
        const ms = performance.now() - t0;
        if ((await link.textContent()) !== LAST) throw new Error(`the 1,000th row is not ${LAST}`);
        const rows = await page.locator('table[aria-label="applications"] tbody tr').count();
        if (rows !== APPS) throw new Error(`the page shows ${rows} applications, expected ${APPS}`);
        const where = await page.evaluate(BREAKDOWN);
        // from goto here to the navigation's start in the browser
        where.navStart = where.origin - wall0;
        return { ms, where };
      };
      const nodeFetch = async () => {
        const t0 = performance.now();
        const n = (await allApplications(s.api)).length;
        if (n !== APPS) throw new Error(`Node fetched ${n} applications`);
        return performance.now() - t0;
      };
      const browserFetch = async () => {
        const t0 = performance.now();
        const n = await page.evaluate(async (token) => {
          let count = 0;
          for (let after; ;) {
            const r = await fetch(
              `/v1/applications?limit=500${after ? `&after=${encodeURIComponent(after)}` : ''}`,
              {
                headers: { authorization: `Bearer ${token}` },
              },
            );
            const body = await r.json();
            count += body.applications.length;
            if (!body.nextCursor) return count;
            after = body.nextCursor;
          }
        }, JSON.parse(s.session).token);
        if (n !== APPS) throw new Error(`the page's fetch got ${n} applications`);
        return performance.now() - t0;
      };

      // 1. the cold load (fresh profile), recording what `/` loads
      page.on('response', onResponse);
      const coldNode = await nodeFetch();
      const cold = await loadPage();
      page.off('response', onResponse);
      log(
        `cold load ${f1(cold.ms)} ms (navigation starts ${f1(cold.where.navStart)} ms after goto; then html ${f1(cold.where.html)}, ` +
          `assets ${f1(cold.where.assets)}, applications fetched ${f1(cold.where.appsStart)}-${f1(cold.where.appsEnd)}, ` +
          `1,000 rows ${f1(cold.where.rows)}, painted ${f1(cold.where.painted)} ms)`,
      );

      // 2. the first load's size, as the director sends it
      const size = { js: { gz: 0, raw: 0 }, css: { gz: 0, raw: 0 } };
      const files = [...new Map(firstLoad.map((f) => [f.url, f])).values()];
      for (const f of files) {
        const kind = f.type === 'script' ? 'js' : 'css';
        const gz = await wireGet(f.url, s.ca, true);
        const raw = await wireGet(f.url, s.ca, false);
        if (gz.encoding !== 'gzip') throw new Error(`${f.url} was not sent gzipped`);
        if (!gunzipSync(gz.body).equals(raw.body))
          throw new Error(`${f.url}: the gzipped body is not the file`);
        size[kind].gz += gz.body.length;
        size[kind].raw += raw.body.length;
      }
      if (runIndex === 0)
        log(
          `first load: ${files.map((f) => `${new URL(f.url).pathname} (browser got ${f.encoding ?? 'identity'})`).join(', ')}; ` +
            `JS ${size.js.gz} B gzipped / ${size.js.raw} B, CSS ${size.css.gz} B / ${size.css.raw} B`,
        );

      // 3. warm loads, each next to Node's and the page's fetch of the same two pages
      const page1k = [];
      const node1k = [];
      const browser1k = [];
      const where = [];
      for (let i = 0; i < loads; i++) {
        const baselines = async () => {
          node1k.push(await nodeFetch());
          browser1k.push(await browserFetch());
        };
        if ((i + runIndex) % 2 === 0) await baselines();
        const l = await loadPage();
        page1k.push(l.ms);
        where.push(l.where);
        if ((i + runIndex) % 2 === 1) await baselines();
      }
      const w = (k) => f1(median(where.map((x) => x[k])));
      log(
        `loads ${page1k.map(f1).join(', ')} ms; Node fetch ${node1k.map(f1).join(', ')}; page fetch ${browser1k.map(f1).join(', ')}; ` +
          `medians: navigation starts ${w('navStart')} ms after goto; then html ${w('html')}, assets ${w('assets')}, ` +
          `applications fetched ${w('appsStart')}-${w('appsEnd')}, 1,000 rows ${w('rows')}, painted ${w('painted')} ms`,
      );

      // 4. event to screen, the page (open at `/`, its stream live) next to a bare Node follower
      const prefix = `live-${runIndex}-`;
      const names = Array.from({ length: events }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
      const warm = `${prefix}warm`;
      await page.evaluate(WATCH_ROWS, prefix);
      const follower = createCpsClient({ url: s.url, ca: s.ca, token: JSON.parse(s.session).token });
      const abort = new AbortController();
      const heard = new Map();
      const streamed = [];
      let opened;
      const open = new Promise((r) => (opened = r));
      const following = (async () => {
        try {
          for await (const e of followEvents(follower, { signal: abort.signal, onOpen: () => opened() })) {
            streamed.push(e.type);
            if (
              e.type === 'ApplicationCreated' &&
              typeof e.data?.name === 'string' &&
              !heard.has(e.data.name)
            )
              heard.set(e.data.name, wall());
          }
        } catch (e) {
          if (!abort.signal.aborted) throw e;
        }
      })();
      const created = [warm];
      let ev;
      try {
        await open;
        const since = new Date(Date.now() - 1_000).toISOString();
        // one event first, unmeasured: both streams are live once it has arrived on both sides
        await unwrap(s.api.POST('/v1/applications', { body: { name: warm, description: 'warm-up' } }));
        await until(
          async () => heard.has(warm) && (await page.evaluate((n) => window.__seen[n] !== undefined, warm)),
          Boolean,
          20_000,
          'the warm-up application in the page and the follower',
          { every: 50 },
        );
        const from = await page.evaluate(() => performance.now());
        const streamedBefore = streamed.length;
        for (const name of names) {
          const t0 = performance.now();
          await unwrap(s.api.POST('/v1/applications', { body: { name, description: 'live' } }));
          created.push(name);
          await sleep(Math.max(0, SPACING_MS - (performance.now() - t0)));
        }
        await until(
          async () =>
            names.every((n) => heard.has(n)) &&
            (await page.evaluate((ns) => ns.every((n) => window.__seen[n] !== undefined), names)),
          Boolean,
          30_000,
          `all ${events} applications in the page and the follower`,
          { every: 100 },
        );
        await sleep(100); // the last frames
        const seen = await page.evaluate(() => ({ dom: window.__seen, frame: window.__frame }));
        const fetches = await page.evaluate(APP_FETCHES, from);
        const types = {};
        for (const t of streamed.slice(streamedBefore)) types[t] = (types[t] ?? 0) + 1;
        const at = await createdAt(s.api, since);
        const missing = names.filter((n) => !at.has(n));
        if (missing.length) throw new Error(`no ApplicationCreated event for ${missing.join(', ')}`);
        const pageDelay = names.map((n) => seen.dom[n] - at.get(n));
        const frameDelay = names.map((n) => (seen.frame[n] ?? NaN) - at.get(n));
        const nodeDelay = names.map((n) => heard.get(n) - at.get(n));
        ev = {
          page: stats(pageDelay),
          node: stats(nodeDelay),
          frame: stats(frameDelay.filter(Number.isFinite)),
        };
        log(
          `event to row: p50/p95/max ${f1(ev.page.p50)}/${f1(ev.page.p95)}/${f1(ev.page.max)} ms ` +
            `(to the next frame ${f1(ev.frame.p50)}/${f1(ev.frame.p95)}/${f1(ev.frame.max)}); ` +
            `Node follower ${f1(ev.node.p50)}/${f1(ev.node.p95)}/${f1(ev.node.max)} ms; ` +
            `the page fetched /v1/applications ${fetches.length} times for ${events} events ` +
            `(median ${f1(median(fetches))} ms, max ${f1(Math.max(...fetches))} ms); the stream carried ` +
            `${Object.entries(types)
              .map(([t, n]) => `${n} ${t}`)
              .join(', ')}`,
        );
      } finally {
        abort.abort();
        await following.catch(() => undefined);
        // back to 1,000 applications for the next run
        await inBatches(created, 5, (name) =>
          s.api.DELETE('/v1/applications/{app}', { params: { path: { app: name } } }).catch(() => undefined),
        );
        await until(
          async () => (await allApplications(s.api)).length,
          (n) => n === APPS,
          60_000,
          `the ${created.length} live applications deleted`,
          { every: 250 },
        );
      }

      log(
        `browser: ${errors.length} error(s) in run ${runIndex + 1}${errors.length ? `:\n  ${errors.join('\n  ')}` : ''}; ` +
          `the event stream cut by navigations ${streamCuts} time(s) (expected: one per load)`,
      );
      s.consoleErrors.push(...errors);
      return {
        jsGz: { cps: size.js.gz / KB, raw: s.react.gz / KB },
        cssGz: { cps: size.css.gz / KB, raw: NaN },
        totalGz: { cps: (size.js.gz + size.css.gz) / KB, raw: s.react.gz / KB },
        totalRaw: { cps: (size.js.raw + size.css.raw) / KB, raw: s.react.raw / KB },
        apps1k: { cps: median(page1k), raw: median(node1k), loads: page1k, fetches: node1k },
        apps1kBrowser: { cps: median(page1k), raw: median(browser1k) },
        apps1kCold: { cps: cold.ms, raw: coldNode },
        eventP50: { cps: ev.page.p50, raw: ev.node.p50 },
        eventP95: { cps: ev.page.p95, raw: ev.node.p95 },
        eventMax: { cps: ev.page.max, raw: ev.node.max },
      };
    } finally {
      s.browser = undefined;
      await context?.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    }
  },

  async dispose(s) {
    await s.browser?.close().catch(() => undefined);
    if (s.up) {
      await exec(process.execPath, [CLI, 'down'], { env: s.env, timeout: 120_000 }).catch((e) =>
        log(
          `cps down: ${String(e?.stderr || e)
            .trim()
            .slice(-400)}`,
        ),
      );
      s.up = false;
    }
    rmSync(s.root, { recursive: true, force: true });
    if (s.consoleErrors.length)
      log(`browser errors over all runs: ${s.consoleErrors.length} (see each run's log above)`);
  },
};
