/**
 * What the runtimes give a plugin's code. The manager runtime implements `ManagerContext`, the
 * agent runtime `AgentContext`; plugins depend on these interfaces only.
 */

export interface NodeView {
  readonly nodeId: string;
  readonly role: string;
  readonly cloud: string;
  readonly state: 'requested' | 'starting' | 'running' | 'failed' | 'removing' | 'removed';
  /** The address the node's agent reported through its cloud (other nodes reach it there). */
  readonly address?: string;
  /** The ports the node may listen on, as its cloud handed them out (absent for older nodes). */
  readonly ports?: { readonly from: number; readonly to: number };
}

export interface PluginLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A code archive as the service's state records it (the content stays in the object store). */
export interface ArchiveView {
  readonly version: string;
  readonly size: number;
  /** SHA-256, lowercase hex. */
  readonly digest: string;
}

/** One node's answer in a fan-out: its result, or the error it gave (code and message). */
export type NodeAnswer =
  | { readonly nodeId: string; readonly ok: true; readonly result: unknown }
  | {
      readonly nodeId: string;
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string };
    };

export interface ManagerContext {
  readonly appId: string;
  readonly serviceId: string;
  readonly type: string;
  readonly config: unknown;
  /** The service's current code archive, if one was set. */
  archive(): ArchiveView | undefined;
  /**
   * Copies the current archive to a node, in pieces over the bus; resolves once the agent has it
   * whole and verified (then `AgentContext.archivePath(version)` finds it). `conflict` if no archive.
   */
  sendArchive(nodeId: string): Promise<ArchiveView>;
  /** The service's nodes as the manager's state knows them. */
  nodes(): readonly NodeView[];
  /**
   * Calls a method of the plugin's agent part on one node (validated against its schemas); a
   * `timeout` error after `timeoutMs` (default 5 s) without a reply.
   */
  callAgent(
    nodeId: string,
    method: string,
    args: unknown,
    options?: { readonly timeoutMs?: number },
  ): Promise<unknown>;
  /**
   * `callAgent` on every node of `nodeIds` at once; answers each node's result or error, in the order
   * given, so one dead node fails only its own answer.
   */
  fanOut(
    nodeIds: readonly string[],
    method: string,
    args: unknown,
    options?: { readonly timeoutMs?: number },
  ): Promise<readonly NodeAnswer[]>;
  readonly log: PluginLogger;
}

/** A workload the agent runs under supervision (see the agent runtime's ProcessSupervisor). */
export interface WorkloadRequest {
  readonly name: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly restart?: 'always' | 'on-failure' | 'never';
}

/**
 * The agent's only ways into the workload's directory. The workload owns that directory and may
 * plant links or rename anything in it at any moment, so the agent (which may run as root) never
 * opens, reads, deletes or writes a path there itself: a `name` is one entry directly in the work
 * directory (no `/`, not `.` or `..`), whatever the workload made of it is replaced as a whole,
 * never followed, and what lands there belongs to the workload user.
 */
export interface WorkFiles {
  /** Writes `data` to `name` (mode 0644): prepared where workloads cannot reach, then moved in. */
  write(name: string, data: string | Uint8Array): Promise<void>;
  /**
   * Unpacks the archive `version` the manager sent (see `archivePath`) where workloads cannot reach,
   * then replaces `name` with it. Resolves to the archive's top-level entries, as unpacked (what
   * the workload makes of them later is its own). A refused archive changes nothing.
   */
  unpack(version: string, name: string): Promise<{ readonly entries: readonly string[] }>;
  /** Removes `name` and everything under it, as the workload user (nothing if it does not exist). */
  remove(name: string): Promise<void>;
}

export interface AgentContext {
  readonly appId: string;
  readonly serviceId: string;
  readonly nodeId: string;
  readonly role: string;
  /**
   * The address the other nodes of the application reach this node at (`127.0.0.1` on the local
   * cloud, the machine's address on an IaaS cloud): what a workload advertises to its peers.
   */
  readonly address: string;
  /**
   * The workload's working directory, owned by the unprivileged workload user. Workloads run in it;
   * the agent reaches into it only through {@link files}, never by path.
   */
  readonly workDir: string;
  /** Writes into {@link workDir} that follow no link a workload planted. */
  readonly files: WorkFiles;
  /**
   * The plugin's own directory on this node: workloads cannot reach it, and it lives as long as the
   * node's directory. What the agent needs to remember (versions, peers) goes here, not in `workDir`.
   */
  readonly stateDir: string;
  /** The ports this node may listen on. */
  readonly ports: { readonly from: number; readonly to: number };
  /**
   * Where the archive `version` that the manager sent lies, verified (in the node's private
   * directory; extract it into `workDir`). `not_found` if this node does not have it whole.
   */
  archivePath(version: string): string;
  startWorkload(w: WorkloadRequest): Promise<void>;
  /** A workload's state, or undefined if it was never started. */
  workload(name: string): { readonly state: string; readonly exitCode?: number | null } | undefined;
  stopWorkload(name: string): Promise<void>;
  readonly log: PluginLogger;
}
