import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { CpsError, NotFoundError, ValidationError } from '@cps/core';
import { IAAS_NODE_PORTS, nodeEnvironment } from '../node-environment.js';
import { HOSTS, lowestFree, nodeAddress, nodeNamespace, ownerTag } from '../host/address-plan.js';
import { AppNetworks, type NatsEndpoint } from '../host/app-networks.js';
import { missingTools } from '../host/kernel.js';
import { sandboxed } from '../host/node-sandbox.js';
import type { BaseCloud, CloudNode, NodeSpec } from '../types.js';
import { NodeCgroups } from './cgroup.js';
import { withDirLock } from './dir-lock.js';
import { validateNodeId, validateNodeSpec, writeNodeFiles } from './node-spec.js';
import {
  freeRange,
  readRecord,
  readRecords,
  writeRecord,
  type NodeRecord,
  type PortRange,
} from './node-record.js';
import { listeningPorts } from './listening-ports.js';
import { isAlive, procStat, stopGroup } from './proc.js';
import type { WorkloadUser } from './workload-user.js';

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
/** Where every local node is reached: they all run on this machine. */
const LOCAL_ADDRESS = '127.0.0.1';

/** How a local node is started: the program and its arguments, resolved against the node's `PATH`. */
export interface LocalCommand {
  readonly command: string;
  readonly args: readonly string[];
}

export interface LocalCloudOptions {
  /** The name this cloud is configured under; `local` by default. */
  readonly name?: string;
  /** Holds the state and working directory of every node (`<dir>/nodes/<nodeId>/`, mode 0700). */
  readonly dir: string;
  /** The program a node runs (an agent runtime, a manager runtime), chosen from its spec. */
  readonly command: (spec: NodeSpec) => LocalCommand;
  /**
   * First port handed out; default 20000. Each node gets `portsPerNode` consecutive ports that no
   * other node of this cloud holds and that nothing on the machine listens on (TCP, any address)
   * when the node is created: a range with such a port is skipped whole.
   */
  readonly portBase?: number;
  /** Size of each node's port range; default 20. */
  readonly portsPerNode?: number;
  /**
   * The account workloads run as: the node's `work` directory is given to it when this process runs as root.
   * The node's own process keeps this process's account (see {@link workloadUser}).
   */
  readonly workloadUser?: WorkloadUser;
  /** How long `destroy` waits after SIGTERM before it sends SIGKILL; default 5000 ms. */
  readonly stopGraceMs?: number;
  /**
   * Host mode (root only, see docs/host-mode.md): each node is a network, mount and PID namespace
   * of its own with an address of its application's network, reaching nothing beyond that network
   * but NATS at `nats` (the platform's address, see `claimPlatformAddress`).
   */
  readonly host?: HostModeOptions;
}

export interface HostModeOptions {
  /** Where the nodes reach NATS: the platform address it listens on, and its port. */
  readonly nats: NatsEndpoint;
  /**
   * Hidden from every node (an empty tmpfs over it in the node's mount namespace; the node's own
   * directory is mounted back): the platform's directory. Default: this cloud's `dir`.
   */
  readonly hide?: string;
  /**
   * The directory of the programs nodes run, kept visible (read-only) where `/tmp` or `hide` would
   * cover it. Default: this checkout of the platform.
   */
  readonly code?: string;
}

const positiveInt = (v: number, path: string, max: number): number => {
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new ValidationError(`${path} must be an integer from 1 to ${max}`, [
      { path: `$.${path}`, code: 'out_of_range', message: `must be an integer from 1 to ${max}` },
    ]);
  return v;
};

/**
 * The embedded cloud: each node is a process on this machine, detached into its own process
 * group and session, so it outlives the process that created it. A node's process gets a clean
 * environment (its contextualization env, `PATH`, `HOME` = its directory, and the node environment
 * (see {@link nodeEnvironment}) with address 127.0.0.1), its directory as working directory, and its
 * output in `<node>/node.log`. State lives in `<node>/node.json`, so a new `LocalCloud` on the
 * same `dir` (after a restart) finds every node again.
 */
export class LocalCloud implements BaseCloud {
  readonly driver = 'local' as const;
  readonly name: string;
  private readonly dir: string;
  private readonly nodesDir: string;
  private readonly portBase: number;
  private readonly portsPerNode: number;
  private readonly stopGraceMs: number;
  private cgroups: NodeCgroups | undefined | null = null;
  private readonly networks: AppNetworks | undefined;

  constructor(private readonly options: LocalCloudOptions) {
    this.name = options.name ?? 'local';
    this.dir = resolve(options.dir);
    this.nodesDir = join(this.dir, 'nodes');
    this.portBase = positiveInt(options.portBase ?? 20_000, 'portBase', 65_535);
    this.portsPerNode = positiveInt(options.portsPerNode ?? 20, 'portsPerNode', 65_535);
    this.stopGraceMs = options.stopGraceMs ?? 5_000;
    if (options.host) {
      const why = LocalCloud.hostModeUnavailable();
      if (why) throw new CpsError('unavailable', `host mode: ${why}`);
      this.networks = new AppNetworks(join(this.dir, 'networks'), this.tag, options.host.nats);
    }
  }

  /** Why host mode cannot run here (not root, a tool missing), or undefined when it can. */
  static hostModeUnavailable(): string | undefined {
    if (process.getuid?.() !== 0) return 'needs root';
    const missing = missingTools();
    return missing.length > 0 ? `missing ${missing.join(', ')}` : undefined;
  }

  /** `host`: nodes are namespaces with addresses of their own; `process`: processes on 127.0.0.1. */
  get mode(): 'host' | 'process' {
    return this.networks ? 'host' : 'process';
  }

  /** Names this cloud's kernel objects (host mode): its directory's hash. */
  get tag(): string {
    return ownerTag(this.dir);
  }

  /**
   * Starts the node unless it is recorded already: a recorded node is returned as it is, running
   * or stopped (a stopped node is started again by {@link start}).
   */
  async create(spec: NodeSpec): Promise<CloudNode> {
    validateNodeSpec(spec);
    return this.locked(async () => {
      const existing = readRecord(this.nodeDir(spec.nodeId));
      return this.toNode(existing ?? (await this.fresh(spec)));
    });
  }

  /**
   * How this cloud ends everything a node started: `cgroup` (a cgroup per node, as root) or
   * `process-group` (the node's and its workloads' process groups; a process that leaves them
   * outlives the node).
   */
  get confinement(): 'cgroup' | 'process-group' {
    return this.nodeCgroups() ? 'cgroup' : 'process-group';
  }

  private nodeCgroups(): NodeCgroups | undefined {
    if (this.cgroups === null) this.cgroups = NodeCgroups.detect(this.dir);
    return this.cgroups;
  }

  async list(): Promise<CloudNode[]> {
    return readRecords(this.nodesDir).map((r) => this.toNode(r));
  }

  async get(nodeId: string): Promise<CloudNode | undefined> {
    validateNodeId(nodeId);
    const r = readRecord(this.nodeDir(nodeId));
    return r && this.toNode(r);
  }

  /**
   * Stops the node (see {@link stop}) and removes its directory, data included (once nothing of the
   * node runs, so nothing races the removal).
   */
  async destroy(nodeId: string): Promise<void> {
    validateNodeId(nodeId);
    await this.locked(async () => {
      const dir = this.nodeDir(nodeId);
      if (!existsSync(dir)) return;
      const r = readRecord(dir);
      await this.end(dir);
      keepLogTail(dir);
      const trash = join(this.nodesDir, `.destroyed-${nodeId}-${process.pid}-${Date.now()}`);
      renameSync(dir, trash);
      rmSync(trash, { recursive: true, force: true });
      if (r && this.networks && !readRecords(this.nodesDir).some((x) => x.appId === r.appId))
        await this.networks.release(r.appId);
    });
  }

  /**
   * Stops the node's whole process group (SIGTERM, then SIGKILL) and kills what is left in its
   * cgroup, keeping its directory: its data, its state and its work directory wait for {@link start}.
   * A platform going down stops its nodes; only a removal destroys them.
   */
  async stop(nodeId: string): Promise<void> {
    validateNodeId(nodeId);
    await this.locked(async () => {
      const dir = this.nodeDir(nodeId);
      if (existsSync(dir)) await this.end(dir);
    });
  }

  /**
   * Starts a stopped node again in its directory, as a machine boots again with its disk: data,
   * state and work directory as they were, the contextualization files and environment of `spec`
   * (a fresh identity), its previous log set aside as `node.previous.log`, and its port range kept
   * unless something else took a port of it meanwhile. A running node is returned as it is;
   * `not_found` if the node was never created (or was destroyed).
   */
  async start(spec: NodeSpec): Promise<CloudNode> {
    validateNodeSpec(spec);
    return this.locked(async () => {
      const dir = this.nodeDir(spec.nodeId);
      const r = readRecord(dir);
      if (!r) throw new NotFoundError(`no node ${spec.nodeId} to start`);
      if (isAlive(r.pid, r.startTime)) return this.toNode(r);
      return this.toNode(await this.launch(spec, dir, this.keptRange(r), r.network?.host));
    });
  }

  /**
   * Host mode: deletes the namespaces of nodes that do not run (a node killed from outside, a crash
   * of this cloud's caller) and the networks left without a running node. `cps down` calls it after
   * stopping the nodes, so nothing of host mode is left.
   */
  async tidy(): Promise<void> {
    const networks = this.networks;
    if (!networks) return;
    await this.locked(async () => {
      for (const r of readRecords(this.nodesDir))
        if (r.network && !isAlive(r.pid, r.startTime)) {
          if (r.cgroup) await NodeCgroups.kill(r.cgroup);
          await networks.leave(r.network.network, r.network.host);
        }
    });
  }

  /** Ends everything the node in `dir` runs: its process group, its workloads' groups, its cgroup. */
  private async end(dir: string): Promise<void> {
    const r = readRecord(dir);
    if (r) await stopGroup(r.pid, r.startTime, this.stopGraceMs);
    // a host-mode node's workloads are in its PID namespace (their pids mean nothing here) and cgroup
    if (!r?.network) await stopWorkloadGroups(dir, this.stopGraceMs);
    if (r?.cgroup) await NodeCgroups.kill(r.cgroup);
    if (r?.network && this.networks) {
      await this.networks.leave(r.network.network, r.network.host);
    }
  }

  /** A restarted node's port range: its own, unless another node or something on the machine holds a port of it. */
  private keptRange(r: NodeRecord): PortRange {
    if (this.networks) return IAAS_NODE_PORTS;
    const others = readRecords(this.nodesDir)
      .filter((x) => x.nodeId !== r.nodeId)
      .map((x) => x.ports);
    const busy = listeningPorts();
    return freeRange(others, r.ports.from, r.ports.to - r.ports.from + 1, busy).from === r.ports.from
      ? r.ports
      : freeRange(others, this.portBase, this.portsPerNode, busy);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    mkdirSync(this.nodesDir, { recursive: true, mode: 0o700 });
    return withDirLock(this.dir, fn);
  }

  private nodeDir(nodeId: string): string {
    return join(this.nodesDir, nodeId);
  }

  private toNode(r: NodeRecord): CloudNode {
    return {
      nodeId: r.nodeId,
      cloud: this.name,
      instanceId: String(r.pid),
      state: isAlive(r.pid, r.startTime) ? 'running' : 'stopped',
      kind: r.kind,
      appId: r.appId,
      serviceId: r.serviceId,
      address: r.network ? nodeAddress(r.network.network, r.network.host) : LOCAL_ADDRESS,
      ports: r.ports,
      createdAt: r.createdAt,
    };
  }

  private async fresh(spec: NodeSpec): Promise<NodeRecord> {
    const ports = this.networks
      ? IAAS_NODE_PORTS
      : freeRange(
          readRecords(this.nodesDir).map((r) => r.ports),
          this.portBase,
          this.portsPerNode,
          listeningPorts(),
        );
    const dir = this.nodeDir(spec.nodeId);
    const previousLog = keepLogTail(dir);
    rmSync(dir, { recursive: true, force: true });
    try {
      this.prepareDir(dir);
      if (previousLog) renameSync(previousLog, join(dir, 'node.previous.log'));
      return await this.launch(spec, dir, ports);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Writes the node's contextualization files and starts its program in `dir` (a fresh directory,
   * or a stopped node's: its last log is set aside first), in a cgroup of its own when it can.
   */
  private async launch(spec: NodeSpec, dir: string, ports: PortRange, host?: number): Promise<NodeRecord> {
    if (existsSync(join(dir, 'node.log'))) {
      const previousLog = keepLogTail(dir);
      if (previousLog) renameSync(previousLog, join(dir, 'node.previous.log'));
      rmSync(join(dir, 'node.log'), { force: true });
    }
    writeNodeFiles(dir, spec.contextualization.files);
    this.openWorkPath(dir);
    let pid: number | undefined;
    let cgroup: string | undefined;
    let network: NodeRecord['network'];
    try {
      const { command, args } = this.options.command(spec);
      cgroup = await this.nodeCgroups()?.create(spec.nodeId);
      network = this.networks && (await this.attach(spec, host));
      pid = await this.spawn(dir, spec, ports, command, args, cgroup, network);
      const startTime = procStat(pid)?.startTime;
      const record: NodeRecord = {
        nodeId: spec.nodeId,
        kind: spec.kind,
        appId: spec.appId,
        serviceId: spec.serviceId,
        ...(spec.role === undefined ? {} : { role: spec.role }),
        pid,
        ...(startTime === undefined ? {} : { startTime }),
        command: [command, ...args],
        ...(cgroup === undefined ? {} : { cgroup }),
        ports,
        ...(network === undefined ? {} : { network }),
        createdAt: readRecord(dir)?.createdAt ?? new Date().toISOString(),
      };
      writeRecord(dir, record);
      return record;
    } catch (e) {
      if (pid !== undefined) await stopGroup(pid, undefined, 0);
      if (cgroup !== undefined) await NodeCgroups.kill(cgroup);
      if (network && this.networks) {
        await this.networks.leave(network.network, network.host);
      }
      throw e;
    }
  }

  /**
   * Host mode: brings up the node's application network and gives the node its namespace there,
   * at host number `host` (a restarted node's own) or the lowest one no node of the application holds.
   */
  private async attach(spec: NodeSpec, host?: number): Promise<NonNullable<NodeRecord['network']>> {
    const networks = this.networks as AppNetworks;
    const network = await networks.up(spec.appId);
    const held = new Set(
      readRecords(this.nodesDir)
        .filter((r) => r.appId === spec.appId && r.nodeId !== spec.nodeId && r.network)
        .map((r) => r.network?.host as number),
    );
    const chosen = host !== undefined && !held.has(host) ? host : lowestFree(HOSTS, held);
    if (chosen === undefined)
      throw new CpsError('unavailable', `application ${spec.appId} holds every address of its network`);
    await networks.attach(network, chosen);
    return { network, host: chosen };
  }

  /**
   * With a workload user, the node's directory is searchable by others (0711) so that the workload
   * user can walk to its work directory by absolute path (mariadbd wants one); everything else in
   * it stays the platform's own (0600 files, 0700 directories).
   */
  private openWorkPath(dir: string): void {
    if (this.options.workloadUser && process.getuid?.() === 0) chmodSync(dir, 0o711);
  }

  private prepareDir(dir: string): void {
    mkdirSync(dir, { mode: 0o700 });
    const work = join(dir, 'work');
    mkdirSync(work, { mode: 0o700 });
    const user = this.options.workloadUser;
    if (user && process.getuid?.() === 0) chownSync(work, user.uid, user.gid);
  }

  private async spawn(
    dir: string,
    spec: NodeSpec,
    ports: PortRange,
    command: string,
    args: readonly string[],
    cgroup: string | undefined,
    network: NodeRecord['network'],
  ): Promise<number> {
    const address = network ? nodeAddress(network.network, network.host) : LOCAL_ADDRESS;
    const env = {
      PATH: process.env.PATH ?? DEFAULT_PATH,
      ...spec.contextualization.env,
      HOME: dir,
      ...nodeEnvironment({ nodeId: spec.nodeId, nodeDir: dir, address, ports }),
    };
    if (network) {
      ({ command, args } = sandboxed({
        namespace: nodeNamespace(network.network, network.host),
        ...(cgroup === undefined ? {} : { cgroup }),
        nodeDir: dir,
        hide: this.options.host?.hide ?? this.dir,
        ...(this.options.host?.code === undefined ? {} : { code: this.options.host.code }),
        command,
        args,
      }));
    }
    const out = openSync(join(dir, 'node.log'), 'a', 0o600);
    let error: Error | undefined;
    try {
      const child = spawn(command, args, { cwd: dir, env, detached: true, stdio: ['ignore', out, out] });
      child.once('error', (e) => (error = e));
      child.unref();
      if (child.pid !== undefined) {
        if (cgroup !== undefined) NodeCgroups.join(cgroup, child.pid);
        return child.pid;
      }
    } finally {
      closeSync(out);
    }
    await new Promise((r) => setImmediate(r));
    throw new CpsError(
      'unavailable',
      `node ${spec.nodeId}: cannot start ${command}: ${error?.message ?? 'no error reported'}`,
      [],
      {
        cause: error,
      },
    );
  }
}

/**
 * Workloads lead process groups of their own (outside the node's), listed by the agent in
 * `<node>/workload-pgids`. A listed group is ended only while its leader still works inside this
 * node's directory, so a reused pid is never signalled.
 */
const stopWorkloadGroups = async (dir: string, graceMs: number): Promise<void> => {
  const file = join(dir, 'workload-pgids');
  if (!existsSync(file)) return;
  const pids = readFileSync(file, 'utf8')
    .split('\n')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 1);
  for (const pid of pids) {
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (cwd === dir || cwd.startsWith(`${dir}/`)) await stopGroup(pid, undefined, graceMs);
  }
};

const LOG_TAIL = 64 * 1024;

/**
 * Sets the last 64 KiB of a node's log aside as `<nodes>/<nodeId>.previous.log` (replacing an older
 * one), so the node's next incarnation starts with why the last one ended (`node.previous.log`).
 */
const keepLogTail = (dir: string): string | undefined => {
  const aside = `${dir}.previous.log`;
  try {
    const fd = openSync(join(dir, 'node.log'), 'r');
    try {
      const size = fstatSync(fd).size;
      const tail = Buffer.alloc(Math.min(size, LOG_TAIL));
      readSync(fd, tail, 0, tail.length, size - tail.length);
      writeFileSync(aside, tail, { mode: 0o600 });
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return existsSync(aside) ? aside : undefined;
};
