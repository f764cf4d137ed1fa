import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { connectBus } from '@cps/bus';
import { claimPlatformAddress } from '@cps/clouds';
import { CpsError } from '@cps/core';
import { ensureEventStream, ensureLogStream, ensureSnapshotBucket } from '@cps/events';
import { NatsServers } from '../nats-server/cluster.js';
import type { PlatformHome } from '../home/platform-home.js';
import { checkHealth, type PlatformHealth } from './health.js';
import { RestartBackoff } from './backoff.js';
import { isRunning, processRecord, stillRuns, terminate, whenGone, type ProcessRecord } from './processes.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const pidFile = (home: PlatformHome): string => join(home.runDir, 'supervisor.pid');
const readyFile = (home: PlatformHome): string => join(home.runDir, 'ready.json');

/** True once supervisor `pid` has started its server and created the streams. */
const readyBy = (home: PlatformHome, pid: number): boolean => readyInfo(home)?.supervisor === pid;

/** What the running supervisor wrote once its children were ready. */
export const readyInfo = (
  home: PlatformHome,
): { supervisor: number; nats?: number; directorUrl?: string; adopted?: readonly string[] } | undefined => {
  try {
    return JSON.parse(readFileSync(readyFile(home), 'utf8')) as {
      supervisor: number;
      directorUrl?: string;
      adopted?: readonly string[];
    };
  } catch {
    return undefined;
  }
};

export { isRunning } from './processes.js';

/**
 * The processes of a home's platform, each told apart from a later process with its pid (see
 * {@link ProcessRecord}): the supervisor, and the nats-server and director it runs. Kept after
 * the supervisor dies, so that the next one adopts the children that still run.
 */
interface PlatformProcesses {
  supervisor?: ProcessRecord;
  nats?: ProcessRecord;
  director?: ProcessRecord & { readonly url: string };
}

const processesFile = (home: PlatformHome): string => join(home.runDir, 'processes.json');

const readProcesses = (home: PlatformHome): PlatformProcesses => {
  try {
    return JSON.parse(readFileSync(processesFile(home), 'utf8')) as PlatformProcesses;
  } catch {
    return {};
  }
};

const recordProcess = <K extends keyof PlatformProcesses>(
  home: PlatformHome,
  name: K,
  r: PlatformProcesses[K] | undefined,
): void => {
  const all = { ...readProcesses(home), [name]: r };
  const tmp = `${processesFile(home)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(all), { mode: 0o600 });
  renameSync(tmp, processesFile(home));
};

/** The pid of this home's running supervisor, if any (a stale pid file is ignored). */
export const supervisorPid = (home: PlatformHome): number | undefined => {
  if (!existsSync(pidFile(home))) return undefined;
  const pid = Number(readFileSync(pidFile(home), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return undefined;
  const r = readProcesses(home).supervisor;
  if (r?.pid === pid) return stillRuns(r) ? pid : undefined;
  // a pid file without a record (a supervisor written before records): by its command line
  const cmd = existsSync(`/proc/${pid}/cmdline`)
    ? readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    : 'supervisor';
  return cmd.includes('supervisor') ? pid : undefined;
};

/**
 * The nats-server and director of this home that run now, by their records: those of the running
 * supervisor, or, when none runs, those a killed supervisor left (`cps up` adopts them).
 */
export const platformProcesses = (home: PlatformHome): { nats?: number; director?: number } => {
  const r = readProcesses(home);
  return {
    ...(r.nats && stillRuns(r.nats) ? { nats: r.nats.pid } : {}),
    ...(r.director && stillRuns(r.director) ? { director: r.director.pid } : {}),
  };
};

/** Restarts a supervised child whenever it exits (see {@link RestartBackoff}), until `stopping()`. */
const keepAlive = async (
  name: string,
  child: { exited(): Promise<unknown>; restart(): Promise<void> },
  stopping: () => boolean,
  log: (line: string) => void,
): Promise<void> => {
  const backoff = new RestartBackoff();
  let started = Date.now();
  for (;;) {
    const code = await child.exited();
    if (stopping()) return;
    const wait = backoff.next(Date.now() - started);
    log(`${name} exited (${String(code)}); restarting in ${wait} ms`);
    await sleep(wait);
    if (stopping()) return;
    started = Date.now();
    try {
      await child.restart();
    } catch (e) {
      log(`${name} restart failed: ${(e as Error).message}`);
    }
  }
};

/**
 * Runs in the foreground: starts the platform's nats-server, creates the event stream and snapshot
 * bucket, starts the director, and restarts either (with back-off) whenever it dies, until
 * SIGTERM/SIGINT. A nats-server or director that a killed supervisor left running (the same
 * process as recorded: pid and start time) is adopted and supervised as it runs, not restarted.
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
  recordProcess(home, 'supervisor', processRecord(process.pid));
  rmSync(readyFile(home), { force: true });
  const left = readProcesses(home);
  let stopping = false;
  // host mode: NATS listens on the platform address (kept by tag across restarts), where nodes reach it
  if (home.network().mode === 'host') {
    const { address } = await claimPlatformAddress(home.tag);
    home.setNetwork({ mode: 'host', address });
  }
  const nats = new NatsChild(home, log);
  const adopted: string[] = [];
  if (left.nats && stillRuns(left.nats)) {
    nats.adopt(left.nats);
    adopted.push('nats-server');
    log(`adopted nats-server pid ${left.nats.pid}, left running by a previous supervisor`);
  } else await nats.start();
  const own = await home.directorIdentity();
  const nc = await connectBus({
    servers: home.natsUrls(),
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
  let directorUrl: string | undefined;
  if (director && left.director && stillRuns(left.director)) {
    directorUrl = director.adopt(left.director);
    adopted.push('director');
    log(`adopted director pid ${left.director.pid}, left running by a previous supervisor`);
  } else if (director) directorUrl = await director.start();
  writeFileSync(
    readyFile(home),
    JSON.stringify({ supervisor: process.pid, nats: nats.pid, directorUrl, adopted }),
    { mode: 0o600 },
  );

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('stopping');
    await director?.stop();
    await nats.stop();
    // host mode: the platform address stays until the nodes are stopped (`cps down`): a node that
    // dials a stopped server there is refused at once, one that dials a missing address waits
    rmSync(pidFile(home), { force: true });
    rmSync(readyFile(home), { force: true });
    rmSync(processesFile(home), { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  if (director) void keepAlive('director', director, () => stopping, log);
  await keepAlive('nats-server', nats, () => stopping, log);
};

/** The nats-server of a home: started by this supervisor, or adopted from one that was killed. */
class NatsChild {
  private servers: NatsServers | undefined;
  private adopted: ProcessRecord | undefined;

  constructor(
    private readonly home: PlatformHome,
    private readonly log: (line: string) => void,
  ) {}

  get pid(): number | undefined {
    return this.adopted?.pid ?? this.servers?.processes[0]?.pid;
  }

  adopt(r: ProcessRecord): void {
    this.adopted = r;
  }

  /** The platform address in host mode: the server listens there only. */
  private get host(): string | undefined {
    const n = this.home.network();
    return n.mode === 'host' ? n.address : undefined;
  }

  async start(): Promise<void> {
    const secrets = this.home.secrets();
    this.servers = await NatsServers.start({
      dir: this.home.natsDir,
      secrets,
      size: 1,
      serverKey: secrets.serverKey,
      port: this.home.info().natsPort,
      ...(this.host === undefined ? {} : { host: this.host }),
      // it outlives a killed supervisor, to be adopted by the next one
      detached: true,
      // workloads of local nodes share this host: nothing may list the bus's connections to them
      monitoring: false,
    });
    this.adopted = undefined;
    this.started();
  }

  async exited(): Promise<number | null | undefined> {
    if (this.adopted) return whenGone(this.adopted).then(() => undefined);
    return this.servers?.processes[0]?.whenExited();
  }

  async restart(): Promise<void> {
    if (!this.servers) return this.start();
    await this.servers.restart(0);
    this.started();
  }

  async stop(): Promise<void> {
    if (this.adopted) await terminate(this.adopted);
    else await this.servers?.stop();
    rmSync(join(this.home.runDir, 'nats.pid'), { force: true });
  }

  private started(): void {
    const p = this.servers?.processes[0];
    if (!p) return;
    writeFileSync(join(this.home.runDir, 'nats.pid'), String(p.pid), { mode: 0o600 });
    recordProcess(this.home, 'nats', processRecord(p.pid));
    this.log(`nats-server pid ${p.pid} on ${p.url}`);
  }
}

/**
 * The director process of a home, supervised: started after nats-server, ready once it has
 * written `run/director.json` with its pid, restarted with back-off when it dies, stopped first.
 */
class DirectorChild {
  private child: ChildProcess | undefined;
  private adopted: ProcessRecord | undefined;

  constructor(
    private readonly home: PlatformHome,
    private readonly entry: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Supervises a director that already runs; answers its URL. */
  adopt(r: ProcessRecord & { readonly url: string }): string {
    this.adopted = r;
    return r.url;
  }

  /** Starts the director and waits until it serves; answers its URL. */
  async start(timeoutMs = 60_000): Promise<string> {
    const file = join(this.home.runDir, 'director.json');
    rmSync(file, { force: true });
    mkdirSync(join(this.home.dir, 'logs'), { recursive: true, mode: 0o700 });
    const out = openSync(join(this.home.dir, 'logs', 'director.log'), 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [this.entry], {
        stdio: ['ignore', out, out],
        env: { ...process.env, CPS_HOME: this.home.dir },
      });
    } finally {
      closeSync(out);
    }
    this.child = child;
    this.adopted = undefined;
    const pid = child.pid as number;
    const record = processRecord(pid);
    writeFileSync(join(this.home.runDir, 'director.pid'), String(pid), { mode: 0o600 });
    this.log(`director pid ${pid}`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new CpsError(
          'unavailable',
          `the director exited: see ${join(this.home.dir, 'logs', 'director.log')}`,
        );
      try {
        const d = JSON.parse(readFileSync(file, 'utf8')) as { url: string; pid: number };
        if (d.pid === pid) {
          if (record) recordProcess(this.home, 'director', { ...record, url: d.url });
          return d.url;
        }
      } catch {
        // not written yet
      }
      await sleep(100);
    }
    throw new CpsError('timeout', 'the director did not start in time');
  }

  exited(): Promise<number | null | undefined> {
    if (this.adopted) return whenGone(this.adopted).then(() => undefined);
    const child = this.child;
    if (!child) return new Promise(() => undefined);
    return new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
      else child.once('exit', (c) => r(c));
    });
  }

  async restart(): Promise<void> {
    await this.start();
  }

  async stop(): Promise<void> {
    const [child, adopted] = [this.child, this.adopted];
    this.child = undefined;
    this.adopted = undefined;
    if (adopted) await terminate(adopted);
    else if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) await sleep(50);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
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
): Promise<{
  started: boolean;
  pid: number;
  health: PlatformHealth;
  directorUrl?: string;
  /** What the started supervisor found running and adopted (`nats-server`, `director`). */
  adopted?: readonly string[];
}> => {
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
    closeSync(out);
    child.unref();
    if (child.pid === undefined) throw new CpsError('unavailable', 'could not start the supervisor');
    pid = child.pid;
  }
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!isRunning(pid))
      throw new CpsError(
        'unavailable',
        `the supervisor exited: see ${join(home.dir, 'logs', 'supervisor.log')}`,
      );
    try {
      if (readyBy(home, pid)) {
        const ready = readyInfo(home);
        return {
          started,
          pid,
          health: await checkHealth(home),
          ...(ready?.directorUrl ? { directorUrl: ready.directorUrl } : {}),
          ...(started && ready?.adopted?.length ? { adopted: ready.adopted } : {}),
        };
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

/**
 * Stops the supervisor, which stops nats-server and the director; with no supervisor, stops those a
 * killed one left running. Answers whether anything was running. Safe when nothing runs.
 */
export const down = async (home: PlatformHome, timeoutMs = 15_000): Promise<boolean> => {
  const pid = supervisorPid(home);
  if (pid === undefined) {
    const left = readProcesses(home);
    const running = [left.director, left.nats].filter((r): r is ProcessRecord => !!r && stillRuns(r));
    for (const r of running) await terminate(r);
    rmSync(processesFile(home), { force: true });
    return running.length > 0;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid) && Date.now() < deadline) await sleep(50);
  if (isRunning(pid)) throw new CpsError('timeout', `supervisor ${pid} did not stop`);
  return true;
};
