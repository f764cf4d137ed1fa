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

/** Where a service can be reached for one purpose (`mysql` on its primary, `http` on its proxy). */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** The node that serves it, when one node does. */
  readonly nodeId?: string;
}

/** A service this one links (manifest `Links`), as the linking service's nodes see it. */
export interface LinkView {
  readonly serviceId: string;
  readonly type?: string;
  /** Its endpoints by name, as last heard: they change when it moves them (a failover). */
  readonly endpoints: Readonly<Record<string, Endpoint>>;
  /**
   * What the linked service made for this one (see `ServiceDefinition.links`: a database user and
   * its password), kept sealed in the service's events and opened for its nodes.
   */
  readonly credentials?: Readonly<Record<string, string>>;
  /**
   * The environment the linked service's type gives a workload of this one (`MYSQL_HOST`, ...), from
   * its current endpoints and the credentials: set in a node's configuration, not in events.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * What the manager pushes to a node whenever its agent (re)joins or the service's topology, links or
 * plugin state change: the agent keeps the last one in its private state (see `AgentContext.config`).
 */
export interface NodeConfig {
  /** What the plugin's `configureNode` gave this node (its settings and its part of the topology). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** The service's running nodes. */
  readonly nodes: readonly NodeView[];
  /** The services this one links, by link name. */
  readonly links: Readonly<Record<string, LinkView>>;
  /**
   * The volumes of linked storage services its nodes mount (the agent runtime mounts them in the
   * work directory before the workloads start; the plugin only sees the directories).
   */
  readonly volumes?: readonly VolumeMount[];
}

/** A volume of the storage service linked as `link`, mounted at `mount` in the work directory. */
export interface VolumeMount {
  readonly link: string;
  readonly volume: string;
  /** Relative to the work directory: 1 to 4 names, none `.` or `..`. */
  readonly mount: string;
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
  /**
   * The type-specific keys of the service's manifest entry (validated by its `manifestKeys`, secret
   * ones opened): a mysql service's `Dump` and `Password`, say. Empty for a service added otherwise.
   */
  readonly manifest: Readonly<Record<string, unknown>>;
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
  /**
   * The plugin's state: its `state.initial` folded with every event it recorded, by its
   * `state.evolve` (kept in the service's event stream: it survives every restart).
   */
  state(): unknown;
  /**
   * Records one event of the plugin's state (`name` one of `state.events`, `data` valid against its
   * schema) in the service's stream; then every node is configured again.
   */
  record(name: string, data: unknown): Promise<void>;
  /** The service's endpoints by name. */
  endpoints(): Readonly<Record<string, Endpoint>>;
  /**
   * Sets (or, with `undefined`, removes) an endpoint: recorded, shown by the API, and pushed to the
   * nodes of every service that links this one.
   */
  setEndpoint(name: string, endpoint: Endpoint | undefined): Promise<void>;
  /** The services this one links, by link name, with their endpoints. */
  links(): Readonly<Record<string, LinkView>>;
  /**
   * A secret of this service for `purpose` (a server's administration password, say): the same on
   * every call and after every restart, derived from the owner's key, stored nowhere (43 characters
   * of base64url). Pass it to nodes in their configuration; never record it.
   */
  secret(purpose: string): string;
  /**
   * An HTTPS certificate for one running node of the service from the platform's services CA, for
   * the key the plugin made (only its public half leaves): it names the node's address. `conflict`
   * if the node has no address yet. The CA is what a client trusts to reach the node.
   */
  issueCertificate(
    nodeId: string,
    publicKeyPem: string,
  ): Promise<{ readonly certificate: string; readonly ca: string; readonly notAfter: string }>;
  /**
   * The service's own objects (a database's backups), in its data bucket of the platform's object
   * store: stored with their SHA-256, checked on the way out. Names are ids (`[a-z0-9][a-z0-9_-]*`).
   */
  readonly objects: ServiceObjects;
  readonly log: PluginLogger;
}

/** A stored object of the service. */
export interface ObjectView {
  readonly name: string;
  readonly size: number;
  /** SHA-256, lowercase hex. */
  readonly digest: string;
  /** What the plugin said of it when storing it (JSON, say). */
  readonly description?: string;
  /** When it was stored (ISO 8601). */
  readonly stored: string;
}

/** See `ManagerContext.objects`. */
export interface ServiceObjects {
  /** Every object, oldest first. */
  list(): Promise<readonly ObjectView[]>;
  /** One object's view, or undefined. */
  info(name: string): Promise<ObjectView | undefined>;
  /**
   * Moves the spool file `file` of node `nodeId` into object `name` (refused if `name` exists:
   * `conflict`), piece by piece; its size and SHA-256 are checked against what the node reports.
   * The node's file is removed, stored or not.
   */
  fromNode(
    nodeId: string,
    file: string,
    name: string,
    o?: { readonly description?: string },
  ): Promise<ObjectView>;
  /** Copies object `name` into the spool of node `nodeId` as `file`; checked there before it appears. */
  toNode(name: string, nodeId: string, file: string): Promise<ObjectView>;
  /** Deletes an object; false if there was none. */
  delete(name: string): Promise<boolean>;
}

/** A workload the agent runs under supervision (see the agent runtime's ProcessSupervisor). */
export interface WorkloadRequest {
  readonly name: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly restart?: 'always' | 'on-failure' | 'never';
  /**
   * Written to its stdin at every start (then closed): a server's configuration, secrets included,
   * in no file and no argument (`redis-server -`).
   */
  readonly input?: string;
  /**
   * When the workload is ready to serve: a TCP port it accepts connections on (at the node's
   * address), or a command (run as the workload user in the work directory) that exits 0. The node
   * is not ready (no `NodeReady`) until every workload's probe passes; checked every heartbeat.
   */
  readonly ready?: { readonly tcp: number } | { readonly command: string; readonly args?: readonly string[] };
  /**
   * Where its stdout goes instead of the node's log: each chunk as it is read (an access log written
   * to a pipe by a reader workload). The agent opens no path for it.
   */
  readonly stdout?: (chunk: Uint8Array) => void;
}

/** What a one-off command run by `AgentContext.exec` gave. */
export interface ExecResult {
  readonly code: number | null;
  /** The end of each: the last 64 KiB, or the `keepBytes` asked for. */
  readonly stdout: string;
  readonly stderr: string;
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
  /**
   * Makes `name` a directory of the workload user, unless it is one already (its content is kept);
   * anything else there (a file, a link) is removed first.
   */
  mkdir(name: string): Promise<void>;
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
   * The node's durable data directory, relative to {@link workDir} (workloads run there: pass it
   * to them as it is). It belongs to the workload user, exists before `onConfigure` runs, and lives
   * as long as the node: agent restarts, `cps down` / `cps up` and a restart of its machine keep
   * it; only the node's removal deletes it.
   */
  readonly dataDir: string;
  /**
   * The last configuration the manager pushed (see {@link NodeConfig}), kept in the node's private
   * state: an agent that restarts starts from it. Undefined before the first one.
   */
  readonly config: NodeConfig | undefined;
  /**
   * Runs a one-off command as the workload user in the work directory with the workloads' clean
   * environment plus `env` (`input` on its stdin), logged in the agent log; killed after
   * `timeoutMs` (default 30 s).
   */
  exec(
    command: string,
    args: readonly string[],
    options?: {
      readonly env?: Readonly<Record<string, string>>;
      readonly input?: string;
      readonly timeoutMs?: number;
      /** How much of the end of each output to keep (default 64 KiB, at most 8 MiB). */
      readonly keepBytes?: number;
      /** A file of the node's {@link spool} as its stdin (instead of `input`). */
      readonly stdinFrom?: string;
      /** A file of the node's {@link spool} its stdout goes to, whole (then not in the result). */
      readonly stdoutTo?: string;
    },
  ): Promise<ExecResult>;
  /**
   * The node's spool: files in transit between this agent and its manager, in the node's private
   * directory (workloads cannot reach it; a command gets one only as its stdin or stdout, see
   * `exec`). The manager moves them to and from the service's object store (`ManagerContext.objects`).
   * A name is one token: `[a-z0-9][a-z0-9._-]*`, no `..`.
   */
  readonly spool: {
    /** The file's path (it may not exist yet). */
    path(name: string): string;
    remove(name: string): void;
  };
  /** Sends a signal to a running workload (a reload: nginx `SIGHUP`, php-fpm `SIGUSR2`). */
  signal(workload: string, signal: NodeJS.Signals): Promise<void>;
  /**
   * Where the archive `version` that the manager sent lies, verified (in the node's private
   * directory; extract it into `workDir`). `not_found` if this node does not have it whole.
   */
  archivePath(version: string): string;
  startWorkload(w: WorkloadRequest): Promise<void>;
  /**
   * A workload's state, or undefined if it was never started; `startedAt` (ms since the epoch) is
   * when its current run began: a new value means it was started again (restarted after a crash).
   */
  workload(
    name: string,
  ): { readonly state: string; readonly exitCode?: number | null; readonly startedAt?: number } | undefined;
  stopWorkload(name: string): Promise<void>;
  readonly log: PluginLogger;
}
