import { z } from 'zod';
import { IdSchema, ValidationError } from '@cps/core';
import type { AgentContext, LinkView, ManagerContext, NodeConfig, NodeView } from './context.js';

/** The life-cycle states of every service (ConPaaS's state machine). */
export const ServiceStatuses = {
  INIT: 'INIT',
  PROLOGUE: 'PROLOGUE',
  RUNNING: 'RUNNING',
  ADAPTING: 'ADAPTING',
  EPILOGUE: 'EPILOGUE',
  STOPPED: 'STOPPED',
  ERROR: 'ERROR',
} as const;
export type ServiceStatus = (typeof ServiceStatuses)[keyof typeof ServiceStatuses];

/**
 * One method of a plugin: its argument and result schemas are the contract of the REST route, the
 * CLI command and the bus command that call it. `states` lists where it may run (default RUNNING, and
 * ADAPTING too for a `readOnly` method).
 */
export interface MethodDefinition<
  A extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
  Ctx = never,
> {
  readonly description: string;
  readonly args: A;
  readonly result: R;
  readonly states?: readonly ServiceStatus[];
  /** The method only reads (state, status, metrics): it may also run while nodes change (ADAPTING). */
  readonly readOnly?: boolean;
  /** The implementation; the runtime validates `args` before and the result after. */
  readonly handle: (ctx: Ctx, args: z.output<A>) => Promise<z.input<R>> | z.input<R>;
}

/** Where `m` may run: its `states`, else RUNNING (and ADAPTING when it only reads). */
export const allowedStates = (m: Pick<MethodDefinition, 'states' | 'readOnly'>): readonly ServiceStatus[] =>
  m.states ?? (m.readOnly ? ['RUNNING', 'ADAPTING'] : ['RUNNING']);

/**
 * The schema settings from outside (the API, a manifest) are checked with: the type's `configSchema`,
 * refusing keys it does not name (a typo must not be dropped silently) when it is an object schema.
 */
export const strictSettings = (configSchema: z.ZodType): z.ZodType =>
  configSchema instanceof z.ZodObject ? configSchema.strict() : configSchema;

/** A manager-side method of a plugin. */
export const managerMethod = <A extends z.ZodType, R extends z.ZodType>(
  m: MethodDefinition<A, R, ManagerContext>,
): MethodDefinition<A, R, ManagerContext> => m;

/** An agent-side method of a plugin. */
export const agentMethod = <A extends z.ZodType, R extends z.ZodType>(
  m: MethodDefinition<A, R, AgentContext>,
): MethodDefinition<A, R, AgentContext> => m;

/**
 * A service type: one folder, one value. Registered by passing it to `createRegistry([...])`.
 *
 * - `roles`: the node roles this type knows; `defaultRoles`: the nodes `startup` creates.
 * - `configSchema`: the service's settings; `manifestKeys`: the type-specific keys of a manifest entry.
 * - `manager.methods` / `agent.methods`: the plugin's own methods, next to the generic ones every
 *   manager has (startup, add_nodes, remove_nodes, list_nodes, get_node_info, get_service_info,
 *   get_logs, shutdown) and every agent has (check_agent_process).
 */
export interface ServiceDefinition<
  Roles extends string = string,
  ManagerMethods extends Record<string, AnyManagerMethod> = Record<string, AnyManagerMethod>,
  AgentMethods extends Record<string, AnyAgentMethod> = Record<string, AnyAgentMethod>,
> {
  readonly type: string;
  readonly description: string;
  readonly roles: readonly Roles[];
  readonly defaultRoles: Readonly<Partial<Record<Roles, number>>>;
  /** Roles of which exactly this many nodes must exist while the service runs (e.g. generic's one master). */
  readonly fixedRoles?: Readonly<Partial<Record<Roles, number>>>;
  readonly configSchema: z.ZodType;
  readonly manifestKeys: z.ZodObject;
  /**
   * The Debian packages its nodes need (`redis-server`): the set-up installs those of the built-in
   * types, and an agent whose software is missing fails at start naming the package.
   */
  readonly packages?: readonly string[];
  /**
   * Why a node cannot run this type (an agent that is not root where the type mounts file systems, a
   * loopback address where its servers refuse one), or undefined when it can: asked by each agent at
   * its start, which then fails at once with that reason, as it does when software is missing.
   */
  readonly checkNode?: (node: {
    readonly address: string;
    readonly privileged: boolean;
  }) => string | undefined;
  /**
   * Refuses a code archive this type cannot run, given its regular files at the root or one directory
   * down (a php service: no `index.php` or `index.html` there): throw a `ValidationError` naming
   * `$.archive`. The director asks it at every upload, before anything is stored.
   */
  readonly checkArchive?: (nearRoot: readonly string[]) => void;
  /**
   * Keys of `manifestKeys` whose value is a URL of a file the plugin needs (a mysql service's
   * `Dump`): at a deploy the director downloads it (allow-listed and size-limited, as an `Archive`)
   * into the service's objects, as `manifest-<key in lowercase>`, before the service starts.
   */
  readonly manifestFiles?: readonly string[];
  /**
   * The plugin's own state, kept as events in the service's stream: `events` names each event and its
   * schema, `evolve` folds one into the state (pure). See `ManagerContext.state` and `record`.
   */
  readonly state?: PluginState;
  /**
   * What a service linking one of this type gets besides the endpoints: `credentials` made for it by
   * this service's manager (idempotent; asked by the director once per link, kept sealed by the
   * linking service), and `env`, the environment its workloads get from the link (pure: the
   * endpoints move, the credentials stay).
   */
  readonly links?: {
    readonly credentials: (
      ctx: ManagerContext,
      consumer: { readonly serviceId: string; readonly name: string },
    ) => Promise<Record<string, string>>;
    readonly env: (link: {
      readonly endpoints: Readonly<Record<string, { readonly address: string; readonly port: number }>>;
      readonly credentials: Readonly<Record<string, string>>;
    }) => Record<string, string>;
  };
  /**
   * A storage type's volumes, as the nodes of a service that links it mount them: the command (run
   * as root by the mounting node's agent, in the node's own mount namespace) that mounts `volume` of
   * the linked service on `dir`, a directory no workload reaches; the agent then binds it into the
   * work directory. It must fail (exit non-zero) when the volume does not exist.
   */
  readonly volumes?: {
    readonly mountCommand: (o: {
      readonly link: LinkView;
      readonly volume: string;
      readonly dir: string;
    }) => { readonly command: string; readonly args: readonly string[] };
    /** The volumes a manifest entry of this type makes (its type-specific keys, parsed). */
    readonly declared: (manifest: Readonly<Record<string, unknown>>) => readonly string[];
  };
  readonly manager: {
    readonly methods: ManagerMethods;
    /**
     * What one node is told whenever its agent (re)joins (after `add_nodes`, a replacement, a restart
     * of the manager, of the agent or of the platform) and whenever the service's nodes, links,
     * endpoints or plugin state change: its settings and its part of the topology (a replica: where
     * its primary is). Never two at once in one service. The runtime adds the running nodes and
     * the links (see {@link NodeConfig}).
     */
    readonly configureNode?: (
      ctx: ManagerContext,
      node: NodeView,
    ) => Promise<Record<string, unknown>> | Record<string, unknown>;
    /** Runs after a node became ready, failed or was removed (e.g. to pick a new primary). */
    readonly onNodesChanged?: (ctx: ManagerContext) => Promise<void>;
    /**
     * Runs when the agent of a node that is not running yet first answers (a new node, a
     * replacement; once per agent boot): e.g. to send it the code while it gets ready. Nothing
     * waits for it: the node becomes ready on its own, and a failure is only logged.
     */
    readonly onNodeJoined?: (ctx: ManagerContext, node: NodeView) => Promise<void>;
    /**
     * Runs before a node that `remove_nodes` removes is destroyed (not at a shutdown, nor for a failed
     * node being replaced): e.g. to move its data to the other nodes first. The operation lasts until
     * it resolves; a failure is logged and the node destroyed all the same, so a hook that must not
     * lose data waits rather than fails. `stopping` is aborted when the manager stops; a restarted
     * manager runs the hook again for the nodes still being removed, so it must be idempotent.
     */
    readonly beforeRemove?: (ctx: ManagerContext, node: NodeView, stopping: AbortSignal) => Promise<void>;
    /**
     * Refuses a `remove_nodes` (throws a `CpsError` naming `$.nodeIds` or `$.nodes`) that would leave
     * the service unable to keep what it holds: e.g. fewer storage nodes than a volume's replicas.
     * `remaining` are the nodes that would be left.
     */
    readonly checkRemove?: (ctx: ManagerContext, remaining: readonly NodeView[]) => void;
    /** Runs after `set_archive` made a new archive current (e.g. to send it to every node). */
    readonly onArchiveChanged?: (ctx: ManagerContext) => Promise<void>;
    /**
     * Runs every `everyMs` while the service is RUNNING, one run at a time (a scheduled backup, say).
     * Keep what it decides in the plugin's state or objects: a restarted manager starts counting
     * afresh.
     */
    readonly periodic?: { readonly everyMs: number; readonly run: (ctx: ManagerContext) => Promise<void> };
  };
  readonly agent: {
    readonly methods: AgentMethods;
    /**
     * Runs with every configuration the manager pushes (and, at the agent's start, with the last one
     * it kept), before `onStart` the first time: write the workloads' config files here and reload
     * them. Must be idempotent.
     */
    readonly onConfigure?: (ctx: AgentContext, config: NodeConfig) => Promise<void>;
    /** Runs once the agent has its first configuration: start the role's workloads here. */
    readonly onStart?: (ctx: AgentContext) => Promise<void>;
    /** Runs before the agent stops (its node removed, the service stopped, the platform going down). */
    readonly onStop?: (ctx: AgentContext) => Promise<void>;
    /**
     * The service's own figures of this node, added to every heartbeat's metrics (queries per
     * second, replication lag): called once a heartbeat, so it answers what it sampled last, at once.
     */
    readonly metrics?: (ctx: AgentContext) => Readonly<Record<string, number>>;
  };
}

/** A plugin's state: its events (name -> zod schema) and how they fold (see `defineService`). */
export interface PluginState<S = unknown> {
  readonly initial: S;
  readonly events: Readonly<Record<string, z.ZodType>>;
  readonly evolve: (state: S, event: { readonly name: string; readonly data: unknown }) => S;
}

/** Types a plugin's state: `pluginState({ initial, events, evolve })`. */
export const pluginState = <S>(p: PluginState<S>): PluginState => p as PluginState;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- method tables hold methods of any schema
export type AnyManagerMethod = MethodDefinition<any, any, ManagerContext>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- idem
export type AnyAgentMethod = MethodDefinition<any, any, AgentContext>;

/** Names the generic layer owns: a plugin may not define a method with one of these names. */
export const GENERIC_MANAGER_METHODS = [
  'startup',
  'shutdown',
  'add_nodes',
  'remove_nodes',
  'list_nodes',
  'get_node_info',
  'get_service_info',
  'get_logs',
  'get_history',
  'set_archive',
  'set_links',
] as const;
export const GENERIC_AGENT_METHODS = [
  'check_agent_process',
  'get_logs',
  'archive_chunk',
  'configure',
] as const;

const METHOD_NAME = /^[a-z][a-z0-9_]{0,62}$/;

export const defineService = <
  Roles extends string,
  ManagerMethods extends Record<string, AnyManagerMethod>,
  AgentMethods extends Record<string, AnyAgentMethod>,
>(
  d: ServiceDefinition<Roles, ManagerMethods, AgentMethods>,
): ServiceDefinition<Roles, ManagerMethods, AgentMethods> => {
  const fail = (path: string, message: string): never => {
    throw new ValidationError(`service ${d.type}: ${message}`, [{ path, code: 'invalid_service', message }]);
  };
  if (!IdSchema.safeParse(d.type).success) fail('$.type', 'type must be a lowercase id');
  if (d.roles.length === 0) fail('$.roles', 'at least one role');
  for (const r of d.roles)
    if (!IdSchema.safeParse(r).success) fail('$.roles', `role ${r} must be a lowercase id`);
  for (const r of Object.keys(d.defaultRoles))
    if (!d.roles.includes(r as Roles)) fail(`$.defaultRoles.${r}`, `unknown role ${r}`);
  for (const r of Object.keys(d.fixedRoles ?? {}))
    if (!d.roles.includes(r as Roles)) fail(`$.fixedRoles.${r}`, `unknown role ${r}`);
  for (const p of d.packages ?? [])
    if (!/^[a-z0-9][a-z0-9+.-]{1,62}$/.test(p)) fail('$.packages', `${p} is not a Debian package name`);
  for (const name of Object.keys(d.state?.events ?? {}))
    if (!IdSchema.safeParse(name).success) fail(`$.state.events.${name}`, 'event names are lowercase ids');
  for (const [side, methods, reserved] of [
    ['manager', d.manager.methods, GENERIC_MANAGER_METHODS],
    ['agent', d.agent.methods, GENERIC_AGENT_METHODS],
  ] as const) {
    for (const name of Object.keys(methods)) {
      if (!METHOD_NAME.test(name))
        fail(`$.${side}.methods.${name}`, `method name ${name} must match ${METHOD_NAME.source}`);
      if ((reserved as readonly string[]).includes(name))
        fail(`$.${side}.methods.${name}`, `${name} is a generic method`);
    }
  }
  return d;
};
