import { z } from 'zod';
import { IdSchema, ValidationError } from '@cps/core';
import type { AgentContext, ManagerContext } from './context.js';

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
  readonly manager: {
    readonly methods: ManagerMethods;
    /** Runs after a node became ready or was removed (e.g. to tell every agent its peers). */
    readonly onNodesChanged?: (ctx: ManagerContext) => Promise<void>;
    /** Runs after `set_archive` made a new archive current (e.g. to send it to every node). */
    readonly onArchiveChanged?: (ctx: ManagerContext) => Promise<void>;
  };
  readonly agent: {
    readonly methods: AgentMethods;
    /** Runs when the agent has joined: start the role's workloads here. */
    readonly onStart?: (ctx: AgentContext) => Promise<void>;
  };
}

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
] as const;
export const GENERIC_AGENT_METHODS = ['check_agent_process', 'get_logs', 'archive_chunk'] as const;

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
