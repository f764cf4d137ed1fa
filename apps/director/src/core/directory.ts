import { tryParseAggregateId } from '@cps/core';
import type { Projection, RecordedEvent, SnapshottableProjection } from '@cps/events';
import { linksAtCreation, type Endpoint, type LinkView } from '@cps/services';

/**
 * The director's read model, rebuilt from the whole event stream at start and kept live: users and
 * their tokens, applications and their services (with each service's state from its manager's
 * events), operations, and nodes. Every read of the API is answered from here; nothing in it is a
 * secret (token and password hashes stay in the user aggregates).
 */

export interface UserView {
  readonly userId: string;
  readonly username: string;
  readonly role: 'admin' | 'user';
  credit: number;
  readonly createdAt: string;
}

export interface TokenView {
  readonly tokenId: string;
  readonly userId: string;
  readonly kind: 'session' | 'api';
  readonly name: string;
  readonly hash: string;
  readonly scopes: readonly ('read' | 'write' | 'admin')[];
  readonly createdAt: string;
  readonly expiresAt: string;
  revoked: boolean;
}

export interface ServiceView {
  readonly serviceId: string;
  readonly appId: string;
  name: string;
  readonly type: string;
  readonly cloud: string;
  state: string;
  archive?: { version: string; size: number; digest: string };
  /** Active nodes per role, from the service's events. */
  nodes: Record<string, Record<string, string>>;
  removed: boolean;
  /** Its endpoints by name (absent in read models saved before they were kept). */
  endpoints?: Record<string, Endpoint>;
  /** The services it links, by link name, as its manager last recorded them. */
  links?: Record<string, LinkView>;
}

/** A service's agent nodes counted per role. */
export const nodesPerRole = (s: Pick<ServiceView, 'nodes'>): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const n of Object.values(s.nodes)) counts[n['role'] ?? ''] = (counts[n['role'] ?? ''] ?? 0) + 1;
  return counts;
};

export interface ApplicationView {
  readonly appId: string;
  readonly owner: string;
  name: string;
  description: string;
  readonly createdAt: string;
  /** In the order they were added. */
  serviceIds: string[];
  deleted: boolean;
}

export interface OperationView {
  readonly operationId: string;
  readonly kind: string;
  state: 'running' | 'succeeded' | 'failed';
  readonly appId?: string;
  readonly serviceId?: string;
  readonly owner?: string;
  readonly startedAt: string;
  finishedAt?: string;
  reason?: string;
  /** Progress steps of a director operation. */
  readonly steps: string[];
}

export interface NodeView {
  readonly nodeId: string;
  readonly kind: 'manager' | 'agent';
  readonly appId: string;
  readonly serviceId: string;
  readonly role?: string;
  readonly cloud: string;
  status: string;
  readonly since: string;
  until?: string;
}

/**
 * The shape of the read model's snapshot. Bump it whenever a view or an index changes: a snapshot
 * of another version is ignored, and the read model is rebuilt from the whole stream.
 */
export const DIRECTORY_SNAPSHOT_VERSION = 1;

/** Every map of the read model, in one plain value (see `Directory.snapshot`). */
const MAPS = [
  'users',
  'usernames',
  'tokens',
  'apps',
  'services',
  'operations',
  'nodes',
  'certificates',
  'appNames',
  'managerNodes',
] as const;

export type DirectorySnapshot = Record<(typeof MAPS)[number], [string, unknown][]> & {
  readonly byOwner: [string, string[]][];
  readonly applied: number;
};

export class Directory implements Projection, SnapshottableProjection<DirectorySnapshot> {
  readonly name = 'directory';
  readonly snapshotVersion = DIRECTORY_SNAPSHOT_VERSION;
  readonly users = new Map<string, UserView>();
  readonly usernames = new Map<string, string>();
  readonly tokens = new Map<string, TokenView>();
  readonly apps = new Map<string, ApplicationView>();
  readonly services = new Map<string, ServiceView>();
  readonly operations = new Map<string, OperationView>();
  readonly nodes = new Map<string, NodeView>();
  /** Certificates by serial: owner and state (the PEM itself is the user's). */
  readonly certificates = new Map<
    string,
    { userId: string; subject: string; expiresAt: string; revoked: boolean; createdAt: string }
  >();
  private readonly appNames = new Map<string, string>();
  /** Application ids per owner, and the live manager node per service: the API's frequent questions. */
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly managerNodes = new Map<string, string>();
  applied = 0;

  /** Its whole state as a plain value (copy it, e.g. into JSON, before the next event). */
  snapshot(): DirectorySnapshot {
    const maps = Object.fromEntries(MAPS.map((k) => [k, [...(this[k] as Map<string, unknown>)]]));
    return {
      ...(maps as Record<(typeof MAPS)[number], [string, unknown][]>),
      byOwner: [...this.byOwner].map(([owner, ids]) => [owner, [...ids]]),
      applied: this.applied,
    };
  }

  /** Replaces its whole state with a snapshot's (of `DIRECTORY_SNAPSHOT_VERSION`). */
  restore(s: DirectorySnapshot): void {
    for (const k of MAPS) {
      const m = this[k] as Map<string, unknown>;
      m.clear();
      for (const [key, v] of s[k]) m.set(key, v);
    }
    this.byOwner.clear();
    for (const [owner, ids] of s.byOwner) this.byOwner.set(owner, new Set(ids));
    this.applied = s.applied;
  }

  /** The live applications of `owner` (all owners' when undefined). */
  appsOf(owner: string | undefined): ApplicationView[] {
    const ids = owner === undefined ? this.apps.keys() : (this.byOwner.get(owner) ?? new Set<string>());
    return [...ids].flatMap((id) => {
      const a = this.apps.get(id);
      return a && !a.deleted ? [a] : [];
    });
  }

  /** The manager node of a service while it is recorded or provisioned. */
  managerOf(serviceId: string): NodeView | undefined {
    const id = this.managerNodes.get(serviceId);
    return id ? this.nodes.get(id) : undefined;
  }

  handle(e: RecordedEvent): void {
    this.applied++;
    const a = tryParseAggregateId(e.aggregate);
    switch (a?.type) {
      case 'user':
        return this.user(a.userId, e);
      case 'app':
        return this.app(a.appId, e);
      case 'svc':
        return this.service(a.appId, a.serviceId, e);
      case 'op':
        return this.operation(a.operationId, e);
      case 'node':
        return this.node(a.nodeId, e);
      default:
        return;
    }
  }

  /** An application of `owner` by id or by name (undefined when deleted or someone else's). */
  appOf(owner: string | undefined, ref: string): ApplicationView | undefined {
    const byId = this.apps.get(ref);
    const a =
      byId && !byId.deleted
        ? byId
        : owner
          ? this.apps.get(this.appNames.get(`${owner}\u0000${ref}`) ?? '')
          : undefined;
    if (!a || a.deleted) return undefined;
    return owner === undefined || a.owner === owner ? a : undefined;
  }

  servicesOf(app: ApplicationView): ServiceView[] {
    return app.serviceIds.flatMap((id) => {
      const s = this.services.get(id);
      return s && !s.removed ? [s] : [];
    });
  }

  private user(userId: string, e: RecordedEvent): void {
    const d = e.data as Record<string, unknown>;
    const u = this.users.get(userId);
    switch (e.type) {
      case 'UserRegistered':
        this.users.set(userId, {
          userId,
          username: d['username'] as string,
          role: d['role'] as 'admin' | 'user',
          credit: d['credit'] as number,
          createdAt: e.metadata.at,
        });
        this.usernames.set(d['username'] as string, userId);
        return;
      case 'TokenCreated':
        this.tokens.set(d['tokenId'] as string, {
          tokenId: d['tokenId'] as string,
          userId,
          kind: d['kind'] as 'session' | 'api',
          name: d['name'] as string,
          hash: d['hash'] as string,
          scopes: d['scopes'] as TokenView['scopes'],
          createdAt: e.metadata.at,
          expiresAt: d['expiresAt'] as string,
          revoked: false,
        });
        return;
      case 'TokenRevoked': {
        const t = this.tokens.get(d['tokenId'] as string);
        if (t) t.revoked = true;
        return;
      }
      case 'CertificateIssued':
        this.certificates.set(d['serial'] as string, {
          userId,
          subject: d['subject'] as string,
          expiresAt: d['expiresAt'] as string,
          revoked: false,
          createdAt: e.metadata.at,
        });
        return;
      case 'CertificateRevoked': {
        const c = this.certificates.get(d['serial'] as string);
        if (c) c.revoked = true;
        return;
      }
      case 'CreditGranted':
        if (u) u.credit = Math.max(0, u.credit + (d['amount'] as number));
        return;
      case 'CreditCharged':
        if (u) u.credit = Math.max(0, u.credit - (d['amount'] as number));
        return;
      default:
        return;
    }
  }

  private app(appId: string, e: RecordedEvent): void {
    const d = e.data as Record<string, unknown>;
    const a = this.apps.get(appId);
    switch (e.type) {
      case 'ApplicationCreated': {
        const view: ApplicationView = {
          appId,
          owner: d['owner'] as string,
          name: d['name'] as string,
          description: d['description'] as string,
          createdAt: e.metadata.at,
          serviceIds: [],
          deleted: false,
        };
        this.apps.set(appId, view);
        this.appNames.set(`${view.owner}\u0000${view.name}`, appId);
        const owned = this.byOwner.get(view.owner) ?? new Set<string>();
        this.byOwner.set(view.owner, owned.add(appId));
        return;
      }
      case 'ApplicationRenamed':
        if (!a) return;
        this.appNames.delete(`${a.owner}\u0000${a.name}`);
        a.name = d['name'] as string;
        this.appNames.set(`${a.owner}\u0000${a.name}`, appId);
        return;
      case 'ApplicationDescribed':
        if (a) a.description = d['description'] as string;
        return;
      case 'ServiceAdded': {
        const serviceId = d['serviceId'] as string;
        const existing = this.services.get(serviceId);
        this.services.set(serviceId, {
          serviceId,
          appId,
          name: d['name'] as string,
          type: d['type'] as string,
          cloud: d['cloud'] as string,
          state: existing?.state ?? 'INIT',
          nodes: existing?.nodes ?? {},
          removed: false,
          ...(existing?.archive ? { archive: existing.archive } : {}),
        });
        a?.serviceIds.push(serviceId);
        return;
      }
      case 'ServiceRenamed': {
        const s = this.services.get(d['serviceId'] as string);
        if (s) s.name = d['name'] as string;
        return;
      }
      case 'ServiceRemoved': {
        const s = this.services.get(d['serviceId'] as string);
        if (s) s.removed = true;
        if (a) a.serviceIds = a.serviceIds.filter((x) => x !== d['serviceId']);
        return;
      }
      case 'ApplicationDeleted':
        if (!a) return;
        a.deleted = true;
        this.appNames.delete(`${a.owner}\u0000${a.name}`);
        this.byOwner.get(a.owner)?.delete(appId);
        return;
      default:
        return;
    }
  }

  /** A service's state and nodes, from its manager's events (`svc.<app>.<svc>`). */
  private service(appId: string, serviceId: string, e: RecordedEvent): void {
    let s = this.services.get(serviceId);
    if (!s) {
      // the manager's first events may come before the application's ServiceAdded is read
      s = {
        serviceId,
        appId,
        name: serviceId,
        type: '',
        cloud: '',
        state: 'INIT',
        nodes: {},
        removed: false,
      };
      this.services.set(serviceId, s);
    }
    const d = e.data as Record<string, unknown>;
    const node = d['nodeId'] as string | undefined;
    switch (e.type) {
      case 'ServiceCreated':
        s.links = linksAtCreation(d['links'] as Record<string, string> | undefined);
        return;
      case 'EndpointSet': {
        const endpoints = { ...s.endpoints };
        if (d['endpoint']) endpoints[d['name'] as string] = d['endpoint'] as Endpoint;
        else delete endpoints[d['name'] as string];
        s.endpoints = endpoints;
        return;
      }
      case 'LinksSet':
        s.links = d['links'] as Record<string, LinkView>;
        return;
      case 'ServiceStateChanged':
        s.state = d['to'] as string;
        return;
      case 'ArchiveSet':
        s.archive = {
          version: d['version'] as string,
          size: d['size'] as number,
          digest: d['digest'] as string,
        };
        return;
      case 'NodeRequested':
        s.nodes[node as string] = { role: d['role'] as string, state: 'requested' };
        return;
      case 'NodeStarted':
      case 'NodeReady':
      case 'NodeFailed':
      case 'NodeRemovalRequested':
      case 'NodeRemoved': {
        const n = s.nodes[node as string];
        if (!n) return;
        n['state'] = (
          {
            NodeStarted: 'starting',
            NodeReady: 'running',
            NodeFailed: 'failed',
            NodeRemovalRequested: 'removing',
            NodeRemoved: 'removed',
          } as Record<string, string>
        )[e.type] as string;
        if (n['state'] === 'removed') delete s.nodes[node as string];
        return;
      }
      case 'OperationStarted':
        this.operations.set(d['operationId'] as string, {
          operationId: d['operationId'] as string,
          kind: d['kind'] as string,
          state: 'running',
          appId,
          serviceId,
          startedAt: e.metadata.at,
          steps: [],
        });
        return;
      case 'OperationCompleted':
      case 'OperationFailed': {
        const op = this.operations.get(d['operationId'] as string);
        if (!op) return;
        op.state = e.type === 'OperationCompleted' ? 'succeeded' : 'failed';
        op.finishedAt = e.metadata.at;
        if (d['reason']) op.reason = d['reason'] as string;
        return;
      }
      default:
        return;
    }
  }

  private operation(operationId: string, e: RecordedEvent): void {
    const d = e.data as Record<string, unknown>;
    if (e.type === 'OperationRequested') {
      this.operations.set(operationId, {
        operationId,
        kind: d['kind'] as string,
        state: 'running',
        owner: d['owner'] as string,
        startedAt: e.metadata.at,
        steps: [],
        ...(d['appId'] ? { appId: d['appId'] as string } : {}),
        ...(d['serviceId'] ? { serviceId: d['serviceId'] as string } : {}),
      });
      return;
    }
    const op = this.operations.get(operationId);
    if (!op) return;
    if (e.type === 'OperationProgressed') op.steps.push(d['step'] as string);
    if (e.type === 'OperationSucceeded' || e.type === 'DirectorOperationFailed') {
      op.state = e.type === 'OperationSucceeded' ? 'succeeded' : 'failed';
      op.finishedAt = e.metadata.at;
      if (d['reason']) op.reason = d['reason'] as string;
    }
  }

  private node(nodeId: string, e: RecordedEvent): void {
    const d = e.data as Record<string, unknown>;
    if (e.type === 'NodeRecorded') {
      this.nodes.set(nodeId, {
        nodeId,
        kind: d['kind'] as 'manager' | 'agent',
        appId: d['appId'] as string,
        serviceId: d['serviceId'] as string,
        cloud: d['cloud'] as string,
        status: 'recorded',
        since: e.metadata.at,
        ...(d['role'] ? { role: d['role'] as string } : {}),
      });
      if (d['kind'] === 'manager') this.managerNodes.set(d['serviceId'] as string, nodeId);
      return;
    }
    const n = this.nodes.get(nodeId);
    if (!n) return;
    const status = (
      {
        NodeProvisioned: 'provisioned',
        NodeProvisionFailed: 'failed',
        NodeDestroyRequested: 'destroying',
        NodeDestroyed: 'destroyed',
      } as Record<string, string>
    )[e.type];
    if (!status) return;
    n.status = status;
    if (status === 'provisioned' && n.kind === 'manager') this.managerNodes.set(n.serviceId, nodeId);
    if (status === 'destroyed' || status === 'failed' || status === 'destroying') {
      if (status !== 'destroying') n.until = e.metadata.at;
      if (this.managerNodes.get(n.serviceId) === nodeId) this.managerNodes.delete(n.serviceId);
    }
  }
}
