import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictError, NotFoundError } from '@cps/core';
import { LineWriter, LogRing } from './log-ring.js';
import { signalGroup, trackGroup, untrackGroup } from './process-groups.js';
import {
  backoffDelayMs,
  resolveSpec,
  wantsRestart,
  type ResolvedSpec,
  type WorkloadEvent,
  type WorkloadEventListener,
  type WorkloadExit,
  type WorkloadSpec,
  type WorkloadState,
  type WorkloadStatus,
} from './workload.js';

/** Where the supervisor keeps the workloads' logs. */
export interface ProcessSupervisorOptions {
  /** Created (mode 0700) if missing; holds `<name>.log` and `<name>.log.1` per workload. */
  readonly logDir: string;
}

export interface StopOptions {
  /** Time between SIGTERM and SIGKILL. Default 5000. */
  readonly graceMs?: number;
}

export interface LogsOptions {
  /** Newest bytes to return; default and maximum: the workload's `logLimitBytes`. */
  readonly tailBytes?: number;
}

interface Run {
  readonly child: ChildProcess | undefined;
  readonly pid: number | undefined;
  readonly startedAt: Date;
  readonly ended: Promise<void>;
  stopping: boolean;
}

interface Workload {
  spec: ResolvedSpec;
  log: LogRing;
  state: WorkloadState;
  restarts: number;
  crashes: number;
  restartTimes: number[];
  run?: Run;
  timer?: NodeJS.Timeout;
  lastExit?: WorkloadExit;
  stopping?: Promise<WorkloadStatus>;
}

const ACTIVE: readonly WorkloadState[] = ['starting', 'running', 'backoff'];

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Runs named workload processes (nginx, php-fpm, a user's `run.sh`, ...) for one agent, restarts
 * them per their policy with exponential back-off, and keeps the tail of their output on disk.
 *
 * Each run is spawned detached: it leads its own session and process group, and signals go to
 * the whole group. When a workload's main process exits, whatever it left in its group is killed.
 * When this process exits, every workload group is killed (see `process-groups.ts`); a SIGKILL
 * of the agent cannot run that hook, so the node's destruction has to take the workloads with it.
 */
export class ProcessSupervisor {
  private readonly workloads = new Map<string, Workload>();
  private readonly listeners = new Set<WorkloadEventListener>();
  private readonly logDir: string;

  constructor(options: ProcessSupervisorOptions) {
    this.logDir = options.logDir;
    mkdirSync(this.logDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Starts a workload (or starts again a stopped, exited or failed one of that name) and resolves
   * once it is spawned, or has failed to spawn. A name that is starting, running or in back-off
   * is a `conflict`; an invalid spec is a `validation` error.
   */
  async start(spec: WorkloadSpec): Promise<WorkloadStatus> {
    const resolved = resolveSpec(spec);
    const existing = this.workloads.get(resolved.name);
    if (existing && (ACTIVE.includes(existing.state) || existing.stopping))
      throw new ConflictError(`workload '${resolved.name}' is ${existing.state}`);
    const w: Workload = {
      spec: resolved,
      log:
        existing?.log.limit === resolved.logLimitBytes
          ? existing.log
          : new LogRing(join(this.logDir, `${resolved.name}.log`), resolved.logLimitBytes),
      state: 'starting',
      restarts: 0,
      crashes: 0,
      restartTimes: [],
    };
    this.workloads.set(resolved.name, w);
    await this.spawnRun(w);
    return this.statusOf(w);
  }

  /**
   * Stops a workload: SIGTERM to its process group, SIGKILL after `graceMs`, and no restart.
   * Resolves with its final status once the main process is gone. Unknown name: `not_found`.
   */
  async stop(name: string, options: StopOptions = {}): Promise<WorkloadStatus> {
    const w = this.get(name);
    w.stopping ??= this.stopWorkload(w, options.graceMs ?? 5000).finally(() => (w.stopping = undefined));
    return w.stopping;
  }

  /** Sends `sig` to a workload's main process (a reload); `conflict` unless it runs. */
  signal(name: string, sig: NodeJS.Signals): void {
    const w = this.get(name);
    const pid = w.state === 'running' ? w.run?.pid : undefined;
    if (pid === undefined) throw new ConflictError(`workload '${name}' is ${w.state}: nothing to signal`);
    process.kill(pid, sig);
  }

  /** Stops every workload (in parallel). */
  async stopAll(options: StopOptions = {}): Promise<void> {
    await Promise.all([...this.workloads.keys()].map((n) => this.stop(n, options)));
  }

  /** The state of one workload; unknown name: `not_found`. */
  status(name: string): WorkloadStatus {
    return this.statusOf(this.get(name));
  }

  /** The state of every workload started since this supervisor was created. */
  list(): WorkloadStatus[] {
    return [...this.workloads.values()].map((w) => this.statusOf(w));
  }

  /**
   * The newest output of a workload, one line per record: `out|err <ISO time> <text>`. Never more
   * than its `logLimitBytes`. Unknown name: `not_found`.
   */
  logs(name: string, options: LogsOptions = {}): string {
    return this.get(name).log.tail(options.tailBytes);
  }

  /** Calls `listener` for every event of every workload; returns the unsubscribe function. */
  onEvent(listener: WorkloadEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private get(name: string): Workload {
    const w = this.workloads.get(name);
    if (!w) throw new NotFoundError(`no workload '${name}'`);
    return w;
  }

  private statusOf(w: Workload): WorkloadStatus {
    const live = w.state === 'starting' || w.state === 'running';
    return {
      name: w.spec.name,
      state: w.state,
      ...(live && w.run?.pid !== undefined ? { pid: w.run.pid } : {}),
      restarts: w.restarts,
      ...(w.lastExit ? { lastExit: w.lastExit } : {}),
      ...(w.run ? { startedAt: w.run.startedAt } : {}),
    };
  }

  private emit(event: WorkloadEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (e) {
        process.emitWarning(`workload event listener failed: ${message(e)}`);
      }
    }
  }

  private spawnRun(w: Workload): Promise<void> {
    const { spec } = w;
    const startedAt = new Date();
    let child: ChildProcess | undefined;
    let spawnError: unknown;
    try {
      child = spawn(spec.command, [...spec.args], {
        cwd: spec.cwd,
        env: { ...spec.env },
        detached: true,
        stdio: [spec.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
      });
      if (spec.input !== undefined && child.stdin) {
        child.stdin.on('error', () => undefined);
        child.stdin.end(spec.input);
      }
    } catch (e) {
      spawnError = e;
    }
    const pid = child?.pid;
    if (pid !== undefined) trackGroup(pid);
    let settle!: () => void;
    const run: Run = {
      child,
      pid,
      startedAt,
      stopping: false,
      ended: new Promise((r) => (settle = r)),
    };
    w.run = run;
    w.state = 'starting';
    let ended = false;
    const end = (exit: Omit<WorkloadExit, 'at' | 'ranMs'>): void => {
      if (ended) return;
      ended = true;
      if (pid !== undefined) {
        signalGroup(pid, 'SIGKILL');
        untrackGroup(pid);
      }
      this.onRunEnded(w, run, exit);
      settle();
    };
    if (!child) {
      end({ code: null, signal: null, error: message(spawnError) });
      return Promise.resolve();
    }
    this.capture(w, child);
    return new Promise((resolve) => {
      child.once('spawn', () => {
        if (w.run === run && w.state === 'starting') w.state = 'running';
        this.emit({
          type: 'started',
          name: spec.name,
          pid: pid as number,
          restarts: w.restarts,
          at: new Date(),
        });
        resolve();
      });
      child.on('error', (e) => {
        if (child.pid === undefined) end({ code: null, signal: null, error: e.message });
        resolve();
      });
      child.once('exit', (code, signal) => {
        end({ code, signal });
        resolve();
      });
    });
  }

  private capture(w: Workload, child: ChildProcess): void {
    const out = new LineWriter(w.log, 'out');
    const err = new LineWriter(w.log, 'err');
    const onStdout = w.spec.onStdout;
    if (onStdout) {
      child.stdout?.on('data', (b: Buffer) => {
        try {
          onStdout(b);
        } catch {
          // a consumer's fault is its own: the workload runs on
        }
      });
      child.stdout?.on('error', () => undefined);
    }
    for (const [pipe, writer] of [
      ...(onStdout ? [] : [[child.stdout, out] as const]),
      [child.stderr, err] as const,
    ]) {
      pipe?.on('data', (b: Buffer) => writer.push(b));
      pipe?.once('end', () => writer.end());
      pipe?.on('error', () => writer.end());
    }
  }

  private onRunEnded(w: Workload, run: Run, partial: Omit<WorkloadExit, 'at' | 'ranMs'>): void {
    const at = new Date();
    const exit: WorkloadExit = { ...partial, at, ranMs: at.getTime() - run.startedAt.getTime() };
    w.lastExit = exit;
    let next: WorkloadEvent | undefined;
    if (run.stopping || w.run !== run) w.state = 'stopped';
    else next = this.afterExit(w, exit);
    this.emit({
      type: 'exited',
      name: w.spec.name,
      ...(run.pid !== undefined ? { pid: run.pid } : {}),
      exit,
    });
    if (next) this.emit(next);
  }

  /** Sets the state that follows an unrequested exit; returns the event that announces it. */
  private afterExit(w: Workload, exit: WorkloadExit): WorkloadEvent | undefined {
    const { spec } = w;
    if (!wantsRestart(spec.restart, exit)) {
      w.state = 'exited';
      return undefined;
    }
    if (exit.ranMs >= spec.backoff.resetAfterMs) w.crashes = 0;
    const now = exit.at.getTime();
    w.restartTimes = w.restartTimes.filter((t) => now - t < spec.restartWindowMs);
    if (spec.maxRestarts !== undefined && w.restartTimes.length >= spec.maxRestarts) {
      w.state = 'failed';
      const reason = `more than ${spec.maxRestarts} restarts within ${spec.restartWindowMs} ms`;
      return { type: 'failed', name: spec.name, restarts: w.restarts, reason, lastExit: exit, at: exit.at };
    }
    const delayMs = backoffDelayMs(w.crashes, spec.backoff);
    w.crashes += 1;
    w.restartTimes.push(now);
    w.state = 'backoff';
    w.timer = setTimeout(() => {
      w.timer = undefined;
      w.restarts += 1;
      void this.spawnRun(w);
    }, delayMs);
    return { type: 'restarting', name: spec.name, delayMs, attempt: w.restarts + 1, at: exit.at };
  }

  private async stopWorkload(w: Workload, graceMs: number): Promise<WorkloadStatus> {
    if (w.timer) {
      clearTimeout(w.timer);
      w.timer = undefined;
      w.state = 'stopped';
    }
    const run = w.run;
    if (!run || (w.state !== 'starting' && w.state !== 'running')) return this.statusOf(w);
    run.stopping = true;
    if (run.pid !== undefined) signalGroup(run.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)));
    const exited = await Promise.race([run.ended.then(() => true), graceOver]);
    clearTimeout(timer);
    if (!exited && run.pid !== undefined) signalGroup(run.pid, 'SIGKILL');
    await run.ended;
    return this.statusOf(w);
  }
}
