/**
 * What the runtimes give a plugin's code. The manager runtime implements `ManagerContext`, the
 * agent runtime `AgentContext`; plugins depend on these interfaces only.
 */

export interface NodeView {
  readonly nodeId: string;
  readonly role: string;
  readonly cloud: string;
  readonly state: 'requested' | 'starting' | 'running' | 'failed' | 'removing' | 'removed';
  readonly address?: string;
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
  /** Calls a method of the plugin's agent part on one node (validated against its schemas). */
  callAgent(nodeId: string, method: string, args: unknown): Promise<unknown>;
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

export interface AgentContext {
  readonly appId: string;
  readonly serviceId: string;
  readonly nodeId: string;
  readonly role: string;
  /** The workload's working directory (owned by the unprivileged workload user). */
  readonly workDir: string;
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
