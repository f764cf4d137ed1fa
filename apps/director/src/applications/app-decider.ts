import {
  ConflictError,
  CpsError,
  NotFoundError,
  ValidationError,
  type Command,
  type Decider,
} from '@cps/core';
import type { VolumeMount } from '@cps/services';
import type { AppEvent } from './app-events.js';

export interface AppService {
  readonly serviceId: string;
  readonly name: string;
  readonly type: string;
  readonly cloud: string;
  readonly config: unknown;
  /** Link name -> a service of this application it links (see the plugin guide's links). */
  readonly links?: Readonly<Record<string, string>>;
  /** The type-specific keys of its manifest entry (secret ones sealed). */
  readonly manifest?: Readonly<Record<string, unknown>>;
  /** The volumes of linked storage services its nodes mount (`link` names one of `links`). */
  readonly volumes?: VolumeMount[];
}

export type AppState =
  | { readonly status: 'NONE' | 'DELETED' }
  | {
      readonly status: 'ACTIVE';
      readonly appId: string;
      readonly owner: string;
      readonly name: string;
      readonly description: string;
      /** In the order they were added (ConPaaS's order is the dependency order). */
      readonly services: readonly AppService[];
    };

type Active = Extract<AppState, { status: 'ACTIVE' }>;

export const MAX_SERVICES = 20;

export type AppCommand =
  | Command<'Create', { appId: string; owner: string; name: string; description: string }>
  | Command<'Update', { name?: string; description?: string }>
  | Command<'AddService', AppService>
  | Command<'RenameService', { serviceId: string; name: string }>
  | Command<'RemoveService', { serviceId: string }>
  | Command<'Delete', Record<string, never>>;

const active = (s: AppState): Active => {
  if (s.status !== 'ACTIVE') throw new NotFoundError('no such application');
  return s;
};

/**
 * A new service links only services this application has: each link named, with its path. (A new
 * service cannot close a cycle: nothing links it yet.)
 */
const checkLinks = (s: Active, svc: AppService): void => {
  const issues = Object.entries(svc.links ?? {}).flatMap(([name, target]) =>
    s.services.some((x) => x.serviceId === target)
      ? []
      : [
          {
            path: `$.links.${name}`,
            code: 'unknown_service',
            message: `no service ${target} in this application`,
          },
        ],
  );
  if (issues.length > 0)
    throw new ValidationError('links to services this application does not have', issues);
};

/** `conflict` when a service of `services` links `serviceId`: it is not removed from under them. */
export const refuseIfLinked = (services: readonly AppService[], serviceId: string): void => {
  const linking = services.filter((x) => Object.values(x.links ?? {}).includes(serviceId));
  const linked = services.find((x) => x.serviceId === serviceId)?.name ?? serviceId;
  if (linking.length > 0)
    throw new ConflictError(
      `${linking.map((x) => x.name).join(', ')} link${linking.length === 1 ? 's' : ''} ${linked}: remove ${linking.length === 1 ? 'it' : 'them'} first`,
    );
};

const nameTaken = (what: string): CpsError =>
  new CpsError('name_taken', `${what} is taken`, [
    { path: '$.name', code: 'name_taken', message: `${what} is taken` },
  ]);

export const evolveApp = (s: AppState, e: AppEvent): AppState => {
  if (e.type === 'ApplicationCreated') return { status: 'ACTIVE', ...e.data, services: [] };
  if (s.status !== 'ACTIVE') return s;
  switch (e.type) {
    case 'ApplicationRenamed':
      return { ...s, name: e.data.name };
    case 'ApplicationDescribed':
      return { ...s, description: e.data.description };
    case 'ServiceAdded':
      return { ...s, services: [...s.services, e.data] };
    case 'ServiceRenamed':
      return {
        ...s,
        services: s.services.map((x) => (x.serviceId === e.data.serviceId ? { ...x, name: e.data.name } : x)),
      };
    case 'ServiceRemoved':
      return { ...s, services: s.services.filter((x) => x.serviceId !== e.data.serviceId) };
    case 'ApplicationDeleted':
      return { status: 'DELETED' };
  }
};

/** An application: its owner, name and services (their running state is each manager's). */
export const appDecider: Decider<AppCommand, AppEvent, AppState> = {
  initialState: () => ({ status: 'NONE' }),
  evolve: evolveApp,
  decide: (c, state) => {
    if (c.type === 'Create') {
      if (state.status !== 'NONE') throw new ConflictError('application id in use');
      return [{ type: 'ApplicationCreated', data: c.data }];
    }
    const s = active(state);
    switch (c.type) {
      case 'Update': {
        const out: AppEvent[] = [];
        if (c.data.name !== undefined && c.data.name !== s.name)
          out.push({ type: 'ApplicationRenamed', data: { name: c.data.name } });
        if (c.data.description !== undefined && c.data.description !== s.description)
          out.push({ type: 'ApplicationDescribed', data: { description: c.data.description } });
        return out;
      }
      case 'AddService':
        if (s.services.some((x) => x.serviceId === c.data.serviceId)) return [];
        if (s.services.some((x) => x.name === c.data.name)) throw nameTaken(`service name ${c.data.name}`);
        if (s.services.length >= MAX_SERVICES)
          throw new CpsError('quota_exceeded', `at most ${MAX_SERVICES} services per application`);
        checkLinks(s, c.data);
        return [{ type: 'ServiceAdded', data: c.data }];
      case 'RenameService': {
        const svc = s.services.find((x) => x.serviceId === c.data.serviceId);
        if (!svc) throw new NotFoundError(`no service ${c.data.serviceId}`);
        if (svc.name === c.data.name) return [];
        if (s.services.some((x) => x.name === c.data.name)) throw nameTaken(`service name ${c.data.name}`);
        return [{ type: 'ServiceRenamed', data: c.data }];
      }
      case 'RemoveService': {
        if (!s.services.some((x) => x.serviceId === c.data.serviceId))
          throw new NotFoundError(`no service ${c.data.serviceId}`);
        refuseIfLinked(s.services, c.data.serviceId);
        return [{ type: 'ServiceRemoved', data: c.data }];
      }
      case 'Delete':
        return [{ type: 'ApplicationDeleted', data: {} }];
      default: {
        const unknown: never = c;
        throw new CpsError('validation', `unknown command ${JSON.stringify(unknown)}`);
      }
    }
  },
};
