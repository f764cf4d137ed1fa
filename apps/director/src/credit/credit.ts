import { aggregateIds, CpsError, ForbiddenError } from '@cps/core';
import type { ProvisionPolicy } from '@cps/clouds';
import type { Logger } from 'pino';
import type { ApplicationOperations } from '../applications/application-operations.js';
import type { Applications } from '../applications/applications.js';
import type { Aggregates, DirectorCore } from '../core/director-core.js';
import type { UserCommand, UserState } from '../users/user-decider.js';
import type { UserEvent } from '../users/user-events.js';

const HOUR = 3600_000;

export interface CreditOptions {
  /** Most agent nodes one user may have at once. */
  readonly maxNodesPerUser: number;
  /** How often the leader charges running nodes (default 60 s). */
  readonly chargeEveryMs: number;
}

/**
 * ConPaaS's credit: one credit per node-hour, charged at the start of each hour a node runs; at
 * zero credit the user's applications are stopped and new nodes refused. Also the node quota.
 * The Provisioner asks `check` before it records a node; the leader runs `charge` periodically.
 * Charging is idempotent through the user aggregate's state (hours already charged per node): two
 * directors charging at once append one charge, the other finds nothing due.
 */
export class Credit implements ProvisionPolicy {
  constructor(
    private readonly core: DirectorCore,
    /** The user aggregates, where charges are recorded. */
    private readonly users: Aggregates<UserCommand, UserEvent, UserState>,
    private readonly o: CreditOptions,
  ) {}

  private ownerOf(appId: string): string | undefined {
    return this.core.directory.apps.get(appId)?.owner;
  }

  private liveAgents(owner: string) {
    return [...this.core.directory.nodes.values()].filter(
      (n) =>
        n.kind === 'agent' &&
        (n.status === 'recorded' || n.status === 'provisioned') &&
        this.ownerOf(n.appId) === owner,
    );
  }

  /** Nodes allowed but maybe not yet in the read model, per owner (the Provisioner runs on one leader). */
  private readonly granted = new Map<string, Set<string>>();

  /** Refuses a node when its owner has no credit left or is at the node quota. */
  async check(r: { nodeId: string; appId: string; kind: 'manager' | 'agent' }): Promise<void> {
    const owner = this.ownerOf(r.appId);
    if (!owner) throw new ForbiddenError(`application ${r.appId} is unknown`);
    const user = this.core.directory.users.get(owner);
    if (!user || user.credit <= 0)
      throw new CpsError('quota_exceeded', 'no credit left: ask an admin for credit');
    if (r.kind !== 'agent') return Promise.resolve();
    const live = new Set(this.liveAgents(owner).map((n) => n.nodeId));
    const granted = this.granted.get(owner) ?? new Set<string>();
    for (const id of granted) if (live.has(id) || this.core.directory.nodes.get(id)) granted.delete(id);
    if (live.size + granted.size >= this.o.maxNodesPerUser)
      throw new CpsError('quota_exceeded', `at most ${this.o.maxNodesPerUser} nodes per user`);
    granted.add(r.nodeId);
    this.granted.set(owner, granted);
    return Promise.resolve();
  }

  /** One charging round: every running agent node's started hours, then stops for users at zero. */
  async charge(applications: Applications, operations: ApplicationOperations, log: Logger): Promise<void> {
    const now = this.core.now().getTime();
    const broke = new Set<string>();
    for (const n of this.core.directory.nodes.values()) {
      if (n.kind !== 'agent' || n.status !== 'provisioned') continue;
      const owner = this.ownerOf(n.appId);
      if (!owner) continue;
      const hours = Math.max(1, Math.ceil((now - Date.parse(n.since)) / HOUR));
      try {
        const r = await this.users.run(
          aggregateIds.user(owner),
          'Charge',
          { nodeId: n.nodeId, hours },
          { requestId: `charge:${n.nodeId}:${hours}`, actor: 'director:credit' },
        );
        await this.core.caughtUp(r.position);
      } catch (e) {
        log.warn({ err: e, nodeId: n.nodeId }, 'charge failed');
      }
      if ((this.core.directory.users.get(owner)?.credit ?? 0) <= 0) broke.add(owner);
    }
    for (const owner of broke) {
      const user = this.core.directory.users.get(owner);
      if (!user) continue;
      const principal = {
        userId: owner,
        username: user.username,
        role: 'user' as const,
        via: 'session' as const,
      };
      for (const app of applications.list(principal)) {
        const running = applications.servicesOf(app).some((s) => !['INIT', 'STOPPED'].includes(s.state));
        if (!running) continue;
        log.info({ userId: owner, appId: app.appId }, 'credit exhausted: stopping the application');
        await operations
          .stopApplication(principal, app.appId, {
            requestId: `credit-stop:${app.appId}:${Math.floor(now / this.o.chargeEveryMs)}`,
            actor: 'director:credit',
          })
          .catch((e: unknown) => log.warn({ err: e, appId: app.appId }, 'credit stop failed'));
      }
    }
  }
}
