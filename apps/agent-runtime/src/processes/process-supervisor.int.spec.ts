import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { ProcessSupervisor } from './process-supervisor.js';
import type { WorkloadEvent, WorkloadSpec } from './workload.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const waitFor = async <T>(
  probe: () => T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};

/** Running, and not a zombie: this container's PID 1 does not reap orphans. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

const rejection = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

const node = (code: string, over: Partial<WorkloadSpec> = {}): WorkloadSpec => ({
  name: 'w',
  command: process.execPath,
  args: ['-e', code],
  cwd: tmpdir(),
  env: {},
  restart: 'never',
  ...over,
});

/** The text of the `out` lines of a log. */
const outLines = (log: string): string[] =>
  log
    .split('\n')
    .filter((l) => l.startsWith('out '))
    .map((l) => l.split(' ').slice(2).join(' '));

describe('ProcessSupervisor', () => {
  const dirs: string[] = [];
  const supervisors: ProcessSupervisor[] = [];
  const temp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'cps-supervisor-'));
    dirs.push(d);
    return d;
  };
  const supervisor = (): { s: ProcessSupervisor; logDir: string; events: WorkloadEvent[] } => {
    const logDir = join(temp(), 'logs');
    const s = new ProcessSupervisor({ logDir });
    const events: WorkloadEvent[] = [];
    s.onEvent((e) => events.push(e));
    supervisors.push(s);
    return { s, logDir, events };
  };

  afterEach(async () => {
    await Promise.all(supervisors.splice(0).map((s) => s.stopAll({ graceMs: 200 })));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('captures stdout and stderr, one prefixed line each, readable through logs()', async () => {
    const { s, events } = supervisor();
    await s.start(
      node(`console.log('hello out'); console.error('oops'); process.stdout.write('no newline')`),
    );
    const log = await waitFor(() => {
      const l = s.logs('w');
      return l.includes('no newline') && l;
    }, 'the output');
    expect(log).toMatch(/^out \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z hello out$/m);
    expect(log).toMatch(/^err \S+Z oops$/m);
    expect(log).toMatch(/^out \S+Z no newline$/m);
    await waitFor(() => s.status('w').state === 'exited', 'the exit');
    expect(s.status('w')).toMatchObject({
      state: 'exited',
      restarts: 0,
      lastExit: { code: 0, signal: null },
    });
    expect(events.map((e) => e.type)).toEqual(['started', 'exited']);
  });

  it('hands stdout to onStdout instead of the log when asked (stderr still logged), across restarts', async () => {
    const { s } = supervisor();
    let seen = '';
    await s.start(
      node(`console.log('figure 1'); console.error('a warning'); setTimeout(() => process.exit(1), 50)`, {
        restart: 'always',
        backoff: { initialMs: 50 },
        onStdout: (b) => (seen += b.toString()),
      }),
    );
    await waitFor(() => seen.split('figure 1').length > 2, 'two runs of output');
    const log = s.logs('w');
    expect(log).toMatch(/^err \S+Z a warning$/m);
    expect(outLines(log)).toEqual([]);
  });

  it('gives the workload exactly the environment it was given', async () => {
    process.env.CPS_SUPERVISOR_CANARY = 'must not leak';
    try {
      const { s } = supervisor();
      await s.start(
        node('console.log(JSON.stringify(process.env))', { env: { ONLY: 'this', PATH: '/nowhere' } }),
      );
      const line = await waitFor(() => outLines(s.logs('w'))[0], 'the environment');
      expect(JSON.parse(line)).toEqual({ ONLY: 'this', PATH: '/nowhere' });
    } finally {
      delete process.env.CPS_SUPERVISOR_CANARY;
    }
  });

  it('writes its input to the workload’s stdin at every start, and closes it', async () => {
    const { s } = supervisor();
    const read = `let t = ''; process.stdin.on('data', (b) => (t += b)); process.stdin.on('end', () => { console.log('got ' + t.trim()); process.exit(1); });`;
    await s.start(
      node(read, {
        input: 'port 1234\n',
        restart: 'always',
        backoff: { initialMs: 10, maxMs: 10, resetAfterMs: 1_000 },
      }),
    );
    // the second run reads it again: a restart gets the same configuration
    const lines = await waitFor(() => {
      const l = outLines(s.logs('w'));
      return l.length >= 2 && l;
    }, 'two runs');
    expect(lines.slice(0, 2)).toEqual(['got port 1234', 'got port 1234']);
    await s.stop('w');
  });

  it('restarts a crashing workload with growing delays, then marks it failed', async () => {
    const { s, events } = supervisor();
    const backoff = { initialMs: 150, maxMs: 5_000 };
    await s.start(node('process.exit(7)', { restart: 'always', backoff, maxRestarts: 3 }));
    const failed = await waitFor(() => events.find((e) => e.type === 'failed'), 'failed', 30_000);
    expect(failed).toMatchObject({ restarts: 3, lastExit: { code: 7 } });
    expect(s.status('w')).toMatchObject({ state: 'failed', restarts: 3, lastExit: { code: 7 } });
    expect(s.status('w').pid).toBeUndefined();
    expect(events.filter((e) => e.type === 'started')).toHaveLength(4);
    const delays = events.flatMap((e) => (e.type === 'restarting' ? [e.delayMs] : []));
    expect(delays).toEqual([150, 300, 600]);
    const exits = events.flatMap((e) => (e.type === 'exited' ? [e.exit.at.getTime()] : []));
    const starts = events.flatMap((e) => (e.type === 'started' ? [e.at.getTime()] : []));
    const gaps = delays.map((_, i) => (starts[i + 1] as number) - (exits[i] as number));
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual((delays[i] as number) - 5));
    expect(gaps[2]).toBeGreaterThan(gaps[0] as number);
  });

  it("does not restart a 'never' workload, nor an 'on-failure' one that succeeded", async () => {
    const { s, events } = supervisor();
    const backoff = { initialMs: 50 };
    await s.start(node('process.exit(3)', { name: 'never', backoff }));
    await s.start(node('process.exit(0)', { name: 'fine', restart: 'on-failure', backoff }));
    await waitFor(() => s.list().every((w) => w.state === 'exited'), 'both exits');
    await sleep(400);
    expect(s.status('never')).toMatchObject({ state: 'exited', restarts: 0, lastExit: { code: 3 } });
    expect(s.status('fine')).toMatchObject({ state: 'exited', restarts: 0, lastExit: { code: 0 } });
    expect(events.filter((e) => e.type === 'started')).toHaveLength(2);
    expect(events.some((e) => e.type === 'restarting')).toBe(false);
  });

  it('stop() sends SIGTERM, then SIGKILL after the grace, to the whole group, and never restarts', async () => {
    const { s, events } = supervisor();
    const grandchild = `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)`;
    await s.start(
      node(
        `process.on('SIGTERM', () => console.log('got SIGTERM'));
         const g = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: 'ignore' });
         g.on('spawn', () => console.log('grandchild ' + g.pid));
         setInterval(() => {}, 1000);`,
        { restart: 'always', backoff: { initialMs: 50 } },
      ),
    );
    const pid = s.status('w').pid as number;
    const gpid = Number(
      await waitFor(
        () =>
          outLines(s.logs('w'))
            .find((l) => l.startsWith('grandchild '))
            ?.split(' ')[1],
        'the grandchild',
      ),
    );
    expect(alive(pid) && alive(gpid)).toBe(true);
    await sleep(200);
    const graceMs = 1_000;
    const t0 = Date.now();
    const final = await s.stop('w', { graceMs });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(graceMs - 20);
    expect(took).toBeLessThan(graceMs + 5_000);
    expect(final).toMatchObject({ state: 'stopped', lastExit: { code: null, signal: 'SIGKILL' } });
    await waitFor(() => s.logs('w').includes('got SIGTERM'), 'the SIGTERM trace');
    await waitFor(() => !alive(pid) && !alive(gpid), 'the group to die', 5_000);
    await sleep(300);
    expect(s.status('w').state).toBe('stopped');
    expect(events.filter((e) => e.type === 'started')).toHaveLength(1);
  });

  it('stops a workload waiting in back-off without another run', async () => {
    const { s, events } = supervisor();
    await s.start(node('process.exit(1)', { restart: 'always', backoff: { initialMs: 2_000 } }));
    await waitFor(() => s.status('w').state === 'backoff', 'back-off');
    expect(await s.stop('w')).toMatchObject({ state: 'stopped', restarts: 0 });
    await sleep(300);
    expect(events.filter((e) => e.type === 'started')).toHaveLength(1);
  });

  it('keeps the log within its limit on disk while several MiB go through', async () => {
    const { s, logDir } = supervisor();
    const limit = 64 * 1024;
    await s.start(
      node(
        `const line = 'x'.repeat(1000);
         for (let i = 0; i < 4096; i++) process.stdout.write(i + ' ' + line + '\\n');
         console.log('done');`,
        { logLimitBytes: limit },
      ),
    );
    const size = (f: string): number => {
      try {
        return statSync(join(logDir, f)).size;
      } catch {
        return 0;
      }
    };
    let most = 0;
    await waitFor(() => {
      most = Math.max(most, size('w.log') + size('w.log.1'));
      return s.logs('w').endsWith(' done\n');
    }, 'the end of the output');
    expect(size('w.log')).toBeLessThanOrEqual(limit);
    expect(size('w.log.1')).toBeLessThanOrEqual(limit);
    expect(most).toBeLessThanOrEqual(2 * limit);
    const log = s.logs('w');
    expect(Buffer.byteLength(log)).toBeLessThanOrEqual(limit);
    expect(Buffer.byteLength(log)).toBeGreaterThan(limit / 2);
    expect(log).toMatch(/^out \S+Z 4095 x{1000}$/m);
    expect(log).toMatch(/^out /);
    expect(Buffer.byteLength(s.logs('w', { tailBytes: 100 }))).toBeLessThanOrEqual(100);
    expect(Buffer.byteLength(s.logs('w', { tailBytes: 10 * limit }))).toBeLessThanOrEqual(limit);
  });

  it('rejects a second start of a running name (conflict) and unknown names (not_found)', async () => {
    const { s } = supervisor();
    await s.start(node('setInterval(() => {}, 1000)'));
    expect(s.status('w').state).toBe('running');
    expect(hasErrorCode(await rejection(s.start(node('0'))), 'conflict')).toBe(true);
    expect(hasErrorCode(await rejection(s.stop('nope')), 'not_found')).toBe(true);
    expect(
      hasErrorCode(
        thrown(() => s.status('nope')),
        'not_found',
      ),
    ).toBe(true);
    expect(
      hasErrorCode(
        thrown(() => s.logs('nope')),
        'not_found',
      ),
    ).toBe(true);
    expect(hasErrorCode(await rejection(s.start(node('0', { name: 'a/b' }))), 'validation')).toBe(true);
    await s.stop('w', { graceMs: 1_000 });
    expect((await s.start(node('0'))).name).toBe('w');
  });

  it('reports a command that cannot be spawned as an exit with an error', async () => {
    const { s } = supervisor();
    const status = await s.start({ ...node(''), command: join(temp(), 'missing') });
    expect(status.state).toBe('exited');
    expect(status.lastExit?.error).toMatch(/ENOENT/);
  });

  describe('as an unprivileged user', () => {
    const root = process.getuid?.() === 0;
    let uid = 0;
    let gid = 0;
    beforeAll(() => {
      if (!root) return;
      const id = (flag: string): number =>
        Number(execFileSync('id', [flag, 'cps-work'], { encoding: 'utf8' }));
      try {
        id('-u');
      } catch {
        execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'cps-work']);
      }
      uid = id('-u');
      gid = id('-g');
    });

    it.skipIf(!root)('runs as that uid and cannot read a root-only file', async () => {
      const secretDir = join(temp(), 'secret');
      mkdirSync(secretDir, { mode: 0o700 });
      chmodSync(secretDir, 0o700);
      const secret = join(secretDir, 'key');
      writeFileSync(secret, 'root only', { mode: 0o600 });
      const { s } = supervisor();
      await s.start(
        node(
          `console.log(process.getuid() + ' ' + process.getgid());
           try { require('node:fs').readFileSync(process.env.SECRET); console.log('read it'); }
           catch (e) { console.log(e.code); }`,
          { env: { SECRET: secret }, user: { uid, gid } },
        ),
      );
      const lines = await waitFor(() => {
        const l = outLines(s.logs('w'));
        return l.length >= 2 && l;
      }, 'the output');
      expect(lines).toEqual([`${uid} ${gid}`, 'EACCES']);
    });
  });
});

describe('the exit hook', () => {
  let dir: string;
  const hosts: ChildProcess[] = [];
  const workloads: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cps-exit-hook-'));
    const ts = pathToFileURL(createRequire(import.meta.url).resolve('typescript')).href;
    writeFileSync(
      join(dir, 'hooks.mjs'),
      `import { readFile } from 'node:fs/promises';
       import ts from '${ts}';
       export async function resolve(specifier, context, next) {
         try { return await next(specifier, context); } catch (e) {
           if (specifier.endsWith('.js') && context.parentURL?.endsWith('.ts'))
             return next(specifier.slice(0, -3) + '.ts', context);
           throw e;
         }
       }
       export async function load(url, context, next) {
         if (!url.endsWith('.ts')) return next(url, context);
         const { outputText } = ts.transpileModule(await readFile(new URL(url), 'utf8'), {
           fileName: url,
           compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
         });
         return { format: 'module', source: outputText, shortCircuit: true };
       }`,
    );
    writeFileSync(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module'; register('./hooks.mjs', import.meta.url);`,
    );
    writeFileSync(
      join(dir, 'host.mjs'),
      `const { ProcessSupervisor } = await import(process.env.SUPERVISOR_URL);
       const s = new ProcessSupervisor({ logDir: process.env.LOG_DIR });
       await s.start({ name: 'w', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'],
         cwd: process.cwd(), env: {}, restart: 'always' });
       console.log('workload ' + s.status('w').pid);
       if (process.argv[2] === 'exit') setTimeout(() => process.exit(0), 100);
       else setInterval(() => {}, 1000);`,
    );
  });

  afterAll(() => {
    for (const h of hosts) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL');
    for (const pid of workloads) if (alive(pid)) process.kill(-pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const host = async (
    mode: 'exit' | 'signal',
  ): Promise<{ workload: number; ended: Promise<unknown[]>; h: ChildProcess }> => {
    const h = spawn(
      process.execPath,
      ['--conditions=@cps/source', '--import', join(dir, 'register.mjs'), join(dir, 'host.mjs'), mode],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          SUPERVISOR_URL: new URL('./process-supervisor.ts', import.meta.url).href,
          LOG_DIR: join(dir, `logs-${mode}`),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    hosts.push(h);
    const ended = new Promise<unknown[]>((r) => h.once('exit', (...a) => r(a)));
    let out = '';
    h.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    h.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const workload = Number(
      await waitFor(() => /workload (\d+)/.exec(out)?.[1], `the host to start: ${out}`, 30_000),
    );
    workloads.push(workload);
    return { workload, ended, h };
  };

  it('kills the workloads when the host exits normally', async () => {
    const { workload, ended } = await host('exit');
    expect(await ended).toEqual([0, null]);
    await waitFor(() => !alive(workload), 'the workload to die', 5_000);
  });

  it('kills the workloads when the host dies of an unhandled SIGTERM, which still ends it', async () => {
    const { workload, ended, h } = await host('signal');
    expect(alive(workload)).toBe(true);
    h.kill('SIGTERM');
    expect(await ended).toEqual([null, 'SIGTERM']);
    await waitFor(() => !alive(workload), 'the workload to die', 5_000);
  });
});
