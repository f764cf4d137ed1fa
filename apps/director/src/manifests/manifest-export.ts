import type { z } from 'zod';
import { mapSecrets, type ServiceRegistry, type VolumeMount } from '@cps/services';
import type { ApplicationView, ServiceView } from '../core/directory.js';
import { SECRET_REFERENCE } from './manifest-check.js';
import type { ManifestSchema } from './manifests.schemas.js';

/** Node states that count as a node of the service (those on their way out or failed do not). */
const LIVE = new Set(['requested', 'starting', 'running']);

/** Live nodes per role, from the read model. */
export const nodeCounts = (s: Pick<ServiceView, 'nodes'>): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const n of Object.values(s.nodes)) {
    const role = n['role'];
    if (role !== undefined && LIVE.has(n['state'] ?? '')) counts[role] = (counts[role] ?? 0) + 1;
  }
  return counts;
};

/**
 * The manifest that deploys an application again: its name and description, then its services
 * in order, each with its type, cloud, `Start: 1` when RUNNING, its live nodes per role, and its
 * settings and type-specific keys with every secret field replaced by `secret:<serviceId>/<field>`
 * (a deploy refuses such a reference until the value is put back), and its links by service name. Code archives are not exported: cps has no download URL
 * for them yet. A service whose type is no longer registered is exported without settings.
 */
/** Settings equal to the type's defaults are left out of an export (they deploy the same). */
const isDefault = (registry: ServiceRegistry, type: string, config: object): boolean => {
  const defaults = registry.get(type).configSchema.safeParse({});
  return defaults.success && JSON.stringify(defaults.data) === JSON.stringify(config);
};

export const exportManifest = (
  app: ApplicationView,
  services: readonly {
    readonly view: ServiceView;
    readonly config: unknown;
    /** Link name -> service id, as the service was added with. */
    readonly links?: Readonly<Record<string, string>> | undefined;
    readonly manifest?: Readonly<Record<string, unknown>> | undefined;
    /** The volumes its nodes mount, by link name. */
    readonly volumes?: readonly VolumeMount[] | undefined;
  }[],
  registry: ServiceRegistry,
): z.input<typeof ManifestSchema> => ({
  Application: app.name,
  Description: app.description,
  Services: services.map(({ view: s, config, links, manifest, volumes }) => {
    const names = new Map(services.map((x) => [x.view.serviceId, x.view.name]));
    const linked = Object.fromEntries(
      Object.entries(links ?? {}).flatMap(([link, id]) => (names.has(id) ? [[link, names.get(id)!]] : [])),
    );
    const keys =
      registry.has(s.type) && manifest && Object.keys(manifest).length > 0
        ? (mapSecrets(
            registry.get(s.type).manifestKeys,
            manifest,
            (_, path) => `${SECRET_REFERENCE}${s.serviceId}/${path.replace(/^\$\.?/, '')}`,
          ) as Record<string, unknown>)
        : {};
    const instances = nodeCounts(s);
    const settings =
      registry.has(s.type) && config && typeof config === 'object' && !isDefault(registry, s.type, config)
        ? (mapSecrets(
            registry.get(s.type).configSchema,
            config,
            (_, path) => `${SECRET_REFERENCE}${s.serviceId}/${path.replace(/^\$\.?/, '')}`,
          ) as Record<string, unknown>)
        : undefined;
    return {
      ServiceName: s.name,
      Type: s.type,
      Cloud: s.cloud,
      Start: s.state === 'RUNNING' ? 1 : 0,
      ...(Object.keys(instances).length > 0 ? { StartupInstances: instances } : {}),
      ...(settings ? { Config: settings } : {}),
      ...(Object.keys(linked).length > 0 ? { Links: linked } : {}),
      ...keys,
      ...(volumes && volumes.length > 0
        ? {
            Volumes: volumes.map((v) => ({
              Storage: linked[v.link] ?? v.link,
              Volume: v.volume,
              Mount: v.mount,
            })),
          }
        : {}),
    };
  }),
});
