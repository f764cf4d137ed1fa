import { aggregateIds, CpsError, NotFoundError } from '@cps/core';
import type { Logger } from 'pino';
import type { Principal } from '../api/request.js';
import { Aggregates, hashId, type Actor, type DirectorCore } from '../core/director-core.js';
import type { OperationView } from '../core/directory.js';
import type { OperationKind, RunningOperation } from './operation.js';
import {
  operationDecider,
  type OperationCommand,
  type OperationEvent,
  type OperationState,
} from './operation-events.js';
import { abandoned, PRESENCE_BEAT_MS, type Presence } from './presence.js';
import { waitUntil, type WaitOptions } from './wait.js';

/** The id of the operation of `kind` a request makes: the same request id, the same operation. */
export const operationIdOf = (kind: string, requestId: string): string =>
  hashId('op', `${kind}:${requestId}`);

export interface OperationsOptions {
  /** How long `stop` lets the operations under way reach their next step (default 400 ms). */
  readonly stopGraceMs?: number;
}

type Running = Exclude<OperationState, { status: 'NONE' }>;

/** The director is stopping: the operation is left running, as any other would be. */
class Stopping extends Error {}

const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

/**
 * The director's long operations (aggregate `op.<operationId>`): each is recorded with the director
 * process that runs it (its presence key), answered with 202 and carried on in the background by its
 * kind (`defineOperation`, registered once). The leader takes over the running operations whose
 * director is gone (`leading`): at once, and at every beat of presence.
 */
export class Operations {
  private readonly aggregates: Aggregates<OperationCommand, OperationEvent, OperationState>;
  private readonly kinds = new Map<string, OperationKind>();
  /** The operations this process carries on now, and their runs (for `stop`). */
  private readonly carrying = new Set<string>();
  private readonly under = new Set<Promise<void>>();
  private stopping = false;

  constructor(
    private readonly core: DirectorCore,
    private readonly presence: Presence,
    private readonly log: Logger,
    private readonly o: OperationsOptions = {},
  ) {
    this.aggregates = new Aggregates(core.store, operationDecider);
  }

  /** Makes these kinds runnable here, and resumable by the leader; a kind is registered once. */
  register(kinds: readonly OperationKind[]): void {
    for (const k of kinds) {
      if (this.kinds.has(k.kind)) throw new CpsError('internal', `operation kind ${k.kind} registered twice`);
      this.kinds.set(k.kind, k);
    }
  }

  /** The recorded state of an operation. */
  state(operationId: string): Promise<OperationState> {
    return this.aggregates.state(aggregateIds.operation(operationId));
  }

  /**
   * An operation as the API shows it, a director's or a manager's (from the read model); the
   * caller's own only (admins: any), others' answer 404.
   */
  view(p: Principal, id: string) {
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

  /** The operation of `kind` that a request with this id made already, if any (as the read model has it). */
  requested(kind: OperationKind, requestId: string): OperationView | undefined {
    return this.core.directory.operations.get(operationIdOf(kind.kind, requestId));
  }

  /**
   * Records an operation of `kind` run by this process (id: from the request id, unless given), carries
   * it on in the background, and answers once the read model shows it.
   */
  async start<I, G>(
    kind: OperationKind<I, G>,
    r: { operationId?: string; owner: string; appId?: string; serviceId?: string; input?: I; given?: G },
    m: Actor,
  ): Promise<{ operationId: string }> {
    if (this.kinds.get(kind.kind) !== kind)
      throw new CpsError('internal', `operation kind ${kind.kind} is not registered`);
    const operationId = r.operationId ?? operationIdOf(kind.kind, m.requestId);
    const res = await this.aggregates.run(
      aggregateIds.operation(operationId),
      'Request',
      {
        operationId,
        kind: kind.kind,
        owner: r.owner,
        ...(r.appId ? { appId: r.appId } : {}),
        ...(r.serviceId ? { serviceId: r.serviceId } : {}),
        ...(r.input !== undefined ? { input: r.input } : {}),
        runner: this.presence.self,
      },
      m,
    );
    await this.core.caughtUp(res.position);
    this.carryOn(operationId, { given: r.given });
    return { operationId };
  }

  /**
   * One round of the takeover: carries on every running operation of a registered kind whose director
   * is gone (one a live director runs is left to it).
   */
  takeOver(): void {
    for (const op of this.core.directory.operations.values())
      if (op.state === 'running' && this.kinds.has(op.kind)) this.carryOn(op.operationId, { takeover: true });
  }

  /** The leader's duty: takes over now, and at every beat of presence (a director gone is seen within its TTL). */
  leading(): { stop(): void } {
    this.takeOver();
    const again = setInterval(() => this.takeOver(), PRESENCE_BEAT_MS);
    return { stop: () => clearInterval(again) };
  }

  /** Lets the operations under way go: they stop at their next step, left running for the leader. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.race([
      Promise.allSettled([...this.under]),
      new Promise((r) => setTimeout(r, this.o.stopGraceMs ?? 400)),
    ]);
  }

  private carryOn(operationId: string, o: { given?: unknown; takeover?: boolean }): void {
    if (this.carrying.has(operationId)) return;
    this.carrying.add(operationId);
    const run = this.run(operationId, o).finally(() => this.carrying.delete(operationId));
    this.under.add(run);
    void run.finally(() => this.under.delete(run));
  }

  /** Runs (or resumes) an operation to its end and records the outcome. Never throws. */
  private async run(operationId: string, o: { given?: unknown; takeover?: boolean }): Promise<void> {
    let op: Running;
    let kind: OperationKind;
    try {
      const s = await this.aggregates.state(aggregateIds.operation(operationId));
      const k = s.status === 'running' ? this.kinds.get(s.kind) : undefined;
      if (s.status !== 'running' || !k) return;
      // presence unknown (the bus busy): asked again at the next round
      if (o.takeover && !(await abandoned(this.presence, s.runner).catch(() => false))) return;
      op = s;
      kind = k;
    } catch (err) {
      if (o.takeover) return void this.log.warn({ err, operationId }, 'cannot take over an operation');
      return this.fail(operationId, err);
    }
    if (o.takeover) this.log.info({ operationId, kind: op.kind }, 'taking over an operation');
    try {
      const result = await kind.run(this.running(op, o.given));
      this.alive();
      await this.aggregates.run(
        aggregateIds.operation(operationId),
        'Succeed',
        result === undefined ? {} : { result },
        {
          requestId: `${operationId}:end`,
          actor: 'director',
        },
      );
    } catch (e) {
      await this.fail(operationId, e);
    }
  }

  /** Records the failure, unless this director stops (the operation is then left running). */
  private async fail(operationId: string, e: unknown): Promise<void> {
    if (e instanceof Stopping || this.stopping) return;
    const reason = e instanceof Error ? e.message : String(e);
    this.log.info({ operationId, reason }, 'operation failed');
    await this.aggregates
      .run(
        aggregateIds.operation(operationId),
        'Fail',
        { reason: clip(reason, 2000) },
        { requestId: `${operationId}:end`, actor: 'director' },
      )
      .catch((err: unknown) => this.log.warn({ err, operationId }, 'cannot record the failure'));
  }

  private running(op: Running, given: unknown): RunningOperation {
    const { operationId } = op;
    let steps = 0;
    const alive = () => this.alive();
    const until = (what: string, done: () => boolean, w: WaitOptions) =>
      waitUntil(what, done, {
        ...w,
        check: () => {
          alive();
          w.check?.();
        },
      });
    return {
      operationId,
      owner: op.owner,
      ...(op.appId ? { appId: op.appId } : {}),
      ...(op.serviceId ? { serviceId: op.serviceId } : {}),
      input: op.input,
      given,
      alive,
      until,
      step: async (text) => {
        alive();
        await this.aggregates.run(
          aggregateIds.operation(operationId),
          'Progress',
          { step: clip(text, 200) },
          { requestId: `${operationId}:step:${steps++}`, actor: 'director' },
        );
      },
      succeeded: (id, what, failed, w) =>
        until(
          what,
          () => {
            const other = this.core.directory.operations.get(id);
            if (other?.state === 'failed') throw new CpsError('conflict', other.reason ?? failed);
            return other?.state === 'succeeded';
          },
          w,
        ),
    };
  }

  private alive(): void {
    if (this.stopping) throw new Stopping('the director is stopping');
  }
}
