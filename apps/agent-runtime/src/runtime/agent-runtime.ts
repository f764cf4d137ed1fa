import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { CpsError, issuesFromZod, NotFoundError, ValidationError } from '@cps/core';
import { subjects, type Bus } from '@cps/bus';
import {
  agentLogs,
  archiveChunk,
  callMethod,
  checkAgentProcess,
  type AgentContext,
  type Heartbeat,
  type MethodDefinition,
  type PluginLogger,
  type ServiceDefinition,
} from '@cps/services';
import { DEFAULT_LOG_LIMIT_BYTES, MetricsSampler, type ProcessSupervisor } from '../processes/index.js';
import { LogRing } from '../processes/log-ring.js';
import { ArchiveReceiver } from './archive-receiver.js';
import { WorkDir } from './work-dir.js';

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

/**
 * One node's agent: serves its manager only (bus permissions), runs the role's workloads through
 * the plugin's `onStart`, and sends a heartbeat with metrics every second on core NATS.
 */
export class AgentRuntime {
  private timer: NodeJS.Timeout | undefined;
  private ready = false;
  private readonly sampler = new MetricsSampler();
  private readonly archives: ArchiveReceiver;
  private readonly work: WorkDir;
  private readonly pluginLog: LogRing;
  private readonly log: PluginLogger;

  constructor(private readonly o: AgentRuntimeOptions) {
    // beside `work`, never inside it: workloads must not swap an archive between check and extraction
    this.archives = new ArchiveReceiver(join(o.nodeDir, 'archives'));
    this.pluginLog = new LogRing(join(o.nodeDir, 'logs', `${AGENT_LOG}.log`), DEFAULT_LOG_LIMIT_BYTES);
    this.log = o.log ?? ringLogger(this.pluginLog);
    this.work = new WorkDir(
      join(o.nodeDir, 'work'),
      o.nodeDir,
      (version) => this.archives.path(version),
      o.workloadUser,
    );
  }

  private get workDir(): string {
    return this.work.path;
  }

  private get stateDir(): string {
    return join(this.o.nodeDir, 'state');
  }

  async start(): Promise<void> {
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(this.o.nodeDir, 'logs'), { recursive: true, mode: 0o700 });
    const at = subjects.agent(this.o.appId, this.o.serviceId, this.o.nodeId);
    this.o.bus.handle(at, checkAgentProcess, () => ({
      nodeId: this.o.nodeId,
      role: this.o.role,
      workloads: this.o.supervisor
        .list()
        .map((w) => ({ name: w.name, state: w.state, restarts: w.restarts })),
    }));
    this.o.bus.handle(at, agentLogs, (d) => ({ text: this.logs(d.workload, d.tailBytes) }));
    this.o.bus.handle(at, callMethod, async (d) => ({ result: await this.call(d.method, d.args) }));
    this.o.bus.handle(at, archiveChunk, (d) =>
      this.archives.receive({ ...d, data: Buffer.from(d.data, 'base64') }),
    );
    await this.o.bus.flush();
    this.heartbeat();
    this.timer = setInterval(() => this.heartbeat(), this.o.heartbeatMs ?? 1_000);
    await this.o.service.agent.onStart?.(this.context());
    this.ready = true;
    this.heartbeat();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.o.supervisor.stopAll({ graceMs: 3_000 });
  }

  private heartbeat(): void {
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
    };
    const hb: Heartbeat = {
      nodeId: this.o.nodeId,
      role: this.o.role,
      at: new Date().toISOString(),
      ready: this.ready,
      metrics,
    };
    this.o.bus.publish(`${subjects.fromNode(this.o.appId, this.o.serviceId, this.o.nodeId)}.heartbeat`, hb);
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
      log: this.log,
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
          env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: this.workDir, ...w.env },
          restart: w.restart ?? 'always',
          ...(this.o.workloadUser ? { user: this.o.workloadUser } : {}),
        });
        this.recordGroups();
      },
      workload: (name) => {
        const w = this.o.supervisor.list().find((x) => x.name === name);
        return w ? { state: w.state, ...(w.lastExit ? { exitCode: w.lastExit.code } : {}) } : undefined;
      },
      stopWorkload: async (name) => {
        await this.o.supervisor.stop(name);
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
