import { z } from 'zod';
import { CpsError, issuesFromZod, type Issue } from '@cps/core';
import { mapSecrets, redact, strictSettings, type ServiceRegistry } from '@cps/services';
import { parse as parseYaml } from 'yaml';
import { MountPathSchema } from '@cps/bus';
import { NameSchema } from '../api/schemas.js';
import { linkNameOf, mountsOverlap } from '../services/volume-links.js';
import { tooDeep } from '../api/json-depth.js';
import {
  COMMON_SERVICE_KEYS,
  MAX_MANIFEST_BYTES,
  ManifestEnvelopeSchema,
  type ManifestServiceSchema,
  serviceEntrySchema,
} from './manifests.schemas.js';

/** One service of a checked manifest, as the deploy operation carries it out. */
export interface PlannedService {
  /** Its position in the manifest (`$.Services[index]`). */
  readonly index: number;
  readonly name: string;
  readonly type: string;
  readonly cloud: string;
  readonly start: boolean;
  readonly archive?: string;
  /** Nodes per role once started. */
  readonly instances?: Readonly<Record<string, number>>;
  /** The settings, parsed by the type's `configSchema` (defaults filled in). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Link name -> the name of another service of the manifest (added before this one). */
  readonly links: Readonly<Record<string, string>>;
  /** The type-specific keys the service's plugin acts on (its `manifestKeys`, parsed; not `Archive`). */
  readonly manifest: Readonly<Record<string, unknown>>;
  /** Keys the manifest gave that cps does not act on yet (`StartupScript`). */
  readonly pending: readonly string[];
  /** The volumes of storage services of the manifest (by name) its nodes mount. */
  readonly volumes: readonly { storage: string; volume: string; mount: string }[];
}

/**
 * `Volumes` of a service whose type does not make volumes: the volumes it mounts, each of a storage
 * service of the manifest (`Storage`, its ServiceName), at `Mount` in its nodes' work directory.
 */
const MountsSchema = z
  .array(
    z.strictObject({
      Storage: NameSchema,
      Volume: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a volume name: [a-z0-9][a-z0-9_-]*'),
      Mount: MountPathSchema,
    }),
  )
  .max(16);

/** A manifest that passed every check. */
export interface DeployPlan {
  readonly application: string;
  readonly description: string;
  /** In an order where each service comes after those it links (the manifest's, where it allows). */
  readonly services: readonly PlannedService[];
}

/** What the checks know of the platform. */
export interface CheckContext {
  readonly registry: ServiceRegistry;
  /** Cloud names; the first is the default. */
  readonly clouds: readonly string[];
}

/** The prefix of an exported secret: `secret:<serviceId>/<field>` (a reference, never the value). */
export const SECRET_REFERENCE = 'secret:';

const at = (issues: readonly Issue[], prefix: string): Issue[] =>
  issues.map((i) => ({ ...i, path: i.path.replace(/^\$/, prefix) }));

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const tooLarge = (bytes: number): CpsError =>
  new CpsError('payload_too_large', `the manifest is ${bytes} bytes; at most ${MAX_MANIFEST_BYTES}`, [
    { path: '$', code: 'too_large', message: `over ${MAX_MANIFEST_BYTES} bytes` },
  ]);

/**
 * The manifest a request body carries: the body itself (JSON), or the YAML text of `{"yaml": ...}`
 * parsed (YAML 1.2 core schema, unique keys, few aliases). A YAML syntax error is an issue at
 * `$.yaml`, a YAML manifest nested deeper than a JSON body may be (`MAX_JSON_DEPTH`) one at the
 * first level too deep; a manifest over {@link MAX_MANIFEST_BYTES} throws `payload_too_large`.
 */
export const readManifest = (body: unknown): { input: unknown; issues: Issue[] } => {
  if (isRecord(body) && Object.keys(body).length === 1 && 'yaml' in body) {
    const text = body['yaml'];
    if (typeof text !== 'string')
      return { input: undefined, issues: [{ path: '$.yaml', code: 'invalid_type', message: 'YAML text' }] };
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_MANIFEST_BYTES) throw tooLarge(bytes);
    let input: unknown;
    try {
      input = parseYaml(text, { uniqueKeys: true, maxAliasCount: 20 }) as unknown;
    } catch (e) {
      const message = (e instanceof Error ? e.message : String(e)).split('\n', 1)[0] ?? 'invalid YAML';
      return { input: undefined, issues: [{ path: '$.yaml', code: 'invalid_yaml', message }] };
    }
    const deep = tooDeep(input);
    return deep ? { input: undefined, issues: [deep] } : { input, issues: [] };
  }
  const bytes = Buffer.byteLength(JSON.stringify(body) ?? '');
  if (bytes > MAX_MANIFEST_BYTES) throw tooLarge(bytes);
  return { input: body, issues: [] };
};

/** The application name of a manifest: `Application`, else one made of `Description`, else `application`. */
export const applicationName = (m: {
  Application?: string | undefined;
  Description?: string | undefined;
}) => {
  if (m.Application !== undefined) return m.Application;
  const derived = (m.Description ?? '')
    .replace(/[^A-Za-z0-9 ._-]+/g, ' ')
    .replace(/\s+/g, ' ')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64)
    .trimEnd();
  return NameSchema.safeParse(derived).success ? derived : 'application';
};

/**
 * Checks a manifest against the platform: its structure (every service entry on its own, unknown
 * keys named), then each service's type, its type-specific keys (`manifestKeys`), its roles and
 * fixed role counts, its settings (`configSchema`), its cloud, and the uniqueness of names. Answers
 * every issue with its JSON path, and the plan when there is none. Pure: reads nothing else.
 */
export const manifestChecker = (c: CheckContext) => {
  const declared = c.registry.types().flatMap((t) => Object.keys(c.registry.get(t).manifestKeys.shape));
  const entrySchema = serviceEntrySchema(declared);

  return (input: unknown): { plan?: DeployPlan; issues: Issue[] } => {
    const issues: Issue[] = [];
    const top = ManifestEnvelopeSchema.safeParse(input);
    if (!top.success) issues.push(...issuesFromZod(top.error));
    const raw = isRecord(input) && Array.isArray(input['Services']) ? (input['Services'] as unknown[]) : [];

    const planned: (Omit<PlannedService, 'name'> & { name?: string })[] = [];
    const names = new Map<string, number>();
    raw.forEach((entry, i) => {
      const where = `$.Services[${i}]`;
      const r = entrySchema.safeParse(entry);
      const unknownType = (type: string) =>
        issues.push({
          path: `${where}.Type`,
          code: 'unknown_service_type',
          message: `${type} is not a service type here; types: ${c.registry.types().join(', ')}`,
        });
      if (!r.success) {
        issues.push(...at(issuesFromZod(r.error), where));
        // the type is still worth a word when the rest of the entry is off
        const type = isRecord(entry) ? entry['Type'] : undefined;
        if (typeof type === 'string' && type.length > 0 && !c.registry.has(type)) unknownType(type);
        return;
      }
      const s = r.data as z.output<typeof ManifestServiceSchema> & Record<string, unknown>;
      if (s.ServiceName !== undefined) {
        const first = names.get(s.ServiceName);
        if (first !== undefined)
          issues.push({
            path: `${where}.ServiceName`,
            code: 'duplicate_service_name',
            message: `${s.ServiceName} also names $.Services[${first}]`,
          });
        else names.set(s.ServiceName, i);
      }
      if (s.Cloud !== undefined && s.Cloud !== 'default' && !c.clouds.includes(s.Cloud))
        issues.push({
          path: `${where}.Cloud`,
          code: 'unknown_cloud',
          message: `clouds: ${c.clouds.join(', ')}`,
        });
      if (!c.registry.has(s.Type)) {
        unknownType(s.Type);
        return;
      }
      const def = c.registry.get(s.Type);
      const own = Object.keys(def.manifestKeys.shape);
      // `Volumes` of a type that makes none: the volumes it mounts
      const mounts =
        !own.includes('Volumes') && s['Volumes'] !== undefined
          ? MountsSchema.safeParse(s['Volumes'])
          : undefined;
      if (mounts && !mounts.success) issues.push(...at(issuesFromZod(mounts.error), `${where}.Volumes`));
      const given = Object.keys(s).filter(
        (k) => !COMMON_SERVICE_KEYS.has(k) && s[k] !== undefined && !(k === 'Volumes' && mounts),
      );
      for (const k of given.filter((k) => !own.includes(k)))
        issues.push({
          path: `${where}.${k}`,
          code: 'not_for_type',
          message: `type ${s.Type} takes ${own.length > 0 ? own.join(', ') : 'no type-specific keys'}`,
        });
      const typeKeys = Object.fromEntries(given.filter((k) => own.includes(k)).map((k) => [k, s[k]]));
      const keys = def.manifestKeys.safeParse(typeKeys);
      if (!keys.success) issues.push(...at(issuesFromZod(keys.error), where));
      const instances: Record<string, number> = {};
      for (const [role, count] of Object.entries(s.StartupInstances ?? {})) {
        const n = Number(count);
        instances[role] = n;
        const fixed = (def.fixedRoles as Record<string, number> | undefined)?.[role];
        if (!def.roles.includes(role))
          issues.push({
            path: `${where}.StartupInstances.${role}`,
            code: 'unknown_role',
            message: `roles of ${s.Type}: ${def.roles.join(', ')}`,
          });
        else if (fixed !== undefined && n !== fixed)
          issues.push({
            path: `${where}.StartupInstances.${role}`,
            code: 'fixed_role_count',
            message: `${s.Type} runs exactly ${fixed} ${role}`,
          });
      }
      const config = strictSettings(def.configSchema).safeParse(s.Config ?? {});
      if (!config.success) issues.push(...at(issuesFromZod(config.error), `${where}.Config`));
      const reference = (prefix: string) => (v: unknown, path: string) => {
        if (typeof v === 'string' && v.startsWith(SECRET_REFERENCE))
          issues.push({
            path: path.replace(/^\$/, prefix),
            code: 'unresolved_secret',
            message: 'a reference from an exported manifest: put the secret itself here',
          });
        return v;
      };
      mapSecrets(def.configSchema, s.Config ?? {}, reference(`${where}.Config`));
      mapSecrets(def.manifestKeys, typeKeys, reference(where));
      planned.push({
        index: i,
        ...(s.ServiceName !== undefined ? { name: s.ServiceName } : {}),
        type: s.Type,
        cloud: s.Cloud === undefined || s.Cloud === 'default' ? (c.clouds[0] ?? 'local') : s.Cloud,
        start: s.Start === true || s.Start === 1,
        ...(typeof s['Archive'] === 'string' ? { archive: s['Archive'] } : {}),
        ...(s.StartupInstances ? { instances } : {}),
        config: config.success ? (config.data as Record<string, unknown>) : {},
        links: s.Links ?? {},
        manifest: keys.success
          ? Object.fromEntries(
              Object.entries(keys.data).filter(([k, v]) => k !== 'Archive' && v !== undefined),
            )
          : {},
        pending: s.StartupScript !== undefined ? ['StartupScript'] : [],
        volumes: mounts?.success
          ? mounts.data.map((v) => ({ storage: v.Storage, volume: v.Volume, mount: v.Mount }))
          : [],
      });
    });
    if (issues.length > 0 || !top.success) return { issues };

    // unnamed services take their type's name, made unique: `generic`, `generic-2`, ...
    const taken = new Set(names.keys());
    const services = planned.map((p): PlannedService => {
      if (p.name !== undefined) return { ...p, name: p.name };
      const base = p.type.slice(0, 60);
      let name = base;
      for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
      taken.add(name);
      return { ...p, name };
    });
    const linked = services.map((p) => withVolumeLinks(p, services, c.registry, issues));
    if (issues.length > 0) return { issues };
    const ordered = linkOrder(linked, issues);
    if (!ordered) return { issues };
    return {
      issues,
      plan: {
        application: applicationName(top.data),
        description: top.data.Description ?? '',
        services: ordered,
      },
    };
  };
};

/**
 * A service with the links its volumes need (to each volume's storage service, unless it links it
 * already), after checking each volume: its `Storage` a service of the manifest of a type that makes
 * volumes, its `Volume` one that service's entry makes, and no two mount points the same or one
 * inside another.
 */
const withVolumeLinks = (
  p: PlannedService,
  services: readonly PlannedService[],
  registry: ServiceRegistry,
  issues: Issue[],
): PlannedService => {
  if (p.volumes.length === 0) return p;
  const links: Record<string, string> = { ...p.links };
  p.volumes.forEach((v, j) => {
    const where = `$.Services[${p.index}].Volumes[${j}]`;
    const storage = services.find((x) => x.name === v.storage);
    const volumes = storage && registry.has(storage.type) ? registry.get(storage.type).volumes : undefined;
    if (!storage)
      issues.push({
        path: `${where}.Storage`,
        code: 'unknown_service',
        message: `no service of this manifest is named ${v.storage}`,
      });
    else if (!volumes)
      issues.push({
        path: `${where}.Storage`,
        code: 'not_storage',
        message: `${v.storage} is a ${storage.type} service: volumes come from a storage service`,
      });
    else if (!volumes.declared(storage.manifest).includes(v.volume))
      issues.push({
        path: `${where}.Volume`,
        code: 'unknown_volume',
        message: `${v.storage} makes no volume ${v.volume}; it makes: ${volumes.declared(storage.manifest).join(', ') || 'none (give it Volumes)'}`,
      });
    else if (!Object.values(links).includes(v.storage)) links[linkNameOf(v.storage, links)] = v.storage;
    const clash = p.volumes.findIndex((w, k) => k < j && mountsOverlap(w.mount, v.mount));
    if (clash >= 0)
      issues.push({
        path: `${where}.Mount`,
        code: 'overlapping_mount',
        message: `${v.mount} and Volumes[${clash}].Mount: one mount point each, none inside another`,
      });
  });
  return { ...p, links };
};

/**
 * The services in an order where each comes after the services it links (the manifest's order where
 * it allows), or undefined with the issues: a link to a name no service has, to itself, or one that
 * closes a cycle, each at its path.
 */
const linkOrder = (services: readonly PlannedService[], issues: Issue[]): PlannedService[] | undefined => {
  const byName = new Map(services.map((s) => [s.name, s]));
  for (const s of services)
    for (const [link, target] of Object.entries(s.links))
      if (!byName.has(target))
        issues.push({
          path: `$.Services[${s.index}].Links.${link}`,
          code: 'unknown_service',
          message: `no service of this manifest is named ${target}; names: ${[...byName.keys()].join(', ')}`,
        });
  if (issues.length > 0) return undefined;
  const ordered: PlannedService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: PlannedService, via: { link: string; from: PlannedService } | undefined): boolean => {
    const seen = state.get(s.name);
    if (seen === 'done') return true;
    if (seen === 'visiting') {
      if (via)
        issues.push({
          path: `$.Services[${via.from.index}].Links.${via.link}`,
          code: 'link_cycle',
          message: `${via.from.name} -> ${s.name} closes a cycle of links`,
        });
      return false;
    }
    state.set(s.name, 'visiting');
    let ok = true;
    for (const [link, target] of Object.entries(s.links))
      ok = visit(byName.get(target) as PlannedService, { link, from: s }) && ok;
    state.set(s.name, 'done');
    ordered.push(s);
    return ok;
  };
  let ok = true;
  for (const s of services) ok = visit(s, undefined) && ok;
  return ok ? ordered : undefined;
};

/** A plan as the operation records it: settings with their secret fields redacted. */
export const redactPlan = (plan: DeployPlan, registry: ServiceRegistry): DeployPlan => ({
  ...plan,
  services: plan.services.map((s) => ({
    ...s,
    config: redact(registry.get(s.type).configSchema, s.config) as Record<string, unknown>,
    manifest: redact(registry.get(s.type).manifestKeys, s.manifest) as Record<string, unknown>,
  })),
});
