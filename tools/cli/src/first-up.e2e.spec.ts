import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'tools', 'cli', 'bin', 'cps.js');

/** The environment of a user with nothing yet: a fresh data directory and configuration directory. */
const freshUser = (root: string, extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of Object.keys(env))
    if (k.startsWith('CPS_') && !(k in extra) && k !== 'CPS_TEST_LOG') delete env[k];
  delete env['XDG_DATA_HOME'];
  return { ...env, CPS_HOME: join(root, 'data', 'cps'), XDG_CONFIG_HOME: join(root, 'config') };
};

describe('the first cps up signs the CLI in', () => {
  for (const chosen of [undefined, 'a password the admin chose, long enough']) {
    it(`from a fresh home, ${chosen ? 'with' : 'without'} CPS_ADMIN_PASSWORD`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'cps-first-up-'));
      const env = freshUser(root, chosen ? { CPS_ADMIN_PASSWORD: chosen } : {});
      const cps = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, timeout: 90_000 });
      try {
        const up = await cps('up');
        expect(up.stdout).toMatch(/healthy/);
        if (chosen) {
          expect(up.stdout).toMatch(/admin login: admin, with the password of CPS_ADMIN_PASSWORD/);
          expect(up.stdout).not.toContain(chosen);
        } else expect(up.stdout).toMatch(/admin login: admin \/ \S+ {2}\(shown once/);
        const config = join(root, 'config', 'cps', 'config.json');
        expect(statSync(config).mode & 0o077).toBe(0);
        expect(JSON.parse(readFileSync(config, 'utf8'))).toMatchObject({
          current: 'cps',
          contexts: { cps: { user: 'admin', token: expect.stringMatching(/^cps_/) } },
        });
        expect((await cps('whoami')).stdout).toMatch(/^admin \(admin\)/);
        expect((await cps('app', 'list')).stderr).toBe('');
        // a later up leaves the CLI's credentials as they are
        const token = (): string => JSON.parse(readFileSync(config, 'utf8')).contexts.cps.token;
        const first = token();
        expect((await cps('up')).stdout).toMatch(/already running/);
        expect(token()).toBe(first);
      } finally {
        await cps('down').catch(() => undefined);
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
