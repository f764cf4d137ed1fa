import { aggregateIds, CpsError, isCpsError, ValidationError, type Issue } from '@cps/core';
import { fetchArchive } from '@cps/archives';
import type { ServiceRegistry } from '@cps/services';
import type { Principal } from '../api/request.js';
import type { Applications } from '../applications/applications.js';
import type { Actor, DirectorCore } from '../core/director-core.js';
import { REDACTED } from '../history/redact.js';
import { defineOperation, type RunningOperation } from '../operations/operation.js';
import { operationIdOf, type Operations } from '../operations/operations.js';
import type { WaitOptions } from '../operations/wait.js';
import type { ServiceOperations } from '../services/service-operations.js';
import { serviceIdOf, type Services } from '../services/services.js';
import {
  manifestChecker,
  readManifest,
  redactPlan,
  type DeployPlan,
  type PlannedService,
} from './manifest-check.js';
import { exportManifest, nodeCounts } from './manifest-export.js';

/**
 * An `Archive` the client uploads itself (`cps deploy` does so for local files and directories):
 * the deploy waits, before starting anything, until the service has it.
 */
export const UPLOAD_ARCHIVE = 'upload:';

/** The request id with which a deploy adds service `s` (so a resumed deploy adds it once). */
const addRequestId = (operationId: string, s: PlannedService): string => `${operationId}:add:${s.index}`;

/** The operation kind of a deploy (aggregate `op.<operationId>`). */
export const DEPLOY_MANIFEST = 'deploy_manifest';

export interface ManifestsOptions {
  /** Cloud names; the first is the default (`Cloud` absent or `default`). */
  readonly clouds: readonly string[];
  /** URL prefixes `Archive` may be downloaded from, asked when a deploy starts (empty: none). */
  readonly archiveAllow: () => readonly string[];
  readonly maxArchiveBytes: number;
  readonly downloadTimeoutMs: number;
  /** How long one step may take (a start, a change of nodes). */
  readonly stepTimeoutMs: number;
  readonly pollMs: number;
}

const once = async function* (bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
};

/** A step of a deploy failed: the reason names the manifest path and the service. */
class StepFailed extends Error {}

/** What the request that deploys hands over in memory: the plan with its secrets, and who asks. */
interface DeployGiven {
  readonly plan: DeployPlan;
  readonly p: Principal;
  readonly actor: string;
}

/**
 * Manifests: checks them, deploys them, exports them. A deploy creates the application at once
 * (a taken name answers 409 before anything else happens) and carries the rest out as the
 * operation `deploy_manifest`: services added in manifest order, archives downloaded (allow-listed
 * sources only) and stored, services with `Start` started in order (each RUNNING before the next),
 * their `StartupInstances` applied; a service is added after the services it links (`Links`). Each step is an
 * `OperationProgressed`; a failure fails the operation with the path of its cause and leaves what
 * was made for the user to inspect or delete. The leader takes over a deploy whose director is gone.
 */
export class Manifests {
  private readonly check: ReturnType<typeof manifestChecker>;
  private readonly waits: WaitOptions;

  constructor(
    private readonly core: DirectorCore,
    private readonly applications: Applications,
    private readonly services: Services,
    private readonly serviceOperations: ServiceOperations,
    private readonly operations: Operations,
    private readonly registry: ServiceRegistry,
    private readonly o: ManifestsOptions,
  ) {
    this.check = manifestChecker({ registry, clouds: o.clouds });
    this.waits = { forMs: o.stepTimeoutMs, everyMs: o.pollMs };
  }

  /** Every issue of a manifest (a JSON body, or `{"yaml": text}`). */
  validate(body: unknown): { valid: boolean; issues: Issue[] } {
    const read = readManifest(body);
    const issues = read.issues.length > 0 ? read.issues : this.check(read.input).issues;
    return { valid: issues.length === 0, issues };
  }

  /** Checks, creates the application, and starts the deploy operation (creates nothing when invalid). */
  async deploy(p: Principal, body: unknown, m: Actor): Promise<{ operationId: string; appId: string }> {
    const read = readManifest(body);
    const checked = read.issues.length > 0 ? { issues: read.issues } : this.check(read.input);
    if (!checked.plan)
      throw new ValidationError(
        `invalid manifest: ${checked.issues
          .slice(0, 5)
          .map((i) => `${i.path} ${i.message}`)
          .join('; ')}`,
        checked.issues,
      );
    const plan = checked.plan;
    const operationId = operationIdOf(DEPLOY_MANIFEST, m.requestId);
    // the same Idempotency-Key again: the same answer
    const earlier = this.core.directory.operations.get(operationId);
    if (earlier?.appId && earlier.owner === p.userId) return { operationId, appId: earlier.appId };

    const app = await this.applications.create(
      p,
      { name: plan.application, description: plan.description },
      m,
    );
    await this.operations.start(
      this.deployOp,
      {
        operationId,
        owner: app.owner,
        appId: app.appId,
        input: redactPlan(plan, this.registry),
        given: { plan, p, actor: m.actor },
      },
      { requestId: `${m.requestId}:operation`, actor: m.actor },
    );
    return { operationId, appId: app.appId };
  }

  /** The manifest that deploys the caller's application again (others' answer 404). */
  async manifestOf(p: Principal, ref: string) {
    const app = this.applications.app(p, ref);
    const state = await this.applications.apps.state(aggregateIds.app(app.appId));
    const entries = new Map(
      state.status === 'ACTIVE' ? state.services.map((s) => [s.serviceId, s] as const) : [],
    );
    return exportManifest(
      app,
      this.applications.servicesOf(app).map((view) => {
        const e = entries.get(view.serviceId);
        return { view, config: e?.config, links: e?.links, manifest: e?.manifest, volumes: e?.volumes };
      }),
      this.registry,
    );
  }

  // ---- the operation

  /**
   * A deploy, from its start or taken over from a director that is gone. Every step is idempotent
   * (request ids derived from the operation), so what was done is not done twice. The recorded plan
   * has its secrets redacted: a service that still had to be added with secret settings cannot be,
   * and the deploy fails saying so.
   */
  readonly deployOp = defineOperation<DeployPlan, DeployGiven>({
    kind: DEPLOY_MANIFEST,
    run: (op) => this.carryOut(op),
  });

  /** What a deploy taken over from a director that is gone carries on with: its recorded plan. */
  private recorded(op: RunningOperation<DeployPlan, DeployGiven>): DeployGiven {
    const owner = this.core.directory.users.get(op.owner);
    const plan = op.input;
    if (!owner || !plan)
      throw new CpsError('conflict', 'the director restarted; the deploy cannot be resumed');
    const lost = plan.services.find(
      (s) =>
        !this.core.directory.services.has(serviceIdOf(addRequestId(op.operationId, s))) &&
        JSON.stringify([s.config, s.manifest]).includes(REDACTED),
    );
    if (lost)
      throw new CpsError(
        'conflict',
        `$.Services[${lost.index}].Settings (service ${lost.name}): the director restarted before the service was added, and its secrets are not kept: delete the application and deploy again`,
      );
    const p: Principal = { userId: owner.userId, username: owner.username, role: owner.role, via: 'token' };
    return { plan, p, actor: 'director' };
  }

  private async carryOut(
    op: RunningOperation<DeployPlan, DeployGiven>,
  ): Promise<{ appId: string; serviceIds: string[] }> {
    const { operationId } = op;
    const appId = op.appId;
    if (!appId) throw new CpsError('conflict', 'the director restarted; the deploy cannot be resumed');
    const { plan, p, actor } = op.given ?? this.recorded(op);
    const as = (what: string): Actor => ({ requestId: `${operationId}:${what}`, actor });
    const ids = new Map<number, string>();
    const idOfService = (s: PlannedService) => ids.get(s.index) as string;
    const byName = new Map(plan.services.map((s) => [s.name, s]));
    // in the plan's order, a service comes after those it links: their ids are known
    for (const s of plan.services) {
      const links = Object.fromEntries(
        Object.entries(s.links ?? {}).map(([link, name]) => [link, idOfService(byName.get(name)!)]),
      );
      const svc = await this.within(op, s, 'Type', () =>
        this.services.addService(
          p,
          appId,
          {
            type: s.type,
            name: s.name,
            cloud: s.cloud,
            config: { ...s.config },
            links,
            manifest: { ...s.manifest },
            volumes: (s.volumes ?? []).map((v) => ({ ...v, storage: idOfService(byName.get(v.storage)!) })),
          },
          { requestId: addRequestId(operationId, s), actor },
        ),
      );
      ids.set(s.index, svc.serviceId);
      await op.step(
        `added ${s.name} (${s.type}) as ${svc.serviceId}${Object.keys(links).length > 0 ? `, linking ${Object.values(s.links).join(', ')}` : ''}`,
      );
      // keys the service types do not act on yet: recorded, so the user sees they were not applied
      for (const k of s.pending) await op.step(`${s.name}: ${k} is not applied yet`);
    }

    // Each service then goes its own way: its archive (uploaded by the client or fetched), the files
    // its type takes from the manifest, its start, its node counts. A service waits for nothing but
    // its own inputs (a database starts while the site's code is still uploading), and a service that
    // links another gets that one's credentials and endpoints once they are given (the director's
    // link keeper), then configures its nodes again: as compose starts what a service depends on
    // without waiting for it to be ready. The deploy waits for all; the first failure in the
    // manifest's order fails it.
    const allow = this.o.archiveAllow();
    const chains = await Promise.allSettled(
      plan.services.map(async (s) => {
        await this.archiveOf(op, s, idOfService(s), { p, appId, allow, as });
        await this.manifestFilesOf(op, s, idOfService(s), allow);
        if (!s.start) return;
        const started = await this.within(op, s, 'Start', async () => {
          const { operationId } = await this.serviceOperations.startService(
            p,
            appId,
            idOfService(s),
            as(`start:${s.index}`),
          );
          return operationId;
        });
        await this.within(op, s, 'Start', () => this.running(op, idOfService(s), started));
        await op.step(`${s.name} is RUNNING`);
        if (!s.instances) return;
        const changed = await this.within(op, s, 'StartupInstances', () =>
          this.scale(op, p, appId, idOfService(s), s, as(`nodes:${s.index}`)),
        );
        if (changed) await op.step(`${s.name}: nodes ${changed}`);
      }),
    );
    const failed = chains.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;

    return { appId, serviceIds: [...ids.values()] };
  }

  /** The service's archive, once there: uploaded by the client (`upload:<name>`) or fetched. */
  private async archiveOf(
    op: RunningOperation<DeployPlan, DeployGiven>,
    s: PlannedService,
    serviceId: string,
    c: { p: Principal; appId: string; allow: readonly string[]; as: (what: string) => Actor },
  ): Promise<void> {
    if (s.archive === undefined) return;
    const url = s.archive;
    if (url.startsWith(UPLOAD_ARCHIVE)) {
      // the client uploads it now that the service exists; the service starts once it is there
      if (!this.core.directory.services.get(serviceId)?.archive) {
        await op.step(`${s.name}: waiting for the upload of its archive ${url.slice(UPLOAD_ARCHIVE.length)}`);
        await this.within(op, s, 'Archive', () =>
          op.until(
            `the upload of ${s.name}'s archive`,
            () => !!this.core.directory.services.get(serviceId)?.archive,
            this.waits,
          ),
        );
      }
      await op.step(`${s.name}: archive uploaded`);
      return;
    }
    const { bytes } = await this.within(op, s, 'Archive', () =>
      fetchArchive(url, {
        allow: c.allow,
        maxBytes: this.o.maxArchiveBytes,
        timeoutMs: this.o.downloadTimeoutMs,
      }),
    );
    op.alive();
    const info = await this.within(op, s, 'Archive', () =>
      this.services.uploadArchive(c.p, c.appId, serviceId, once(bytes), c.as(`archive:${s.index}`)),
    );
    await op.step(`${s.name}: archive ${info.version} (${info.size} bytes) stored`);
  }

  /** The files its type takes from its manifest keys (a database's Dump), in the service's objects. */
  private async manifestFilesOf(
    op: RunningOperation<DeployPlan, DeployGiven>,
    s: PlannedService,
    serviceId: string,
    allow: readonly string[],
  ): Promise<void> {
    const def = this.registry.has(s.type) ? this.registry.get(s.type) : undefined;
    for (const key of def?.manifestFiles ?? []) {
      const url = s.manifest[key];
      if (typeof url !== 'string') continue;
      const info = await this.within(op, s, key, () =>
        this.services.storeManifestFile(serviceId, key, async () => {
          const { bytes } = await fetchArchive(url, {
            allow,
            maxBytes: this.o.maxArchiveBytes,
            timeoutMs: this.o.downloadTimeoutMs,
          });
          op.alive();
          return bytes;
        }),
      );
      if (!info) continue;
      await op.step(`${s.name}: ${key} (${info.size} bytes) stored`);
    }
  }

  /** Runs one step of service `s`; a failure names `$.Services[i].<key>` and the service. */
  private async within<T>(
    op: RunningOperation,
    s: PlannedService,
    key: string,
    f: () => Promise<T>,
  ): Promise<T> {
    op.alive();
    try {
      return await f();
    } catch (e) {
      if (e instanceof StepFailed) throw e;
      let why = e instanceof Error ? e.message : String(e);
      if (isCpsError(e) && e.code === 'forbidden' && (key === 'Archive' || key === 'Dump'))
        why += ' (allowed prefixes: the director’s CPS_ARCHIVE_ALLOW)';
      throw new StepFailed(`$.Services[${s.index}].${key} (service ${s.name}): ${why}`, { cause: e });
    }
  }

  /** Waits until the start operation of a service has succeeded and the service is RUNNING. */
  private async running(op: RunningOperation, serviceId: string, operationId: string): Promise<void> {
    await op.succeeded(operationId, `the start of ${serviceId}`, 'the start failed', this.waits);
    await op.until(
      `${serviceId} RUNNING`,
      () => {
        const state = this.core.directory.services.get(serviceId)?.state;
        if (state === 'ERROR') throw new CpsError('conflict', 'the service is in ERROR');
        return state === 'RUNNING';
      },
      this.waits,
    );
  }

  /**
   * Brings the roles named in `StartupInstances` to their counts (other roles keep the nodes the
   * start made) and waits until every node of those roles runs. Answers what changed, if anything.
   */
  private async scale(
    op: RunningOperation,
    p: Principal,
    appId: string,
    serviceId: string,
    s: PlannedService,
    m: Actor,
  ): Promise<string | undefined> {
    const want = s.instances ?? {};
    const view = () => this.core.directory.services.get(serviceId);
    const have = nodeCounts(view() ?? { nodes: {} });
    const add: Record<string, number> = {};
    const remove: Record<string, number> = {};
    for (const [role, n] of Object.entries(want)) {
      const d = n - (have[role] ?? 0);
      if (d > 0) add[role] = d;
      if (d < 0) remove[role] = -d;
    }
    const managerOps: string[] = [];
    if (Object.keys(add).length > 0)
      managerOps.push(
        (
          await this.services.addNodes(
            p,
            appId,
            serviceId,
            { nodes: add, cloud: s.cloud },
            { ...m, requestId: `${m.requestId}:add` },
          )
        ).operationId,
      );
    if (Object.keys(remove).length > 0)
      managerOps.push(
        (
          await this.services.removeNodes(
            p,
            appId,
            serviceId,
            { nodes: remove },
            { ...m, requestId: `${m.requestId}:remove` },
          )
        ).operationId,
      );
    if (managerOps.length === 0) return undefined;
    for (const id of managerOps)
      await op.succeeded(id, `the nodes of ${serviceId}`, 'changing the nodes failed', this.waits);
    await op.until(
      `the nodes of ${serviceId} running`,
      () => {
        const nodes = Object.values(view()?.nodes ?? {});
        return Object.entries(want).every(
          ([role, n]) => nodes.filter((x) => x['role'] === role && x['state'] === 'running').length === n,
        );
      },
      this.waits,
    );
    return [
      ...Object.entries(add).map(([r, n]) => `+${n} ${r}`),
      ...Object.entries(remove).map(([r, n]) => `-${n} ${r}`),
    ].join(', ');
  }
}
