import { NotFoundError } from '@cps/core';
import type { ServiceRegistry } from '@cps/services';
import { handleEnrollment, type IdentityIssuer } from '@cps/platform';
import type { DirectorCore } from '../core/director-core.js';
import type { HttpMetrics } from '../api/metrics.js';
import type { Principal } from '../api/request.js';

const HOUR = 3600_000;

/** The platform routes: health, metrics, service types, clouds, resources, operations, enrollment. */
export class Platform {
  constructor(
    private readonly core: DirectorCore,
    private readonly registry: ServiceRegistry,
    private readonly issuer: IdentityIssuer,
    readonly metrics: HttpMetrics,
    private readonly o: {
      readonly clouds: readonly { name: string; kind: string }[];
      readonly openapi: () => Record<string, unknown>;
      readonly ready: () => Record<string, string>;
    },
  ) {}

  health() {
    return { status: 'ok' as const, checks: { process: 'ok' } };
  }

  ready() {
    const checks = this.o.ready();
    const ok = Object.values(checks).every((v) => v === 'ok');
    return { status: ok ? ('ok' as const) : ('starting' as const), checks };
  }

  openapi(): Record<string, unknown> {
    return this.o.openapi();
  }

  /** The registry as the API shows it (built once: the registry does not change while running). */
  serviceTypes() {
    this.types ??= this.describeTypes();
    return this.types;
  }

  private types: ReturnType<Platform['describeTypes']> | undefined;

  private describeTypes() {
    return this.registry.types().map((t) => {
      const d = this.registry.get(t);
      const info = this.registry.describe(t);
      return {
        type: t,
        description: d.description,
        roles: [...d.roles],
        defaultRoles: d.defaultRoles as Record<string, number>,
        configSchema: info.config,
        manifestKeys: info.manifestKeys,
        methods: info.manager.map((m) => ({
          name: m.name,
          description: m.description,
          args: m.args,
          result: m.result,
        })),
      };
    });
  }

  clouds() {
    return this.o.clouds.map((c, i) => ({ name: c.name, kind: c.kind, default: i === 0 }));
  }

  /** The caller's nodes (admins: all), with node-hours and cost (one credit per started hour). */
  resources(p: Principal) {
    const now = this.core.now().getTime();
    return [...this.core.directory.nodes.values()]
      .filter((n) => n.status !== 'destroyed' && n.status !== 'failed')
      .filter((n) => p.role === 'admin' || this.core.directory.apps.get(n.appId)?.owner === p.userId)
      .map((n) => {
        const hours = Math.max(1, Math.ceil((now - Date.parse(n.since)) / HOUR));
        return {
          nodeId: n.nodeId,
          kind: n.kind,
          appId: n.appId,
          serviceId: n.serviceId,
          cloud: n.cloud,
          status: n.status,
          since: n.since,
          hours,
          cost: n.kind === 'agent' ? hours : 0,
          ...(n.role ? { role: n.role } : {}),
        };
      });
  }

  operation(p: Principal, id: string) {
    const op = this.core.directory.operations.get(id);
    const owner = op?.owner ?? (op?.appId ? this.core.directory.apps.get(op.appId)?.owner : undefined);
    if (!op || (p.role !== 'admin' && owner !== p.userId)) throw new NotFoundError(`no operation ${id}`);
    return {
      operationId: op.operationId,
      kind: op.kind,
      state: op.state,
      startedAt: op.startedAt,
      ...(op.appId ? { appId: op.appId } : {}),
      ...(op.serviceId ? { serviceId: op.serviceId } : {}),
      ...(op.finishedAt ? { finishedAt: op.finishedAt } : {}),
      ...(op.reason ? { reason: op.reason } : {}),
      ...(op.steps.length > 0 ? { steps: op.steps } : {}),
    };
  }

  enroll(body: unknown) {
    return handleEnrollment(this.issuer, body);
  }
}
