import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectBus } from '@cps/bus';
import { CpsError } from '@cps/core';
import { ensureEventStream, ensureLogStream, ensureSnapshotBucket } from '@cps/events';
import { NatsServers } from '../nats-server/cluster.js';
import type { PlatformHome } from '../home/platform-home.js';
import { checkHealth, type PlatformHealth } from './health.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const pidFile = (home: PlatformHome): string => join(home.runDir, 'supervisor.pid');
const readyFile = (home: PlatformHome): string => join(home.runDir, 'ready.json');

/** True once supervisor `pid` has started its server and created the streams. */
const readyBy = (home: PlatformHome, pid: number): boolean => readyInfo(home)?.supervisor === pid;

/** What the running supervisor wrote once its children were ready. */
export const readyInfo = (
  home: PlatformHome,
): { supervisor: number; nats?: number; directorUrl?: string } | undefined => {
  try {
    return JSON.parse(readFileSync(readyFile(home), 'utf8')) as { supervisor: number; directorUrl?: string };
  } catch {
    return undefined;
  }
};

/** True while `pid` runs; a zombie (dead, not yet reaped by its parent or init) counts as gone. */
export const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
};
const alive = isRunning;

/** The pid of this home's running supervisor, if any (a stale pid file is ignored). */
export const supervisorPid = (home: PlatformHome): number | undefined => {
  if (!existsSync(pidFile(home))) return undefined;
  const pid = Number(readFileSync(pidFile(home), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  const cmd = existsSync(`/proc/${pid}/cmdline`)
    ? readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    : 'supervisor';
  return cmd.includes('supervisor') ? pid : undefined;
};

/**
 * A child (nats-server, director) left running by a supervisor that was killed with -9: ours by its
 * pid file, and only if that pid still runs the same program.
 */
const stopOrphan = async (
  home: PlatformHome,
  name: 'nats' | 'director',
  program: string,
  log: (line: string) => void,
): Promise<void> => {
  const file = join(home.runDir, `${name}.pid`);
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').trim());
  const cmdline = `/proc/${pid}/cmdline`;
  if (
    !Number.isInteger(pid) ||
    pid <= 0 ||
    !alive(pid) ||
    !existsSync(cmdline) ||
    !readFileSync(cmdline, 'utf8').includes(program)
  )
    return;
  log(`stopping ${program} ${pid} left by a previous supervisor`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (alive(pid)) await sleep(20);
};

/**
 * Runs in the foreground: starts the platform's nats-server, creates the event stream and snapshot
 * bucket, and restarts the server (with back-off) whenever it dies, until SIGTERM/SIGINT.
 */
export const runSupervisor = async (
  home: PlatformHome,
  log: (line: string) => void = console.log,
  o: { readonly directorEntry?: string } = {},
): Promise<void> => {
  mkdirSync(home.runDir, { recursive: true, mode: 0o700 });
  if (supervisorPid(home) !== undefined)
    throw new CpsError('conflict', 'a supervisor already runs for this platform');
  writeFileSync(pidFile(home), String(process.pid), { mode: 0o600 });
  rmSync(readyFile(home), { force: true });
  await stopOrphan(home, 'nats', 'nats-server', log);
  if (o.directorEntry) await stopOrphan(home, 'director', o.directorEntry, log);
  const secrets = home.secrets();
  const info = home.info();
  let stopping = false;
  const servers = await NatsServers.start({
    dir: home.natsDir,
    secrets,
    size: 1,
    serverKey: secrets.serverKey,
    port: info.natsPort,
  });
  const natsPid = (pid: number | undefined): void =>
    writeFileSync(join(home.runDir, 'nats.pid'), String(pid), { mode: 0o600 });
  natsPid(servers.processes[0]?.pid);
  log(`nats-server pid ${servers.processes[0]?.pid} on ${servers.urls.join(', ')}`);
  const own = await home.directorIdentity();
  const nc = await connectBus({
    servers: info.natsUrls,
    tls: own.tls,
    credentials: own.credentials,
    inboxPrefix: own.inboxPrefix,
    reconnect: false,
  });
  await ensureEventStream(nc);
  await ensureSnapshotBucket(nc);
  await ensureLogStream(nc);
  await nc.close();
  const director = o.directorEntry ? new DirectorChild(home, o.directorEntry, log) : undefined;
  const directorUrl = director ? await director.start() : undefined;
  writeFileSync(
    readyFile(home),
    JSON.stringify({ supervisor: process.pid, nats: servers.processes[0]?.pid, directorUrl }),
    { mode: 0o600 },
  );

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('stopping');
    await director?.stop();
    await servers.stop();
    rmSync(pidFile(home), { force: true });
    rmSync(readyFile(home), { force: true });
    rmSync(join(home.runDir, 'nats.pid'), { force: true });
    process.exit(0);
  };
  void director?.keepAlive(() => stopping);
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());

  let backoff = 250;
  for (;;) {
    const started = Date.now();
    const code = await (servers.processes[0] as NonNullable<(typeof servers.processes)[0]>).whenExited();
    if (stopping) return;
    log(`nats-server exited (${String(code)}); restarting in ${backoff} ms`);
    await sleep(backoff);
    backoff = Date.now() - started > 60_000 ? 250 : Math.min(backoff * 2, 10_000);
    try {
      const p = await servers.restart(0);
      natsPid(p.pid);
      log(`nats-server restarted, pid ${p.pid}`);
    } catch (e) {
      log(`restart failed: ${(e as Error).message}`);
    }
  }
};

/**
 * The director process of a home, supervised: started after nats-server, ready once it has
 * written `run/director.json` with its pid, restarted with back-off when it dies, stopped first.
 */
class DirectorChild {
  private child: ChildProcess | undefined;

  constructor(
    private readonly home: PlatformHome,
    private readonly entry: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts the director and waits until it serves; answers its URL. */
  async start(timeoutMs = 60_000): Promise<string> {
    const file = join(this.home.runDir, 'director.json');
    rmSync(file, { force: true });
    mkdirSync(join(this.home.dir, 'logs'), { recursive: true, mode: 0o700 });
    const out = openSync(join(this.home.dir, 'logs', 'director.log'), 'a', 0o600);
    const child = spawn(process.execPath, [this.entry], {
      stdio: ['ignore', out, out],
      env: { ...process.env, CPS_HOME: this.home.dir },
    });
    this.child = child;
    writeFileSync(join(this.home.runDir, 'director.pid'), String(child.pid), { mode: 0o600 });
    this.log(`director pid ${child.pid}`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new CpsError(
          'unavailable',
          `the director exited: see ${join(this.home.dir, 'logs', 'director.log')}`,
        );
      try {
        const d = JSON.parse(readFileSync(file, 'utf8')) as { url: string; pid: number };
        if (d.pid === child.pid) return d.url;
      } catch {
        // not written yet
      }
      await sleep(100);
    }
    throw new CpsError('timeout', 'the director did not start in time');
  }

  /** Restarts the director whenever it exits, until `stopping()`. */
  async keepAlive(stopping: () => boolean): Promise<void> {
    let backoff = 250;
    for (;;) {
      const child = this.child;
      if (!child) return;
      const started = Date.now();
      const code = await new Promise<number | null>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
        else child.once('exit', (c) => r(c));
      });
      if (stopping()) return;
      this.log(`director exited (${String(code)}); restarting in ${backoff} ms`);
      await sleep(backoff);
      backoff = Date.now() - started > 60_000 ? 250 : Math.min(backoff * 2, 10_000);
      try {
        await this.start();
      } catch (e) {
        this.log(`director restart failed: ${(e as Error).message}`);
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const deadline = Date.now() + 10_000;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) await sleep(50);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(join(this.home.runDir, 'director.pid'), { force: true });
  }
}

/**
 * Starts the supervisor in the background (unless it already runs) and waits until the platform
 * answers a health check. Safe to run twice.
 */
export const up = async (
  home: PlatformHome,
  supervisorEntry: string,
  timeoutMs = 90_000,
): Promise<{ started: boolean; pid: number; health: PlatformHealth; directorUrl?: string }> => {
  let pid = supervisorPid(home);
  const started = pid === undefined;
  if (pid === undefined) {
    mkdirSync(join(home.dir, 'logs'), { recursive: true, mode: 0o700 });
    const out = openSync(join(home.dir, 'logs', 'supervisor.log'), 'a', 0o600);
    const child = spawn(process.execPath, [supervisorEntry, 'supervisor'], {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, CPS_HOME: home.dir },
    });
    child.unref();
    if (child.pid === undefined) throw new CpsError('unavailable', 'could not start the supervisor');
    pid = child.pid;
  }
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!alive(pid))
      throw new CpsError(
        'unavailable',
        `the supervisor exited: see ${join(home.dir, 'logs', 'supervisor.log')}`,
      );
    try {
      if (readyBy(home, pid)) {
        const url = readyInfo(home)?.directorUrl;
        return { started, pid, health: await checkHealth(home), ...(url ? { directorUrl: url } : {}) };
      }
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new CpsError(
    'timeout',
    `the platform did not become healthy: ${(last as Error | undefined)?.message ?? 'no answer'}`,
  );
};

/** Stops the supervisor (and so nats-server). Safe when nothing runs. */
export const down = async (home: PlatformHome, timeoutMs = 15_000): Promise<boolean> => {
  const pid = supervisorPid(home);
  if (pid === undefined) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) throw new CpsError('timeout', `supervisor ${pid} did not stop`);
  return true;
};
