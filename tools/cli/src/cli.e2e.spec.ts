import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

  /** The roles of a service's running nodes, from `cps --json service nodes`, sorted. */
  const runningRoles = async (svc: string, app: string): Promise<string[]> => {
    const r = JSON.parse((await cps('--json', 'service', 'nodes', svc, '--app', app)).stdout) as {
      nodes: { role: string; state: string }[];
    };
    return r.nodes
      .filter((n) => n.state === 'running')
      .map((n) => n.role)
      .sort();
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

  it('refuses a CPS_LOCAL_MODE that is neither host nor process, naming it, before it writes anything', async () => {
    const fresh = join(root, 'never-made');
    const e = (await run(process.execPath, [CLI, 'up'], {
      env: { ...env, CPS_HOME: fresh, CPS_LOCAL_MODE: 'bogus' },
    }).then(
      () => {
        throw new Error('cps up should have failed');
      },
      (err: unknown) => err,
    )) as { code: number; stderr: string };
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/error \[validation\]: CPS_LOCAL_MODE must be host or process/);
    expect(e.stderr).toMatch(/CPS_LOCAL_MODE: host or process \(invalid_value\)/);
    expect(existsSync(fresh)).toBe(false);
  });

  it('creates an application and a service, starts it, adds nodes with progress, and shows them', async () => {
    expect((await cps('whoami')).stdout).toMatch(/^admin \(admin\)/);
    expect((await cps('app', 'create', 'shop', '--description', 'the shop')).stdout).toMatch(/created shop/);
    expect((await cps('service', 'add', 'generic', 'jobs', '--app', 'shop')).stdout).toMatch(/added jobs/);
    const start = await cps('service', 'start', 'jobs', '--app', 'shop');
    expect(start.stderr).toMatch(/start: done/);
    // the service's manager started its first node meanwhile: shown live from the event stream
    expect(start.stderr).toMatch(/node n[0-9a-f]+ \(master\) requested on local/);
    expect(start.stderr).toMatch(/service jobs: \w+ -> RUNNING/);
    const add = await cps('service', 'add-nodes', 'jobs', '--app', 'shop', '--node', '1');
    expect(add.stderr).toMatch(/add nodes: done/);
    const added = /node (n[0-9a-f]+) \(node\) requested on local/.exec(add.stderr)?.[1];
    expect(added, add.stderr).toBeDefined();
    expect(add.stderr).toContain(`node ${added}: ready`);
    // the service's way back to RUNNING is shown before the outcome
    expect(add.stderr).toMatch(/: RUNNING -> ADAPTING\n[\s\S]*: ADAPTING -> RUNNING\nadd nodes: done/);
    expect(await runningRoles('jobs', 'shop')).toEqual(['master', 'node']);
    // and removes nodes: by id, then by role
    const byId = await cps('service', 'remove-nodes', 'jobs', added!, '--app', 'shop');
    expect(byId.stderr).toMatch(/remove nodes: done/);
    expect(await runningRoles('jobs', 'shop')).toEqual(['master']);
    // a removed node is listed with --all only
    const listed = async (...flags: string[]) =>
      (
        JSON.parse((await cps('--json', 'service', 'nodes', 'jobs', '--app', 'shop', ...flags)).stdout) as {
          nodes: { nodeId: string; state: string }[];
        }
      ).nodes;
    expect((await listed()).map((n) => n.nodeId)).not.toContain(added);
    expect((await listed('--all')).find((n) => n.nodeId === added)?.state).toBe('removed');
    expect((await cps('service', 'add-nodes', 'jobs', '--app', 'shop', '--node', '1')).stderr).toMatch(
      /add nodes: done/,
    );
    const byRole = await cps('service', 'remove-nodes', 'jobs', '--app', 'shop', '--node', '1');
    expect(byRole.stderr).toMatch(/remove nodes: done/);
    expect(await runningRoles('jobs', 'shop')).toEqual(['master']);
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
    // a context that does not exist is named as such
    const nope = await fails('--context', 'nope', 'whoami');
    expect(nope.code).toBe(1);
    expect(nope.stderr).toMatch(/^error \[not_found\]: no context nope \(.*\bdata\b.*\)/);
  });

  it('deploys a manifest whose Archive is a local directory: packed, uploaded, on every node', async () => {
    const manifest = join(process.cwd(), 'examples', 'generic-scripts', 'manifest.json');
    const r = await cps('deploy', manifest);
    expect(r.stderr).toMatch(/scripts: uploaded .*code \(version \S+, \d+ bytes\)/);
    expect(r.stderr).toMatch(/deploy: done/);
    // a service the deploy added is shown by its name
    expect(r.stderr).toMatch(/service scripts: PROLOGUE -> RUNNING/);
    const svc = JSON.parse(
      (await cps('--json', 'service', 'info', 'scripts', '--app', 'generic-scripts')).stdout,
    ) as { state: string; archive?: { version: string } };
    expect(svc.state).toBe('RUNNING');
    expect(svc.archive?.version).toBeDefined();
    expect(await runningRoles('scripts', 'generic-scripts')).toEqual(['master', 'node']);
    // its methods, with the arguments they take
    expect((await cps('service', 'methods', 'scripts', '--app', 'generic-scripts')).stdout).toMatch(
      /^run\s+parameters\?: string\[\]\s+Starts run\.sh/m,
    );
    // a missing local archive is refused with its path before anything is deployed
    const bad = join(root, 'missing-archive.json');
    writeFileSync(
      bad,
      JSON.stringify({ Application: 'nope', Services: [{ Type: 'generic', Archive: 'nowhere.tgz' }] }),
    );
    const e = await fails('deploy', bad);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/\$\.Services\[0\]\.Archive: /);
    expect((await fails('app', 'info', 'nope')).stderr).toMatch(/not_found/);
    await cps('app', 'delete', 'generic-scripts');
  });

  it('follows events live until Ctrl-C, then exits 0', async () => {
    await cps('app', 'create', 'live');
    const child = spawn(process.execPath, [CLI, 'events', '--follow', '--app', 'live'], { env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    const until = async (re: RegExp) => {
      const deadline = Date.now() + 20_000;
      while (!re.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(out).toMatch(re);
    };
    await until(/ApplicationCreated/);
    // a change made now reaches the follower as it happens
    await cps('app', 'rename', 'live', 'live-2');
    await until(/ApplicationRenamed/);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    await cps('app', 'delete', 'live-2');
  });

  it('signs in with a client certificate it made, until the certificate is revoked', async () => {
    const prefix = join(root, 'alice');
    const made = await cps('cert', 'create', '--out', prefix, '--days', '1');
    const serial = /certificate ([0-9a-f]+) in /.exec(made.stdout)?.[1] as string;
    expect(serial, made.stdout).toBeDefined();
    expect(statSync(`${prefix}.key`).mode & 0o777).toBe(0o600);
    const url = JSON.parse((await cps('--json', 'status')).stdout).directorUrl as string;
    // no saved context, no token: the certificate alone
    const viaCert = ['--context', 'none', '--url', url, '--ca', join(home, 'ca.pem')];
    const certFlags = ['--cert', `${prefix}.crt`, '--key', `${prefix}.key`];
    expect((await cps(...viaCert, ...certFlags, 'whoami')).stdout).toMatch(/^admin/);
    expect((await fails(...viaCert, 'whoami')).stderr).toMatch(/error \[unauthenticated\]/);
    const missingKey = await fails(...viaCert, '--cert', `${prefix}.crt`, 'whoami');
    expect(missingKey.stderr).toMatch(/--key/);
    const list = JSON.parse((await cps('--json', 'cert', 'list')).stdout) as {
      certificates: { serial: string; revoked?: boolean }[];
    };
    expect(list.certificates.map((c) => c.serial)).toContain(serial);
    expect((await cps('cert', 'revoke', serial)).stdout).toMatch(new RegExp(`revoked ${serial}`));
    const refused = await fails(...viaCert, ...certFlags, 'whoami');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error \[unauthenticated\]/);
  });

  it('completes commands in bash: the visible ones, subcommands after a group', async () => {
    const complete = async (...words: string[]) => {
      const script = [
        `source <("${process.execPath}" "${CLI}" completion bash)`,
        `COMP_WORDS=(cps ${words.map((w) => `'${w}'`).join(' ')})`,
        `COMP_CWORD=${words.length}`,
        '_cps',
        'echo "${COMPREPLY[*]}"',
      ].join('\n');
      return (await run('bash', ['-c', script], { env })).stdout.trim().split(' ');
    };
    expect(await complete('s')).toEqual(['status', 'service', 'storage']);
    expect(await complete('su')).toEqual(['']);
    expect(await complete('service', 'add')).toEqual(['add', 'add-nodes']);
    expect(await complete('app', '')).toEqual(
      expect.arrayContaining(['create', 'list', 'info', 'delete', 'export']),
    );
  });

  it('shows every problem of an invalid manifest with its path, exit 1', async () => {
    const file = join(root, 'bad.json');
    writeFileSync(file, JSON.stringify({ Services: [{ Type: 'cobol' }, { ServiceName: 'x' }] }));
    const e = await fails('deploy', file);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/error \[validation\]/);
    expect(e.stderr).toMatch(/\$\.Services\[0\]\.Type: .*unknown_service_type/);
    expect(e.stderr).toMatch(/\$\.Services\[1\]\.Type/);
    // a manifest that is not there, or not a file: said plainly, with its path
    const missing = await fails('deploy', join(root, 'nowhere.json'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `error [validation]: ${join(root, 'nowhere.json')}: no such file or directory\n`,
    );
    expect((await fails('deploy', root)).stderr).toMatch(
      /^error \[validation\]: .*: is a directory, not a file\n/,
    );
  });

  it('writes the configs of a three-server NATS cluster, and refuses a bad port or server name', async () => {
    const out = mkdtempSync(join(root, 'nats-'));
    const names = ['nats-1', 'nats-2', 'nats-3'];
    const natsConfig = (...args: string[]) => [
      '--home',
      home,
      'platform',
      'nats-config',
      ...args,
      '--out',
      out,
    ];
    const r = await cps(...natsConfig('--servers', names.join(',')));
    for (const n of names) {
      expect(r.stdout).toContain(`${n}  ${join(out, n, 'server.conf')}  tls://${n}:4222`);
      const conf = readFileSync(join(out, n, 'server.conf'), 'utf8');
      const routes = /routes: \[([^\]]*)\]/.exec(conf)?.[1] ?? '';
      expect(routes, n).toBe(
        names
          .filter((x) => x !== n)
          .map((x) => `"tls://${x}:6222"`)
          .join(', '),
      );
      for (const f of ['server-cert.pem', 'server-key.pem', 'ca.pem'])
        expect(existsSync(join(out, n, f)), `${n}/${f}`).toBe(true);
    }
    expect(r.stdout).toMatch(
      /cps platform init --nats tls:\/\/nats-1:4222,tls:\/\/nats-2:4222,tls:\/\/nats-3:4222$/m,
    );
    const port = await fails(...natsConfig('--servers', 'nats-1', '--client-port', '0'));
    expect(port.code).toBe(1);
    expect(port.stderr).toMatch(/error \[validation\]/);
    expect(port.stderr).toMatch(/^ {2}--client-port: /m);
    const name = await fails(...natsConfig('--servers', 'Bad Name'));
    expect(name.code).toBe(1);
    expect(name.stderr).toMatch(/^ {2}servers\[0\]: /m);
    expect(name.stderr).toContain('"Bad Name"');
  });

  it('says plainly that a stopped director does not answer: exit 1, no stack trace', async () => {
    await cps('deploy', join(process.cwd(), 'examples', 'generic-hello.json'));
    await cps('down');
    const e = await fails('app', 'list');
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(
      /error \[unavailable\]: the director at https:\/\/127\.0\.0\.1:\d+ does not answer/,
    );
    expect(e.stderr).not.toMatch(/\n\s+at /);
    await cps('up');
    // up again, the services answer at once: their managers and nodes are brought back
    expect(await runningRoles('hello', 'generic-hello')).toEqual(['master']);
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
