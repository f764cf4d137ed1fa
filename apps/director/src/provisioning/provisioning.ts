import { handleEnrollment, handleReenrollment, type IdentityIssuer } from '@cps/platform';
import type { Principal } from '../api/request.js';
import type { DirectorCore } from '../core/director-core.js';

const HOUR = 3600_000;

/** What the API tells of provisioning: the clouds, the caller's nodes and their cost, enrollment. */
export class Provisioning {
  constructor(
    private readonly core: DirectorCore,
    private readonly issuer: IdentityIssuer,
    private readonly o: { readonly clouds: readonly { name: string; kind: string; mode?: string }[] },
  ) {}

  clouds() {
    return this.o.clouds.map((c, i) => ({
      name: c.name,
      kind: c.kind,
      ...(c.mode === undefined ? {} : { mode: c.mode }),
      default: i === 0,
    }));
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

  /** A cloud node trades its one-time token and a CSR for its certificate and JWT. */
  enroll(body: unknown) {
    return handleEnrollment(this.issuer, body);
  }

  /** A node whose certificate expired while it was stopped proves it holds its key and gets fresh credentials. */
  reenroll(body: unknown) {
    return handleReenrollment(this.issuer, body);
  }
}
