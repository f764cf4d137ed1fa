import {
  ConflictError,
  CpsError,
  issuesFromZod,
  NotFoundError,
  sameJson,
  ValidationError,
  type Command,
  type Decider,
} from '@cps/core';
import type { ArchiveView, Endpoint, LinkView, VolumeMount } from '../contract/context.js';
import type { ServiceDefinition, ServiceStatus } from '../contract/service.js';
import type { ServiceEvent } from './events.js';

export type NodeState = 'requested' | 'starting' | 'running' | 'failed' | 'removing' | 'removed';

export interface ServiceNode {
  readonly nodeId: string;
  readonly role: string;
  readonly cloud: string;
  readonly state: NodeState;
  readonly instanceId?: string;
  readonly address?: string;
  /** The ports the node's cloud handed out (absent for nodes started before they were kept). */
  readonly ports?: { readonly from: number; readonly to: number };
  readonly reason?: string;
}

export type OperationKind = 'startup' | 'add_nodes' | 'remove_nodes' | 'shutdown';

export interface Operation {
  readonly operationId: string;
  readonly kind: OperationKind;
  readonly nodeIds: readonly string[];
}

export type ServiceState =
  | { readonly status: 'NONE' }
  | {
      readonly status: ServiceStatus;
      readonly appId: string;
      readonly serviceId: string;
      readonly type: string;
      readonly config: unknown;
      readonly nodes: Readonly<Record<string, ServiceNode>>;
      readonly operation?: Operation;
      readonly archive?: ArchiveView;
      /** What the service exposes, by name (`setEndpoint`). */
      readonly endpoints: Readonly<Record<string, Endpoint>>;
      /** The services it links, by link name, with their endpoints as last told. */
      readonly links: Readonly<Record<string, LinkView>>;
      /** The plugin's own state (its `state.initial` folded with its events). */
      readonly plugin: unknown;
      /** The type-specific keys its manifest entry gave (secret ones sealed). */
      readonly manifest: Readonly<Record<string, unknown>>;
      /** The volumes of linked storage services its nodes mount. */
      readonly volumes?: readonly VolumeMount[];
    };

type Live = Exclude<ServiceState, { status: 'NONE' }>;

export interface NodeRequest {
  readonly nodeId: string;
  readonly role: string;
  readonly cloud: string;
  readonly replaces?: string;
}

export type ServiceCommand =
  | Command<
      'Create',
      {
        appId: string;
        serviceId: string;
        type: string;
        config: unknown;
        links?: Readonly<Record<string, string>>;
        manifest?: Readonly<Record<string, unknown>>;
        volumes?: VolumeMount[];
      }
    >
  | Command<'Startup', { operationId: string; nodes: readonly NodeRequest[] }>
  | Command<'AddNodes', { operationId: string; nodes: readonly NodeRequest[] }>
  | Command<'RemoveNodes', { operationId: string; nodeIds: readonly string[] }>
  | Command<'Shutdown', { operationId: string }>
  | Command<
      'NodeStarted',
      {
        nodeId: string;
        instanceId: string;
        address?: string;
        ports?: { readonly from: number; readonly to: number };
      }
    >
  | Command<'NodeReady', { nodeId: string }>
  | Command<'NodeFailed', { nodeId: string; reason: string }>
  | Command<'NodeRemoved', { nodeId: string }>
  | Command<'SetArchive', ArchiveView>
  | Command<'MoveNode', { nodeId: string; address: string; ports: { from: number; to: number } }>
  | Command<'SetEndpoint', { name: string; endpoint?: Endpoint }>
  | Command<'SetLinks', { links: Readonly<Record<string, LinkView>> }>
  | Command<'RecordPluginEvent', { name: string; data: unknown }>;

const ev = <T extends ServiceEvent['type']>(
  type: T,
  data: Extract<ServiceEvent, { type: T }>['data'],
): ServiceEvent => ({ type, data }) as ServiceEvent;

const live = (s: ServiceState): Live => {
  if (s.status === 'NONE') throw new NotFoundError('no such service');
  return withV2Fields(s);
};

/**
 * A state folded before contract v2 (a snapshot taken then) lacks its endpoints, links, plugin state
 * and manifest keys: they start empty (a plugin's state from its `initial` at its next event).
 */
export const withV2Fields = <S extends ServiceState>(s: S): S =>
  s.status === 'NONE' || 'endpoints' in s
    ? s
    : { endpoints: {}, links: {}, plugin: undefined, manifest: {}, ...s };

const requireState = (s: Live, allowed: readonly ServiceStatus[], what: string): void => {
  if (!allowed.includes(s.status)) {
    throw new ConflictError(
      `cannot ${what} while the service is ${s.status} (allowed in ${allowed.join(', ')})`,
    );
  }
};

const nodeOf = (s: Live, nodeId: string): ServiceNode => {
  const n = s.nodes[nodeId];
  if (!n) throw new NotFoundError(`service ${s.serviceId} has no node ${nodeId}`);
  return n;
};

/** A plugin event checked against the plugin's schema for it. */
const pluginEvent = (types: ServiceTypes, s: Live, e: { name: string; data: unknown }) => {
  const schema = types.get(s.type).state?.events[e.name];
  if (!schema)
    throw new ValidationError(`${s.type} has no state event ${e.name}`, [
      { path: '$.name', code: 'unknown_event', message: `not one of ${s.type}'s state events` },
    ]);
  const parsed = schema.safeParse(e.data);
  if (!parsed.success) throw new ValidationError(`invalid ${e.name} event`, issuesFromZod(parsed.error));
  return { name: e.name, data: parsed.data };
};

const isActive = (n: ServiceNode): boolean =>
  n.state !== 'removed' && n.state !== 'failed' && n.state !== 'removing';

const requestNodes = (s: Live, operationId: string, nodes: readonly NodeRequest[]): ServiceEvent[] => {
  if (nodes.length === 0)
    throw new ValidationError('no nodes requested', [
      { path: '$.nodes', code: 'empty', message: 'at least one node' },
    ]);
  for (const n of nodes) if (s.nodes[n.nodeId]) throw new ConflictError(`node id ${n.nodeId} already used`);
  return nodes.map((n) =>
    ev('NodeRequested', {
      nodeId: n.nodeId,
      role: n.role,
      cloud: n.cloud,
      operationId,
      ...(n.replaces ? { replaces: n.replaces } : {}),
    }),
  );
};

const transition = (s: Live, to: ServiceStatus, reason: string): ServiceEvent =>
  ev('ServiceStateChanged', { from: s.status, to, reason });

const startup = (s: Live, c: Extract<ServiceCommand, { type: 'Startup' }>): ServiceEvent[] => {
  requireState(s, ['INIT', 'STOPPED'], 'start');
  return [
    ev('OperationStarted', { operationId: c.data.operationId, kind: 'startup' }),
    transition(s, 'PROLOGUE', 'startup'),
    ...requestNodes(s, c.data.operationId, c.data.nodes),
  ];
};

const addNodes = (s: Live, c: Extract<ServiceCommand, { type: 'AddNodes' }>): ServiceEvent[] => {
  requireState(s, ['RUNNING'], 'add nodes');
  const removals = c.data.nodes.flatMap((n) =>
    n.replaces
      ? [
          ev('NodeRemovalRequested', {
            nodeId: nodeOf(s, n.replaces).nodeId,
            operationId: c.data.operationId,
          }),
        ]
      : [],
  );
  return [
    ev('OperationStarted', { operationId: c.data.operationId, kind: 'add_nodes' }),
    transition(s, 'ADAPTING', 'add_nodes'),
    ...requestNodes(s, c.data.operationId, c.data.nodes),
    ...removals,
  ];
};

const removeNodes = (
  s: Live,
  c: Extract<ServiceCommand, { type: 'RemoveNodes' }>,
  fixed: Readonly<Record<string, number>>,
): ServiceEvent[] => {
  requireState(s, ['RUNNING'], 'remove nodes');
  if (c.data.nodeIds.length === 0)
    throw new ValidationError('no nodes to remove', [
      { path: '$.nodeIds', code: 'empty', message: 'at least one node' },
    ]);
  const removing = c.data.nodeIds.map((id) => nodeOf(s, id));
  for (const n of removing)
    if (n.state === 'removed' || n.state === 'removing')
      throw new ConflictError(`node ${n.nodeId} is already ${n.state}`);
  const keeps = Object.values(s.nodes).filter((n) => isActive(n) && !c.data.nodeIds.includes(n.nodeId));
  if (keeps.length === 0)
    throw new ValidationError('a running service keeps at least one node: shut it down to stop it', [
      { path: '$.nodeIds', code: 'last_node', message: 'these are all its nodes' },
    ]);
  for (const [role, count] of Object.entries(fixed)) {
    const left = Object.values(s.nodes).filter(
      (n) => n.role === role && isActive(n) && !c.data.nodeIds.includes(n.nodeId),
    ).length;
    if (left < count) throw new ConflictError(`a ${s.type} service keeps ${count} ${role} node(s)`);
  }
  return [
    ev('OperationStarted', { operationId: c.data.operationId, kind: 'remove_nodes' }),
    transition(s, 'ADAPTING', 'remove_nodes'),
    ...removing.map((n) => ev('NodeRemovalRequested', { nodeId: n.nodeId, operationId: c.data.operationId })),
  ];
};

const shutdown = (s: Live, c: Extract<ServiceCommand, { type: 'Shutdown' }>): ServiceEvent[] => {
  requireState(s, ['PROLOGUE', 'RUNNING', 'ADAPTING', 'ERROR', 'INIT'], 'shut down');
  const prior = s.operation
    ? [ev('OperationFailed', { operationId: s.operation.operationId, reason: 'superseded by shutdown' })]
    : [];
  const toRemove = Object.values(s.nodes).filter((n) => n.state !== 'removed' && n.state !== 'removing');
  const stillRemoving = Object.values(s.nodes).some((n) => n.state === 'removing');
  const events = [
    ...prior,
    ev('OperationStarted', { operationId: c.data.operationId, kind: 'shutdown' }),
    transition(s, 'EPILOGUE', 'shutdown'),
    ...toRemove.map((n) => ev('NodeRemovalRequested', { nodeId: n.nodeId, operationId: c.data.operationId })),
  ];
  if (toRemove.length === 0 && !stillRemoving) {
    events.push(
      { type: 'ServiceStateChanged', data: { from: 'EPILOGUE', to: 'STOPPED', reason: 'no nodes' } },
      ev('OperationCompleted', { operationId: c.data.operationId }),
    );
  }
  return events;
};

/** After a node event: finish the running operation when all its nodes have settled. */
const settle = (
  before: Live,
  events: ServiceEvent[],
  fold: (s: ServiceState, e: ServiceEvent) => ServiceState,
): ServiceEvent[] => {
  const s = live(events.reduce(fold, before as ServiceState));
  const op = s.operation;
  if (!op) return events;
  const nodes = op.nodeIds.map((id) => s.nodes[id]).filter((n): n is ServiceNode => n !== undefined);
  const settled = (n: ServiceNode): boolean =>
    op.kind === 'startup' || op.kind === 'add_nodes'
      ? ['running', 'failed', 'removed'].includes(n.state)
      : n.state === 'removed';
  if (!nodes.every(settled)) return events;
  const failed = nodes.filter((n) => n.state === 'failed');
  // the service's resulting state comes before the operation's end: whoever sees the end sees it
  const done = (to: ServiceStatus, reason: string, ok: boolean): ServiceEvent[] => [
    ...events,
    ev('ServiceStateChanged', { from: s.status, to, reason }),
    ok
      ? ev('OperationCompleted', { operationId: op.operationId })
      : ev('OperationFailed', { operationId: op.operationId, reason }),
  ];
  const failedText = `nodes failed: ${failed.map((n) => `${n.nodeId} (${n.reason ?? '?'})`).join(', ')}`;
  switch (op.kind) {
    case 'startup':
      return failed.length === nodes.length
        ? done('ERROR', failedText, false)
        : done('RUNNING', failed.length ? failedText : 'started', failed.length === 0);
    case 'add_nodes':
      return done('RUNNING', failed.length ? failedText : 'nodes added', failed.length === 0);
    case 'remove_nodes':
      return done('RUNNING', 'nodes removed', true);
    case 'shutdown':
      return done('STOPPED', 'stopped', true);
  }
};

const nodeEvent = (
  s: Live,
  c: Extract<ServiceCommand, { type: 'NodeStarted' | 'NodeReady' | 'NodeFailed' | 'NodeRemoved' }>,
): ServiceEvent[] => {
  const n = nodeOf(s, c.data.nodeId);
  switch (c.type) {
    case 'NodeStarted':
      return n.state === 'requested' ? [ev('NodeStarted', c.data)] : [];
    case 'NodeReady':
      return n.state === 'requested' || n.state === 'starting' ? [ev('NodeReady', c.data)] : [];
    case 'NodeFailed':
      return n.state === 'removed' || n.state === 'failed' ? [] : [ev('NodeFailed', c.data)];
    case 'NodeRemoved':
      return n.state === 'removed' ? [] : [ev('NodeRemoved', c.data)];
  }
};

const withoutOperation = (s: Live): Live => {
  const next = { ...s };
  delete (next as { operation?: Operation }).operation;
  return next;
};

const withNode = (s: Live, nodeId: string, patch: Partial<ServiceNode>): Live => {
  const n = s.nodes[nodeId];
  return n ? { ...s, nodes: { ...s.nodes, [nodeId]: { ...n, ...patch } } } : s;
};

/** A service's links as it is created: each linked service, none of its endpoints heard yet. */
export const linksAtCreation = (
  links: Readonly<Record<string, string>> | undefined,
): Record<string, LinkView> =>
  Object.fromEntries(
    Object.entries(links ?? {}).map(([name, serviceId]) => [name, { serviceId, endpoints: {} }]),
  );

/** The types a service aggregate knows: each type's fixed roles and plugin state. */
export interface ServiceTypes {
  get(type: string): Pick<ServiceDefinition, 'fixedRoles' | 'state'>;
}

/** Folds one event of a service of one of `types` (the plugin's events by the plugin's `evolve`). */
export const evolveService =
  (types: ServiceTypes) =>
  (state: ServiceState, e: ServiceEvent): ServiceState => {
    if (e.type === 'ServiceCreated') {
      const { links, manifest, ...created } = e.data;
      return {
        status: 'INIT',
        ...created,
        manifest: manifest ?? {},
        nodes: {},
        endpoints: {},
        links: linksAtCreation(links),
        plugin: types.get(e.data.type).state?.initial,
      };
    }
    if (state.status === 'NONE') return state;
    return evolveLive(types, withV2Fields(state), e);
  };

const evolveLive = (types: ServiceTypes, s: Live, e: ServiceEvent): ServiceState => {
  switch (e.type) {
    case 'ServiceStateChanged':
      return { ...s, status: e.data.to };
    case 'OperationStarted':
      return { ...s, operation: { operationId: e.data.operationId, kind: e.data.kind, nodeIds: [] } };
    case 'OperationCompleted':
    case 'OperationFailed':
      return withoutOperation(s);
    case 'NodeRequested': {
      const node: ServiceNode = {
        nodeId: e.data.nodeId,
        role: e.data.role,
        cloud: e.data.cloud,
        state: 'requested',
      };
      const op = s.operation
        ? { ...s.operation, nodeIds: [...s.operation.nodeIds, e.data.nodeId] }
        : s.operation;
      return { ...s, nodes: { ...s.nodes, [node.nodeId]: node }, ...(op ? { operation: op } : {}) };
    }
    case 'NodeStarted':
      return withNode(s, e.data.nodeId, {
        state: 'starting',
        instanceId: e.data.instanceId,
        ...(e.data.address ? { address: e.data.address } : {}),
        ...(e.data.ports ? { ports: e.data.ports } : {}),
      });
    case 'NodeReady':
      return withNode(s, e.data.nodeId, { state: 'running' });
    case 'NodeFailed':
      return withNode(s, e.data.nodeId, { state: 'failed', reason: e.data.reason });
    case 'NodeRemovalRequested': {
      const next = withNode(s, e.data.nodeId, { state: 'removing' });
      const op = next.operation;
      return op && !op.nodeIds.includes(e.data.nodeId)
        ? { ...next, operation: { ...op, nodeIds: [...op.nodeIds, e.data.nodeId] } }
        : next;
    }
    case 'NodeRemoved':
      return withNode(s, e.data.nodeId, { state: 'removed' });
    case 'ArchiveSet':
      return { ...s, archive: e.data };
    case 'NodeMoved':
      return withNode(s, e.data.nodeId, { address: e.data.address, ports: e.data.ports });
    case 'EndpointSet': {
      const endpoints = { ...s.endpoints };
      if (e.data.endpoint) endpoints[e.data.name] = e.data.endpoint;
      else delete endpoints[e.data.name];
      return { ...s, endpoints };
    }
    case 'LinksSet':
      return { ...s, links: e.data.links };
    case 'PluginEventRecorded': {
      const p = types.get(s.type).state;
      return p ? { ...s, plugin: p.evolve(s.plugin, e.data) } : s;
    }
    case 'ServiceCreated':
      return s;
  }
};

/**
 * The service aggregate: ConPaaS's state machine INIT -> PROLOGUE -> RUNNING <-> ADAPTING ->
 * EPILOGUE -> STOPPED, plus ERROR. Operations start with a command and finish when the node events
 * they wait for have arrived. The service types it knows (`types.get(type)`: a registry, or the one
 * definition a manager runs) give each type's `fixedRoles` (e.g. generic's single master), which
 * guard removals: every writer of the aggregate configures it the same way.
 */
export const serviceDecider = (types: ServiceTypes): Decider<ServiceCommand, ServiceEvent, ServiceState> => ({
  initialState: () => ({ status: 'NONE' }),
  evolve: evolveService(types),
  decide: (c, state) => {
    if (c.type === 'Create') {
      if (state.status !== 'NONE') throw new ConflictError('service exists');
      return [ev('ServiceCreated', c.data)];
    }
    const s = live(state);
    switch (c.type) {
      case 'Startup':
        return startup(s, c);
      case 'AddNodes':
        return addNodes(s, c);
      case 'RemoveNodes':
        return removeNodes(s, c, (types.get(s.type).fixedRoles ?? {}) as Record<string, number>);
      case 'Shutdown':
        return shutdown(s, c);
      case 'NodeStarted':
      case 'NodeReady':
      case 'NodeFailed':
      case 'NodeRemoved':
        return settle(s, nodeEvent(s, c), evolveService(types));
      case 'SetArchive':
        requireState(s, ['INIT', 'PROLOGUE', 'RUNNING', 'ADAPTING', 'STOPPED', 'ERROR'], 'set the archive');
        return s.archive?.version === c.data.version ? [] : [ev('ArchiveSet', c.data)];
      case 'MoveNode': {
        const n = nodeOf(s, c.data.nodeId);
        const same = n.address === c.data.address && sameJson(n.ports, c.data.ports);
        return same || n.state === 'removed' ? [] : [ev('NodeMoved', c.data)];
      }
      case 'SetEndpoint':
        return sameJson(s.endpoints[c.data.name], c.data.endpoint) ? [] : [ev('EndpointSet', c.data)];
      case 'SetLinks':
        return sameJson(s.links, c.data.links) ? [] : [ev('LinksSet', { links: c.data.links })];
      case 'RecordPluginEvent':
        return [ev('PluginEventRecorded', pluginEvent(types, s, c.data))];
      default: {
        const unknown: never = c;
        throw new CpsError('validation', `unknown command ${JSON.stringify(unknown)}`);
      }
    }
  },
});
