import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { cliPlatform, eventually } from '@cps/testing';
import { directorSpki, launchBrowser, screenshot, seriousViolations } from './browser.spec-helpers.js';

const sh = promisify(execFile);
const PASSWORD = 'dashboard-admin-password';
/** How long the page may take to show what an event changed (the issue asks for 1 s; the machine is shared). */
const LIVE_MS = 5_000;

/**
 * The dashboard as a person uses it, in Debian's Chromium against a platform of its own brought up
 * by `cps up`: signing in, deploying a pasted manifest, code, a generated method form, logs, nodes
 * added and killed, the history slider, a stream cut by a killed director, and a second user who
 * must not see the first one's application. axe-core checks every page.
 */
describe('the web dashboard, in a browser', () => {
  const p = cliPlatform('cps-dashboard-');
  p.env['CPS_LOCAL_MODE'] = 'process';
  p.env['CPS_ADMIN_PASSWORD'] = PASSWORD;
  let url: string;
  let page: Page;
  let close: () => Promise<void>;
  const cps = async (...args: string[]) => JSON.parse((await p.cps('--json', ...args)).stdout) as unknown;

  const director = () =>
    JSON.parse(readFileSync(join(p.home, 'run', 'director.json'), 'utf8')) as { url: string; pid: number };

  /** No serious or critical accessibility violation on the page as it is now. */
  const accessible = async (name: string) => {
    expect(await seriousViolations(page), name).toEqual([]);
    await screenshot(page, name);
  };

  /** What the platform recorded about a node, and its manager's last log lines: for a failure's message. */
  const diagnosis = async (nodeId: string) => {
    const events = (await cps('events', '--app', 'shop', '--limit', '500')) as {
      events: { at: string; type: string; data: { nodeId?: string } }[];
    };
    const about = events.events.filter((e) => e.data.nodeId === nodeId).map((e) => `${e.at} ${e.type}`);
    const managers = (await p.localNodes()).filter((n) => n.kind === 'manager');
    const logs = managers.map((m) =>
      readFileSync(join(p.home, 'cloud', 'nodes', m.nodeId, 'node.log'), 'utf8')
        .split('\n')
        .slice(-30)
        .join('\n'),
    );
    return `its events: ${about.join(', ')}; the managers' logs:\n${logs.join('\n')}`;
  };

  const signIn = async (username: string, password: string) => {
    // other pages have fields of these names too (a new user's): the sign-in page first
    await page.getByRole('heading', { name: 'Sign in to cps' }).waitFor();
    await page.getByLabel('User name').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).or(page.getByRole('alert')).first().waitFor();
    expect(await page.getByRole('alert').allTextContents()).toEqual([]);
  };

  beforeAll(async () => {
    await p.init();
    await p.cps('up');
    url = director().url;
    const spki = await directorSpki(url, readFileSync(join(p.home, 'ca.pem'), 'utf8'));
    const browser = await launchBrowser({ spki });
    close = browser.close;
    page = await browser.context.newPage();
  });
  afterAll(async () => {
    await close?.();
    await p.cleanup();
  });

  it('serves the sign-in page under a strict Content-Security-Policy, and signs the admin in', async () => {
    const r = await page.goto(url);
    expect(r?.status()).toBe(200);
    expect(r?.headers()['content-security-policy']).toMatch(/script-src 'self'/);
    await page.getByRole('heading', { name: 'Sign in to cps' }).waitFor();
    await accessible('sign-in');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/unauthenticated/);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Applications' }).waitFor();
    await page.getByText('No applications yet').waitFor();
    await accessible('applications-empty');
  });

  it('shows a bad manifest’s problems at their path and creates nothing', async () => {
    await page
      .getByLabel('Manifest (JSON)')
      .fill(
        JSON.stringify({ Application: 'broken', Services: [{ ServiceName: 'x', Type: 'no-such-type' }] }),
      );
    await page.getByRole('button', { name: 'Deploy' }).click();
    const problems = page.getByRole('list', { name: 'manifest problems' });
    await problems.waitFor();
    expect(await problems.textContent()).toContain('$.Services[0].Type');
    await accessible('manifest-refused');
    expect(await cps('app', 'list')).toMatchObject({ applications: [] });
  });

  it('deploys a pasted manifest and shows the service reach RUNNING without a reload', async () => {
    await page.evaluate('window.sameDocument = true');
    await page.getByLabel('Manifest (JSON)').fill(
      JSON.stringify({
        Application: 'shop',
        Description: 'a shop',
        Services: [{ ServiceName: 'jobs', Type: 'generic', Start: 1, StartupInstances: { master: 1 } }],
      }),
    );
    await page.getByRole('button', { name: 'Deploy' }).click();
    await page.getByRole('link', { name: 'Open shop' }).click();
    await page.getByRole('heading', { name: /shop/ }).waitFor();
    const row = page.getByRole('table', { name: 'services' }).getByRole('row', { name: /jobs/ });
    await expect.poll(() => row.textContent(), { timeout: 60_000 }).toMatch(/RUNNING/);
    expect(await page.evaluate('window.sameDocument')).toBe(true);
    await accessible('application');
    await page.getByRole('link', { name: 'Applications' }).click();
    await expect
      .poll(() => page.getByRole('table', { name: 'applications' }).textContent())
      .toMatch(/shop.*jobs RUNNING/);
    await accessible('applications');
    await page.getByRole('link', { name: 'shop' }).click();
  });

  it('uploads code, calls a method through its generated form, and follows a node’s log live', async () => {
    const code = join(p.root, 'code');
    mkdirSync(code, { recursive: true });
    writeFileSync(
      join(code, 'run.sh'),
      '#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo "tick $i $*"; sleep 1; done\n',
      {
        mode: 0o755,
      },
    );
    await sh('tar', ['-czf', join(p.root, 'code.tar.gz'), '-C', code, 'run.sh']);
    await page.getByRole('link', { name: 'jobs' }).click();
    await page.getByRole('heading', { name: /jobs/ }).waitFor();
    await page.getByLabel('Archive (tar.gz, tar or zip)').setInputFiles(join(p.root, 'code.tar.gz'));
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByText(/Uploaded version/).waitFor({ timeout: 30_000 });
    await page.getByRole('combobox', { name: /^Method/ }).selectOption('run');
    // the form generated from run's JSON Schema: a list of parameters, one added and filled
    const methods = page.getByRole('region', { name: 'Methods' });
    await methods.getByRole('button', { name: 'Add', exact: true }).click();
    await methods.getByRole('textbox').fill('from-the-form');
    await page.getByRole('button', { name: 'Call run' }).click();
    await page.getByRole('status', { name: 'result of run' }).waitFor({ timeout: 30_000 });
    const log = page.getByLabel(/^log of /);
    const tick = async () =>
      Number(/tick (\d+) from-the-form\s*$/.exec((await log.textContent()) ?? '')?.[1] ?? 0);
    await expect.poll(tick, { timeout: 30_000 }).toBeGreaterThan(0);
    const first = await tick();
    await expect.poll(tick, { timeout: 10_000 }).toBeGreaterThan(first);
    await accessible('service');
  });

  it('adds a node that appears live, and shows a node killed with -9 fail and be replaced', async () => {
    await page.getByLabel('Role').selectOption('node');
    await page.getByRole('button', { name: 'Add nodes' }).click();
    const nodeRows = page.getByRole('table', { name: 'node nodes' }).locator('tbody tr');
    await expect.poll(() => nodeRows.count(), { timeout: LIVE_MS }).toBe(1);
    await expect.poll(() => nodeRows.first().textContent(), { timeout: 60_000 }).toMatch(/running/);
    const victim = String(await nodeRows.first().getAttribute('data-node'));
    const local = (await p.localNodes()).find((n) => n.nodeId === victim);
    expect(local?.instanceId).toBeTruthy();
    // every text the victim's row shows from now on, however briefly
    await page.evaluate(`window.victimSeen = [];
      new MutationObserver(() => {
        const row = document.querySelector('tr[data-node="${victim}"]');
        window.victimSeen.push(row ? row.textContent : '(gone)');
      }).observe(document.body, { subtree: true, childList: true, characterData: true });`);
    process.kill(Number(local?.instanceId), 'SIGKILL');
    // failed (shown while it lasts), then replaced by another running node
    const seen = () => page.evaluate<string[]>('window.victimSeen');
    await expect
      .poll(async () => (await seen()).some((t) => /failed|no heartbeat/.test(t)), { timeout: 30_000 })
      .toBe(true)
      .catch(async (e: unknown) => {
        throw new Error(`the page never showed ${victim} fail; ${await diagnosis(victim)}`, { cause: e });
      });
    await expect
      .poll(
        async () =>
          (await nodeRows.allTextContents()).some((t) => t.includes('running') && !t.includes(victim)),
        { timeout: 60_000 },
      )
      .toBe(true);
    await page.getByRole('link', { name: 'Events' }).click();
    await page.getByLabel('Event types').fill('NodeFailed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'events' }).textContent()).toContain(victim);
    await accessible('events');
  });

  it('shows the application before a node was added when the history slider is moved back', async () => {
    const events = (await cps('events', '--app', 'shop', '--limit', '500')) as {
      events: { type: string; data: { nodeId?: string; role?: string } }[];
    };
    const added = events.events.findIndex((e) => e.type === 'NodeRequested' && e.data.role === 'node');
    expect(added).toBeGreaterThan(0);
    await page.goto(`${url}/apps/shop`);
    await page.getByRole('heading', { name: /shop/ }).waitFor();
    const slider = page.getByRole('slider');
    await expect.poll(() => slider.getAttribute('max')).not.toBe('1');
    // the slider's positions are the application's events: `added` is the one just before the node's request
    await slider.fill(String(added));
    const then = page.getByRole('table', { name: 'services then' });
    await then.waitFor();
    const text = (await then.textContent()) ?? '';
    expect(text).toMatch(/master/);
    expect(text).not.toMatch(/\bnode\b/);
    await accessible('history');
    await page.getByRole('button', { name: 'Back to now' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'services' }).textContent()).toMatch(/1 node/);
  });

  it('says so while the stream is cut by a killed director, and catches up once it is back', async () => {
    const before = director().pid;
    process.kill(before, 'SIGKILL');
    await page.getByRole('status').filter({ hasText: 'Live updates are cut' }).waitFor({ timeout: 15_000 });
    await expect.poll(() => director().pid, { timeout: 60_000 }).not.toBe(before);
    await eventually(
      () =>
        p.cps('whoami').then(
          () => true,
          () => false,
        ),
      (ok) => ok,
      60_000,
    );
    await page.getByText('Live updates are cut').waitFor({ state: 'detached', timeout: 30_000 });
    await p.cps('service', 'stop', 'jobs', '--app', 'shop');
    const row = page.getByRole('table', { name: 'services' }).getByRole('row', { name: /jobs/ });
    await expect.poll(() => row.textContent(), { timeout: 30_000 }).toMatch(/STOPPED/);
  });

  it('is readable at 360 px wide', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    for (const path of ['/', '/apps/shop', '/apps/shop/services/jobs', '/events', '/account', '/admin']) {
      await page.goto(`${url}${path}`);
      await page.locator('h1').first().waitFor();
      // what sticks out of the window, outside a box that scrolls it (wide tables do)
      const wide = await page.evaluate(`[...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .filter((e) => { for (let p = e.parentElement; p; p = p.parentElement) if (getComputedStyle(p).overflowX !== 'visible') return false; return true; })
        .map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`);
      expect(wide, path).toEqual([]);
    }
    await screenshot(page, 'narrow-admin');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('keeps a second user away from the first one’s application, even by a typed URL', async () => {
    await page.goto(`${url}/account`);
    await page.getByRole('heading', { name: 'Account' }).waitFor();
    await accessible('account');
    await page.goto(`${url}/admin`);
    await page.getByLabel('User name').fill('bob');
    await page.getByLabel('Password').fill('bob-password-2026');
    await page.getByRole('button', { name: 'Create the user' }).click();
    await page.getByText('Created bob.').waitFor();
    await accessible('users');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn('bob', 'bob-password-2026');
    await page.getByRole('link', { name: 'Applications' }).click();
    await page.getByText('No applications yet').waitFor();
    expect(await page.getByRole('link', { name: 'Users' }).count()).toBe(0);
    await page.goto(`${url}/apps/shop`);
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/not_found/);
    await page.goto(`${url}/apps/shop/services/jobs`);
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/not_found/);
    expect(await page.getByText('jobs', { exact: true }).count()).toBe(0);
    await accessible('not-yours');
  });
});
