import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { CpsError, issuesFromZod, NotFoundError, serial, ValidationError } from '@cps/core';
import {
  subjects,
  type Bus,
  type CommandDefinition,
  type Handler,
  agentLogs,
  archiveChunk,
  spoolInfo,
  spoolRead,
  spoolRemove,
  spoolWrite,
  SPOOL_TRANSFER_CHUNK,
  callMethod,
  checkAgentProcess,
  configureAgent,
  type Heartbeat,
} from '@cps/bus';
import type { ServedCommand } from '@cps/nest-bus';
import {
  type AgentContext,
  type MethodDefinition,
  type NodeConfig,
  type PluginLogger,
  type ServiceDefinition,
  type WorkloadRequest,
} from '@cps/services';
import { missingPackages } from './software.js';
import { execAs, probe } from './exec.js';
import { DEFAULT_LOG_LIMIT_BYTES, MetricsSampler, type ProcessSupervisor } from '../processes/index.js';
import { LogRing } from '../processes/log-ring.js';
import { ArchiveReceiver } from './archive-receiver.js';
import { Spool } from './spool.js';
import { WorkDir } from './work-dir.js';
import { VolumeMounts } from './volumes.js';

export interface AgentRuntimeOptions {
  readonly bus: Bus;
  readonly service: ServiceDefinition;
  readonly appId: string;
  readonly serviceId: string;
  readonly nodeId: string;
  readonly role: string;
  /** The node's directory; workloads run in `<nodeDir>/work`. */
  readonly nodeDir: string;
  /** The address the other nodes of the application reach this node at (see AgentContext). */
  readonly address: string;
  readonly ports: { readonly from: number; readonly to: number };
  readonly supervisor: ProcessSupervisor;
  readonly workloadUser?: { readonly uid: number; readonly gid: number };
  readonly heartbeatMs?: number;
  /** Where the plugin's `ctx.log` goes; by default the node's `agent` log (see {@link AGENT_LOG}). */
  readonly log?: PluginLogger;
  /** The definitions of the types this node's service may link (a storage type mounts its volumes). */
  readonly types?: (type: string) => ServiceDefinition | undefined;
}

/**
 * The name under which the plugin's own log lines are read back (`get_logs` with this workload,
 * `cps service logs --node`), beside its workloads' output; no workload may take it.
 */
export const AGENT_LOG = 'agent';

/** Lines `info|warn|error <ISO time> <message> <fields as JSON>` in a size-limited ring on disk. */
const ringLogger = (ring: LogRing): PluginLogger => {
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    ring.append([
      Buffer.from(
        `${level} ${new Date().toISOString()} ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`,
      ),
    ]);
  return { info: line('info'), warn: line('warn'), error: line('error') };
};

/** The durable data directory's name in the work directory (see `AgentContext.dataDir`). */
export const DATA_DIR = 'data';
const WORKLOAD_PATH = '/usr/local/bin:/usr/bin:/bin';
/** The most of one output `exec` keeps for a plugin (a database dump answered in one reply). */
const MAX_EXEC_OUTPUT = 8 * 1024 * 1024;

/**
 * One node's agent: serves its manager only (bus permissions), sends a heartbeat with metrics every
 * second on core NATS (with a boot id: a new one tells the manager to configure it), keeps the last
 * configuration its manager pushed, and runs the role's workloads through the plugin's
 * `onConfigure` and `onStart` once it has one (the kept one after a restart).
 */
export class AgentRuntime {
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private probesPass = false;
  private probing = false;
  private fatal: string | undefined;
  private stopping = false;
  private current: NodeConfig | undefined;
  /** One configuration at a time. */
  private readonly oneConfiguration = serial();
  private readonly probes = new Map<string, NonNullable<WorkloadRequest['ready']>>();
  private readonly boot = randomUUID();
  private readonly sampler = new MetricsSampler();
  private readonly archives: ArchiveReceiver;
  private readonly spool: Spool;
  private readonly work: WorkDir;
  private readonly pluginLog: LogRing;
  private readonly log: PluginLogger;
  private readonly volumes: VolumeMounts;

  constructor(private readonly o: AgentRuntimeOptions) {
    // beside `work`, never inside it: workloads must not swap an archive between check and extraction
    this.archives = new ArchiveReceiver(join(o.nodeDir, 'archives'));
    this.spool = new Spool(join(o.nodeDir, 'spool'));
    this.pluginLog = new LogRing(join(o.nodeDir, 'logs', `${AGENT_LOG}.log`), DEFAULT_LOG_LIMIT_BYTES);
    this.log = o.log ?? ringLogger(this.pluginLog);
    this.work = new WorkDir(
      join(o.nodeDir, 'work'),
      o.nodeDir,
      (version) => this.archives.path(version),
      o.workloadUser,
    );
    this.volumes = new VolumeMounts({
      nodeDir: o.nodeDir,
      workDir: this.work.path,
      address: o.address,
      user: o.workloadUser,
      types: o.types ?? (() => undefined),
      env: () => this.workloadEnv(),
      log: this.log,
    });
  }

  private get workDir(): string {
    return this.work.path;
  }

  private get stateDir(): string {
    return join(this.o.nodeDir, 'state');
  }

  private get configFile(): string {
    return join(this.stateDir, 'node-config.json');
  }

  /**
   * The commands this agent serves, by name: served on the bus directly by `start()`, or by
   * whatever `start({ serve })` is given (the agent process: a NestJS app, `createBusApp`).
   */
  commands(): ReadonlyMap<string, ServedCommand> {
    const table = new Map<string, ServedCommand>();
    const handle = <C extends CommandDefinition>(command: C, h: Handler<C>): void => {
      table.set(command.name, { command, handle: h });
    };
    handle(checkAgentProcess, () => ({
      nodeId: this.o.nodeId,
      role: this.o.role,
      workloads: this.o.supervisor
        .list()
        .map((w) => ({ name: w.name, state: w.state, restarts: w.restarts })),
    }));
    handle(agentLogs, (d) => ({ text: this.logs(d.workload, d.tailBytes) }));
    handle(callMethod, async (d) => ({ result: await this.call(d.method, d.args) }));
    handle(archiveChunk, (d) => this.archives.receive({ ...d, data: Buffer.from(d.data, 'base64') }));
    handle(spoolInfo, (d) => this.spool.info(d.name));
    handle(spoolRead, async (d) => ({
      data: (await this.spool.read(d.name, d.offset, SPOOL_TRANSFER_CHUNK)).toString('base64'),
    }));
    handle(spoolWrite, (d) => this.spool.receive({ ...d, data: Buffer.from(d.data, 'base64') }));
    handle(spoolRemove, (d) => {
      this.spool.remove(d.name);
      return {};
    });
    handle(configureAgent, async (d) => {
      if (this.fatal) throw new CpsError('unavailable', this.fatal);
      await this.configure(d, true);
      return { applied: true };
    });
    return table;
  }

  async start(
    o: { serve?: (commands: ReadonlyMap<string, ServedCommand>) => Promise<unknown> } = {},
  ): Promise<void> {
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(this.o.nodeDir, 'logs'), { recursive: true, mode: 0o700 });
    const missing = missingPackages(this.o.service.packages ?? []);
    if (missing.length > 0) {
      this.fatal = `software missing on this node: ${missing.join(', ')} (Debian package${missing.length > 1 ? 's' : ''}; install with apt-get install ${missing.join(' ')})`;
      this.log.error(this.fatal);
    }
    const unfit = this.o.service.checkNode?.({
      address: this.o.address,
      privileged: process.getuid?.() === 0,
    });
    if (unfit && !this.fatal) {
      this.fatal = `this node cannot run ${this.o.service.type}: ${unfit}`;
      this.log.error(this.fatal);
    }
    await this.work.ensure();
    if (!this.fatal) await this.work.mkdir(DATA_DIR);
    if (o.serve) await o.serve(this.commands());
    else {
      const at = subjects.agent(this.o.appId, this.o.serviceId, this.o.nodeId);
      for (const { command, handle } of this.commands().values()) this.o.bus.handle(at, command, handle);
      await this.o.bus.flush();
    }
    this.heartbeat();
    this.timer = setInterval(() => this.heartbeat(), this.o.heartbeatMs ?? 1_000);
    const kept = this.fatal ? undefined : this.keptConfig();
    if (kept) await this.configure(kept, false);
  }

  /**
   * Applies one configuration, one at a time: kept first (a pushed one only), then the plugin's
   * `onConfigure`, and `onStart` after the first. A failing hook fails the push: the manager pushes
   * again at the next change or the next heartbeat of a new boot.
   */
  private configure(config: NodeConfig, pushed: boolean): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.stopping) throw new CpsError('unavailable', 'the agent is stopping');
      if (pushed) {
        const tmp = `${this.configFile}.tmp`;
        writeFileSync(tmp, JSON.stringify(config), { mode: 0o600 });
        renameSync(tmp, this.configFile);
      }
      this.current = config;
      if ((config.volumes ?? []).length > 0) {
        // a node that can never mount fails at once, saying why (not later, never ready)
        const unable = this.volumes.unable();
        if (unable) {
          this.fatal = `this node cannot mount volumes: ${unable}`;
          this.log.error(this.fatal);
          this.heartbeat();
          throw new CpsError('unavailable', this.fatal);
        }
        await this.volumes.apply(config);
      }
      await this.o.service.agent.onConfigure?.(this.context(), config);
      if (!this.started) {
        await this.o.service.agent.onStart?.(this.context());
        this.started = true;
        await this.runProbes();
        this.heartbeat();
      }
    };
    const next = this.oneConfiguration(run);
    next.catch((e: unknown) => this.log.error('configuration failed', { error: (e as Error).message }));
    return next;
  }

  private keptConfig(): NodeConfig | undefined {
    try {
      return JSON.parse(readFileSync(this.configFile, 'utf8')) as NodeConfig;
    } catch {
      return undefined;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.oneConfiguration(async () => undefined);
    if (this.started)
      await this.o.service.agent
        .onStop?.(this.context())
        .catch((e: unknown) => this.log.warn('onStop failed', { error: (e as Error).message }));
    await this.o.supervisor.stopAll({ graceMs: 3_000 });
    await this.volumes.unmountAll();
  }

  /** Whether every workload with a readiness probe answers it (checked once per heartbeat, never twice at once). */
  private async runProbes(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const results = await Promise.all(
        [...this.probes.values()].map((p) =>
          probe(p, {
            address: this.o.address,
            cwd: this.workDir,
            env: this.workloadEnv(),
            user: this.o.workloadUser,
          }),
        ),
      );
      const was = this.probesPass;
      this.probesPass = results.every(Boolean);
      // ready now: said at once rather than at the next beat (a deploy waits for it)
      if (!was && this.probesPass && this.started && !this.stopping) this.publish();
    } finally {
      this.probing = false;
    }
  }

  private workloadEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
    return { PATH: WORKLOAD_PATH, HOME: this.workDir, ...extra };
  }

  private heartbeat(): void {
    if (this.started && !this.stopping) void this.runProbes().catch(() => undefined);
    this.publish();
  }

  private publish(): void {
    const workloads = this.o.supervisor.list();
    const sample = this.sampler.sample(workloads.flatMap((w) => (w.pid ? [w.pid] : [])));
    const metrics: Record<string, number> = {
      load1: sample.node.loadavg[0],
      memTotalBytes: sample.node.memTotalBytes,
      memFreeBytes: sample.node.memFreeBytes,
      workloads: workloads.length,
      workloadsRunning: workloads.filter((w) => w.state === 'running').length,
      ...(sample.node.cpuPercent !== undefined ? { cpuPercent: sample.node.cpuPercent } : {}),
      rssBytes: sample.processes.reduce((a, p) => a + p.group.rssBytes, 0),
      ...this.pluginMetrics(),
    };
    const hb: Heartbeat = {
      nodeId: this.o.nodeId,
      role: this.o.role,
      at: new Date().toISOString(),
      ready: this.started && this.probesPass && !this.fatal,
      metrics,
      boot: this.boot,
      address: this.o.address,
      ports: this.o.ports,
      ...(this.fatal ? { fatal: this.fatal } : {}),
    };
    this.o.bus.publish(`${subjects.fromNode(this.o.appId, this.o.serviceId, this.o.nodeId)}.heartbeat`, hb);
  }

  /** The plugin's own figures (finite numbers only); none before it started, or if it throws. */
  private pluginMetrics(): Record<string, number> {
    if (!this.started || !this.o.service.agent.metrics) return {};
    try {
      return Object.fromEntries(
        Object.entries(this.o.service.agent.metrics(this.context())).filter(([, v]) => Number.isFinite(v)),
      );
    } catch {
      return {};
    }
  }

  private logs(workload: string | undefined, tailBytes: number): string {
    if (workload === AGENT_LOG) return this.pluginLog.tail(tailBytes);
    if (workload) return this.o.supervisor.logs(workload, { tailBytes });
    return [
      `== ${AGENT_LOG}\n${this.pluginLog.tail(tailBytes)}`,
      ...this.o.supervisor
        .list()
        .map((w) => `== ${w.name} (${w.state})\n${this.o.supervisor.logs(w.name, { tailBytes })}`),
    ].join('\n');
  }

  private async call(name: string, args: unknown): Promise<unknown> {
    const m: MethodDefinition<z.ZodType, z.ZodType, AgentContext> | undefined =
      this.o.service.agent.methods[name];
    if (!m) throw new NotFoundError(`${this.o.service.type} agents have no method ${name}`);
    const parsed = m.args.safeParse(args ?? {});
    if (!parsed.success)
      throw new ValidationError(`invalid arguments for ${name}`, issuesFromZod(parsed.error));
    const result: unknown = await m.handle(this.context(), parsed.data);
    const out = m.result.safeParse(result);
    if (!out.success)
      throw new CpsError('internal', `${name} returned an invalid result`, issuesFromZod(out.error));
    return out.data;
  }

  private context(): AgentContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the getter below reads the current configuration
    const agent = this;
    return {
      appId: this.o.appId,
      serviceId: this.o.serviceId,
      nodeId: this.o.nodeId,
      role: this.o.role,
      address: this.o.address,
      workDir: this.workDir,
      files: this.work,
      stateDir: this.stateDir,
      ports: this.o.ports,
      dataDir: DATA_DIR,
      get config() {
        return agent.current;
      },
      log: this.log,
      spool: {
        path: (name) => this.spool.path(name),
        remove: (name) => this.spool.remove(name),
      },
      exec: async (command, args, options) => {
        const r = await execAs(command, args, {
          cwd: this.workDir,
          env: this.workloadEnv(options?.env),
          user: this.o.workloadUser,
          ...(options?.input === undefined ? {} : { input: options.input }),
          ...(options?.stdinFrom === undefined ? {} : { stdinFile: this.spool.path(options.stdinFrom) }),
          ...(options?.stdoutTo === undefined ? {} : { stdoutFile: this.spool.path(options.stdoutTo) }),
          timeoutMs: options?.timeoutMs ?? 30_000,
          keepBytes: Math.min(options?.keepBytes ?? 64 * 1024, MAX_EXEC_OUTPUT),
        });
        this.log.info('exec', { command, args, code: r.code });
        return r;
      },
      signal: async (name, sig) => {
        this.o.supervisor.signal(name, sig);
        this.log.info('signal', { workload: name, signal: sig });
      },
      archivePath: (version) => this.archives.path(version),
      startWorkload: async (w) => {
        if (w.name === AGENT_LOG)
          throw new ValidationError(`no workload may be named ${AGENT_LOG}`, [
            { path: '$.name', code: 'reserved', message: `${AGENT_LOG} names the plugin's own log` },
          ]);
        await this.o.supervisor.start({
          name: w.name,
          command: w.command,
          args: [...(w.args ?? [])],
          cwd: this.workDir,
          env: this.workloadEnv(w.env),
          restart: w.restart ?? 'always',
          ...(w.input === undefined ? {} : { input: w.input }),
          ...(w.stdout ? { onStdout: w.stdout } : {}),
          ...(this.o.workloadUser ? { user: this.o.workloadUser } : {}),
        });
        if (w.ready) this.probes.set(w.name, w.ready);
        else this.probes.delete(w.name);
        this.recordGroups();
      },
      workload: (name) => {
        const w = this.o.supervisor.list().find((x) => x.name === name);
        return w
          ? {
              state: w.state,
              ...(w.lastExit ? { exitCode: w.lastExit.code } : {}),
              ...(w.startedAt ? { startedAt: w.startedAt.getTime() } : {}),
            }
          : undefined;
      },
      stopWorkload: async (name) => {
        await this.o.supervisor.stop(name);
        this.probes.delete(name);
        this.recordGroups();
      },
    };
  }

  /** Workloads lead their own process groups: the cloud ends them from this list on destroy. */
  private recordGroups(): void {
    const pids = this.o.supervisor.list().flatMap((w) => (w.pid ? [w.pid] : []));
    writeFileSync(join(this.o.nodeDir, 'workload-pgids'), pids.join('\n') + '\n', { mode: 0o600 });
  }
}
