import { useQuery } from '@tanstack/react-query';
import { unwrap, type components, type CpsClient } from '@cps/sdk';
import { useApi } from './session.js';

/*
 * The answers the pages share, by query key. The first element of each key is what live.tsx
 * refreshes when an event comes: `apps`, `app`, `service`, `nodes`, `operation`, `me`, `users`.
 */

export type Application = components['schemas']['Application'];
export type Service = components['schemas']['Service'];
export type Node = components['schemas']['Node'];
export type ServiceType = components['schemas']['ServiceType'];

/** Every application the user may see (the director pages them 500 at a time). */
export const allApplications = async (api: CpsClient): Promise<Application[]> => {
  const all: Application[] = [];
  for (let after: string | undefined; ;) {
    const page = await unwrap(
      api.GET('/v1/applications', { params: { query: { limit: 500, ...(after ? { after } : {}) } } }),
    );
    all.push(...page.applications);
    if (!page.nextCursor) return all;
    after = page.nextCursor;
  }
};

export const useApplications = () => {
  const api = useApi();
  return useQuery({ queryKey: ['apps'], queryFn: () => allApplications(api) });
};

export const useApplication = (app: string) => {
  const api = useApi();
  return useQuery({
    queryKey: ['app', app],
    queryFn: () => unwrap(api.GET('/v1/applications/{app}', { params: { path: { app } } })),
  });
};

export const useService = (app: string, svc: string) => {
  const api = useApi();
  return useQuery({
    queryKey: ['service', app, svc],
    queryFn: () =>
      unwrap(api.GET('/v1/applications/{app}/services/{svc}', { params: { path: { app, svc } } })),
  });
};

export const useNodes = (app: string, svc: string) => {
  const api = useApi();
  return useQuery({
    queryKey: ['nodes', app, svc],
    queryFn: async () =>
      (
        await unwrap(
          api.GET('/v1/applications/{app}/services/{svc}/nodes', { params: { path: { app, svc } } }),
        )
      ).nodes,
  });
};

export const useServiceTypes = () => {
  const api = useApi();
  return useQuery({
    queryKey: ['types'],
    queryFn: async () => (await unwrap(api.GET('/v1/service-types'))).serviceTypes,
  });
};

export const useClouds = () => {
  const api = useApi();
  return useQuery({
    queryKey: ['clouds'],
    queryFn: async () => (await unwrap(api.GET('/v1/clouds'))).clouds,
  });
};

export const useMe = () => {
  const api = useApi();
  return useQuery({ queryKey: ['me'], queryFn: () => unwrap(api.GET('/v1/me')) });
};

export const useOperation = (id: string | undefined) => {
  const api = useApi();
  return useQuery({
    queryKey: ['operation', id],
    enabled: id !== undefined,
    queryFn: () => unwrap(api.GET('/v1/operations/{id}', { params: { path: { id: id ?? '' } } })),
  });
};
