import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, PlatformHome } from '@cps/platform';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'tools', 'cli', 'bin', 'cps.js');

/** The `cps` binary as a user runs it, against a platform of its own. */
describe('the cps CLI: a user’s flow, output and failures', () => {
  const root = mkdtempSync(join(tmpdir(), 'cps-cli-'));
  const home = join(root, 'data');
  let env: NodeJS.ProcessEnv;
  const cps = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, timeout: 120_000 });
  const fails = async (...args: string[]) => {
    const e = (await cps(...args).then(
      () => {
        throw new Error(`cps ${args.join(' ')} should have failed`);
      },
      (err: unknown) => err,
    )) as { code: number; stderr: string };
    return e;
  };

  beforeAll(async () => {
    env = { ...process.env, CPS_HOME: home, CPS_CONFIG_DIR: join(root, 'config') };
    await PlatformHome.init(home, { env, natsPort: await freePort(), directorPort: await freePort() });
    await cps('up');
  });
  afterAll(async () => {
    await cps('down').catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('answers usage errors with exit 2 and a hint', async () => {
    const e = await fails('app', 'frobnicate');
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/unknown command|--help/);
    expect((await fails('--no-such-flag')).code).toBe(2);
    expect((await cps('app', '--help')).stdout).toMatch(/create/);
  });

  it('creates an application and a service, starts it, adds nodes with progress, and shows them', async () => {
    expect((await cps('whoami')).stdout).toMatch(/^admin \(admin\)/);
    expect((await cps('app', 'create', 'shop', '--description', 'the shop')).stdout).toMatch(/created shop/);
    expect((await cps('service', 'add', 'generic', 'jobs', '--app', 'shop')).stdout).toMatch(/added jobs/);
    const start = await cps('service', 'start', 'jobs', '--app', 'shop');
    expect(start.stderr).toMatch(/start: done/);
    const add = await cps('service', 'add-nodes', 'jobs', '--app', 'shop', '--node', '1');
    expect(add.stderr).toMatch(/add nodes: done/);
    const nodes = JSON.parse((await cps('--json', 'service', 'nodes', 'jobs', '--app', 'shop')).stdout) as {
      nodes: { role: string; state: string }[];
    };
    expect(
      nodes.nodes
        .filter((n) => n.state === 'running')
        .map((n) => n.role)
        .sort(),
    ).toEqual(['master', 'node']);
    const list = JSON.parse((await cps('--json', 'app', 'list')).stdout) as {
      applications: { name: string }[];
    };
    expect(list.applications.map((a) => a.name)).toContain('shop');
    expect((await cps('app', 'info', 'shop')).stdout).toMatch(
      /jobs\s+s[0-9a-f]+\s+generic\s+local\s+RUNNING/,
    );
    const events = (await cps('events', '--app', 'shop')).stdout;
    expect(events).toMatch(/ApplicationCreated/);
    const exported = JSON.parse((await cps('app', 'export', 'shop')).stdout) as {
      Services: { Type: string }[];
    };
    expect(exported.Services.map((s) => s.Type)).toEqual(['generic']);
    const del = await cps('app', 'delete', 'shop');
    expect(del.stderr).toMatch(/delete: done/);
    expect((await fails('app', 'info', 'shop')).stderr).toMatch(/error \[not_found\]/);
  });

  it('creates a user, signs in as them in another context, makes a token, signs out', async () => {
    /** `cps …` with `input` on standard input. */
    const withInput = (input: string, ...args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args], { env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        child.stdin.end(input);
      });
    const created = await withInput('bob-password-1', 'user', 'create', 'bob', '--credit', '10');
    expect(created.stdout, created.stderr).toMatch(/created bob/);
    const url = JSON.parse((await cps('--json', 'status')).stdout).directorUrl as string;
    const login = await withInput(
      'bob-password-1',
      '--url',
      url,
      '--ca',
      join(home, 'ca.pem'),
      'login',
      '--user',
      'bob',
      '--password-stdin',
      '--name',
      'bob',
    );
    expect(login.stdout, login.stderr).toMatch(/signed in as bob \(context bob\)/);
    expect((await cps('--context', 'bob', 'whoami')).stdout).toMatch(/^bob \(user\), credit 10/);
    const token = (await cps('--context', 'bob', 'token', 'create', 'ci')).stdout.trim();
    expect(token).toMatch(/^cps_t[0-9a-f]+_/);
    const tokens = JSON.parse((await cps('--json', '--context', 'bob', 'token', 'list')).stdout) as {
      tokens: { name: string }[];
    };
    expect(tokens.tokens.map((t) => t.name)).toContain('ci');
    expect(
      (await cps('--url', url, '--ca', join(home, 'ca.pem'), '--token', token, 'whoami')).stdout,
    ).toMatch(/^bob/);
    expect((await cps('--context', 'bob', 'logout')).stdout).toMatch(/signed out/);
    const after = await fails('--context', 'bob', 'whoami');
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/error \[unauthenticated\]/);
    // the admin's context is untouched; make it the current one again
    expect((await cps('context', 'list')).stdout).toMatch(/\*\s+bob/);
    await cps('context', 'use', 'data');
    expect((await cps('whoami')).stdout).toMatch(/^admin/);
  });

  it('shows every problem of an invalid manifest with its path, exit 1', async () => {
    const file = join(root, 'bad.json');
    writeFileSync(file, JSON.stringify({ Services: [{ Type: 'cobol' }, { ServiceName: 'x' }] }));
    const e = await fails('deploy', file);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/error \[validation\]/);
    expect(e.stderr).toMatch(/\$\.Services\[0\]\.Type: .*unknown_service_type/);
    expect(e.stderr).toMatch(/\$\.Services\[1\]\.Type/);
  });

  it('says plainly that a stopped director does not answer: exit 1, no stack trace', async () => {
    await cps('down');
    const e = await fails('app', 'list');
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(
      /error \[unavailable\]: the director at https:\/\/127\.0\.0\.1:\d+ does not answer/,
    );
    expect(e.stderr).not.toMatch(/\n\s+at /);
    await cps('up');
  });

  it('keeps a second data directory independent of the first', async () => {
    const other = join(root, 'other');
    const env2 = { ...env, CPS_HOME: other };
    await PlatformHome.init(other, { env: env2, natsPort: await freePort(), directorPort: await freePort() });
    const c2 = (...args: string[]) => run(process.execPath, [CLI, ...args], { env: env2, timeout: 120_000 });
    await c2('up');
    try {
      await c2('app', 'create', 'elsewhere');
      const here = JSON.parse((await cps('--json', '--context', 'data', 'app', 'list')).stdout) as {
        applications: { name: string }[];
      };
      const there = JSON.parse((await c2('--json', '--context', 'other', 'app', 'list')).stdout) as {
        applications: { name: string }[];
      };
      expect(there.applications.map((a) => a.name)).toEqual(['elsewhere']);
      expect(here.applications.map((a) => a.name)).not.toContain('elsewhere');
    } finally {
      await c2('down');
    }
  });
});
