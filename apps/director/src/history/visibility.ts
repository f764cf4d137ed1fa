import { tryParseAggregateId } from '@cps/core';
import type { RecordedEvent } from '@cps/events';
import type { Principal } from '../api/request.js';
import type { Directory } from '../core/directory.js';

/** Where an event belongs: its application and service, and the users who own it. */
export interface Place {
  readonly appId?: string;
  readonly serviceId?: string;
  /** Users who may read it (admins read everything). */
  readonly owners: readonly string[];
  /** False while the thing it belongs to is not known yet (the read model may lag the stream). */
  readonly known: boolean;
}

type Directoryish = Pick<Directory, 'apps' | 'operations' | 'nodes'>;

const LEARNED_MAX = 10_000;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * Who owns what an event is about, from the read model and from the creation events met while
 * reading (an `ApplicationCreated`, `OperationRequested` or `NodeRecorded` the read model may
 * not show yet). Ownership: `user.<id>` is that user's; `app.<appId>` and `svc.<appId>.*` are
 * the application owner's; `op.<id>` is its requester's and its application owner's;
 * `node.<id>` is its application owner's; anything else (`identity.*`, `name.*`, ...) is the
 * admins' alone.
 */
export class Ownership {
  private readonly apps = new Map<string, string>();
  private readonly ops = new Map<string, { owner?: string; appId?: string; serviceId?: string }>();
  private readonly nodes = new Map<string, { appId?: string; serviceId?: string }>();

  constructor(private readonly directory: Directoryish) {}

  /** Notes what a creation event tells about ownership (call it for every event read). */
  learn(e: RecordedEvent): void {
    const d = (e.data ?? {}) as Record<string, unknown>;
    const a = tryParseAggregateId(e.aggregate);
    if (a?.type === 'app' && e.type === 'ApplicationCreated') {
      const owner = str(d['owner']);
      if (owner) remember(this.apps, a.appId, owner);
    } else if (a?.type === 'op' && e.type === 'OperationRequested') {
      remember(this.ops, a.operationId, {
        ...optional('owner', str(d['owner'])),
        ...optional('appId', str(d['appId'])),
        ...optional('serviceId', str(d['serviceId'])),
      });
    } else if (a?.type === 'node' && e.type === 'NodeRecorded') {
      remember(this.nodes, a.nodeId, {
        ...optional('appId', str(d['appId'])),
        ...optional('serviceId', str(d['serviceId'])),
      });
    }
  }

  /** The owner of an application (deleted ones included), if known. */
  appOwner(appId: string | undefined): string | undefined {
    if (appId === undefined) return undefined;
    return this.directory.apps.get(appId)?.owner ?? this.apps.get(appId);
  }

  place(e: RecordedEvent): Place {
    const a = tryParseAggregateId(e.aggregate);
    const d = (e.data ?? {}) as Record<string, unknown>;
    switch (a?.type) {
      case 'user':
        return { owners: [a.userId], known: true };
      case 'app':
        return this.ofApp(a.appId, str(d['serviceId']));
      case 'svc':
        return this.ofApp(a.appId, a.serviceId);
      case 'op': {
        const v = this.directory.operations.get(a.operationId);
        const op = v
          ? { owner: v.owner, appId: v.appId, serviceId: v.serviceId }
          : this.ops.get(a.operationId);
        if (!op) return { owners: [], known: false };
        const appOwner = this.appOwner(op.appId);
        return {
          ...optional('appId', op.appId),
          ...optional('serviceId', op.serviceId),
          owners: [op.owner, appOwner].filter((o): o is string => o !== undefined),
          known: op.appId === undefined || appOwner !== undefined,
        };
      }
      case 'node': {
        const v = this.directory.nodes.get(a.nodeId) ?? this.nodes.get(a.nodeId);
        if (!v) return { owners: [], known: false };
        return this.ofApp(v.appId, v.serviceId);
      }
      default:
        return { owners: [], known: true };
    }
  }

  private ofApp(appId: string | undefined, serviceId: string | undefined): Place {
    const owner = this.appOwner(appId);
    return {
      ...optional('appId', appId),
      ...optional('serviceId', serviceId),
      owners: owner === undefined ? [] : [owner],
      known: owner !== undefined,
    };
  }
}

/** True when `p` may read an event in `place`. */
export const mayRead = (p: Principal, place: Place): boolean =>
  p.role === 'admin' || place.owners.includes(p.userId);

const optional = <K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [k in K]?: V };

const remember = <V>(map: Map<string, V>, key: string, value: V): void => {
  if (map.size >= LEARNED_MAX) map.clear();
  map.set(key, value);
};
