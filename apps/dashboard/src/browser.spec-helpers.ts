import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (the `chromium` package, installed by the set-up). */
export const CHROMIUM = process.env['CPS_CHROMIUM'] ?? '/usr/bin/chromium';

/**
 * The launch flags of a browser under test on a closed machine: headless, no sandbox (root), and
 * none of Chromium's own background traffic (updates, sync, metrics), which would only meet
 * refused connections here.
 */
const FLAGS = JSON.parse(
  readFileSync(new URL('../chromium-flags.json', import.meta.url), 'utf8'),
) as readonly string[];

/**
 * The SHA-256 of the director's public key (base64), read from its TLS handshake while checking
 * its certificate against the platform CA: what Chromium is told to trust, and nothing more.
 */
export const directorSpki = (url: string, ca: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const u = new URL(url);
    const socket = connect({ host: u.hostname, port: Number(u.port), ca, servername: undefined }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (!cert) return reject(new Error('the director showed no certificate'));
      const der = cert.publicKey.export({ type: 'spki', format: 'der' });
      resolve(createHash('sha256').update(der).digest('base64'));
    });
    socket.on('error', reject);
  });

/** A Chromium of a test's own (fresh profile), trusting the director's key only. */
export const launchBrowser = async (o: {
  spki: string;
}): Promise<{ context: BrowserContext; close: () => Promise<void> }> => {
  const profile = mkdtempSync(join(tmpdir(), 'cps-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, `--ignore-certificate-errors-spki-list=${o.spki}`],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
};

/** The serious and critical accessibility violations axe-core finds on the page as it is. */
export const seriousViolations = async (page: Page): Promise<string[]> => {
  const r = await new AxeBuilder({ page }).analyze();
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
};

/** Saves a screenshot as a test artefact (`CPS_SCREENSHOTS`, else a temporary directory). */
export const screenshot = async (page: Page, name: string): Promise<string> => {
  const dir = process.env['CPS_SCREENSHOTS'] ?? join(tmpdir(), 'cps-screenshots');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
};
