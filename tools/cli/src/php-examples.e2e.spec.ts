import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud } from '@cps/clouds';
import { CLI, cliPlatform, eventually, run } from '@cps/testing';

interface Page {
  status: number;
  url: string;
  body: string;
}

/** A GET (redirects followed) or a form POST; a failure to connect is status 0, the error as body. */
const request = (url: string, form?: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(url, {
    ...(form ? { method: 'POST', body: new URLSearchParams(form) } : {}),
    headers,
    signal: AbortSignal.timeout(30_000),
  }).then(
    async (r): Promise<Page & { cookies: string[] }> => ({
      status: r.status,
      url: r.url,
      body: await r.text(),
      cookies: r.headers.getSetCookie().map((c) => c.split(';')[0]!),
    }),
    (e: unknown) => ({ status: 0, url, body: String(e), cookies: [] }),
  );

/**
 * The php examples as their READMEs deploy them, on one platform in host mode (each node a host of
 * its own): MediaWiki (`build.sh`, then `cps deploy`), and Sudoku (`cps deploy`, then `cps service
 * start`, its manifest saying `"Start": 0`), each used through its pages as a visitor does.
 */
describe.skipIf(LocalCloud.hostModeUnavailable() !== undefined)('the php examples, deployed with cps', () => {
  const platform = cliPlatform('cps-php-examples-');
  const { cps } = platform;
  const manifest = (name: string) => join(process.cwd(), 'examples', name, 'manifest.json');
  /** `cps` with a longer patience than the helper's 60 s: a deploy starts nodes and waits for them. */
  const slowCps = (...args: string[]) =>
    run(process.execPath, [CLI, ...args], { env: platform.env, timeout: 300_000 });
  const urlOf = async (app: string, svc: string): Promise<string> => {
    const info = JSON.parse((await cps('--json', 'service', 'info', svc, '--app', app)).stdout) as {
      endpoints?: Record<string, { address: string; port: number }>;
    };
    const e = info.endpoints?.['http'];
    if (!e) throw new Error('no http endpoint yet');
    return `http://${e.address}:${e.port}`;
  };
  const waitForUrl = (app: string, svc: string) =>
    eventually(
      () => urlOf(app, svc).catch(() => ''),
      (u) => u !== '',
      60_000,
    );

  beforeAll(async () => {
    const built = execFileSync('sh', [join(process.cwd(), 'examples', 'mediawiki', 'build.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 300_000,
    });
    console.log(built.trim());
    await platform.init();
    await cps('up');
  }, 420_000);
  afterAll(() => platform.cleanup(), 60_000);

  it('MediaWiki: the main page is made on first use; an anonymous edit through api.php shows on its page', async () => {
    const started = Date.now();
    expect((await slowCps('deploy', manifest('mediawiki'))).stdout).toMatch(/deployed: /);
    console.log(`mediawiki deployed in ${Date.now() - started} ms`);
    const base = await waitForUrl('mediawiki', 'web');
    // the code reaches the backend a few seconds after RUNNING; the first request makes the schema
    const main = await eventually(
      () => request(`${base}/`),
      (p) => p.status === 200 && p.body.includes('linked <code>mysql</code> service'),
      180_000,
    );
    console.log(`deploy to main page: ${Date.now() - started} ms`);
    expect(main.url).toBe(`${base}/index.php?title=Main_Page`);
    // the main page is titled after the wiki alone (MediaWiki’s pagetitle-view-mainpage)
    expect(main.body).toContain('<title>cps wiki</title>');
    expect((await request(`${base}/index.php?title=Main_Page`)).status).toBe(200);

    // an anonymous edit through the API, as a script does it: a token, then action=edit
    const tokens = await request(`${base}/api.php?action=query&meta=tokens&format=json`);
    expect(tokens.status).toBe(200);
    const token = (JSON.parse(tokens.body) as { query: { tokens: { csrftoken: string } } }).query.tokens
      .csrftoken;
    expect(token).toBe('+\\'); // an anonymous user's token
    const stamp = `Edited by the cps e2e test ${Date.now()}`;
    const edit = await request(
      `${base}/api.php`,
      {
        action: 'edit',
        title: 'Cps_e2e',
        text: `'''${stamp}''', an anonymous edit through api.php.`,
        summary: 'e2e',
        format: 'json',
        token,
      },
      tokens.cookies.length > 0 ? { cookie: tokens.cookies.join('; ') } : {},
    );
    expect(edit.status, edit.body).toBe(200);
    expect(JSON.parse(edit.body), edit.body).toMatchObject({
      edit: { result: 'Success', title: 'Cps e2e', new: '' },
    });
    const page = await request(`${base}/index.php?title=Cps_e2e`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(`<b>${stamp}</b>, an anonymous edit through api.php.`);
    // the edit is in the database, not in a backend: recent changes list it
    expect((await request(`${base}/index.php?title=Special:RecentChanges`)).body).toContain('Cps e2e');
  }, 420_000);

  it('Sudoku: deployed not started (Start 0); started, it serves puzzles and answers a wrong solution', async () => {
    const svc = (
      JSON.parse(readFileSync(manifest('sudoku'), 'utf8')) as { Services: { ServiceName: string }[] }
    ).Services[0]!.ServiceName;
    expect(svc).toBe('PHP sudoku backend');
    expect((await slowCps('deploy', manifest('sudoku'))).stdout).toMatch(/deployed: /);
    const info = async () =>
      JSON.parse((await cps('--json', 'service', 'info', svc, '--app', 'sudoku')).stdout) as {
        state: string;
        archive?: { version: string };
      };
    // the manifest's code is stored and current, but nothing runs yet
    const deployed = await info();
    expect(deployed.state).not.toBe('RUNNING');
    expect(deployed.archive?.version).toMatch(/^v[a-z0-9]+$/);

    await slowCps('service', 'start', svc, '--app', 'sudoku');
    expect((await info()).state).toBe('RUNNING');
    const base = await waitForUrl('sudoku', svc);
    const puzzle = await eventually(
      () => request(`${base}/?seed=42&level=medium`),
      (p) => p.status === 200 && p.body.includes('<title>'),
      90_000,
    );
    expect(puzzle.body).toMatch(/<title>Sudoku #42 \(medium\)<\/title>/);
    expect(puzzle.body).toContain('<form method="post"');
    expect((await request(`${base}/style.css`)).status).toBe(200);

    // a wrong solution: the puzzle's given digits kept, every empty cell filled with 1
    const asJson = JSON.parse((await request(`${base}/?seed=42&level=medium&format=json`)).body) as {
      puzzle: string;
    };
    expect(asJson.puzzle).toMatch(/^[0-9]{81}$/);
    const wrong = asJson.puzzle.replace(/0/g, '1');
    const checked = await request(`${base}/?seed=42&level=medium`, { solution: wrong });
    expect(checked.status).toBe(200);
    expect(checked.body).toMatch(/<p id="result" class="bad">Not solved yet: [^<]*row \d+ has \d+ × 1/);
    const answer = await request(`${base}/?seed=42&level=medium&format=json`, { solution: wrong });
    expect(JSON.parse(answer.body)).toMatchObject({ seed: 42, level: 'medium', solved: false });
  }, 420_000);
});
