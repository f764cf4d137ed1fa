import { tryParseAggregateId } from '@cps/core';
import type { HistoryEvent } from '@cps/sdk';

/** What an operation looks like when its progress is followed. */
export interface FollowedOperation {
  readonly operationId: string;
  readonly appId?: string;
  readonly serviceId?: string;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Turns the events of the live stream into progress lines of one operation, and tells when it
 * has ended. Shown: the director's steps of the operation; the nodes the operation requests or
 * removes, until they are ready, failed or gone; and the state changes of the services it works
 * on (for a director operation, also the nodes its service's manager starts meanwhile).
 */
export class OperationProgress {
  private readonly nodes = new Set<string>();
  private directorOp = false;

  private readonly names: Map<string, string>;

  /** `serviceNames`: the names of the application's services by id (new ones are learnt on the way). */
  constructor(
    private readonly op: FollowedOperation,
    serviceNames: ReadonlyMap<string, string> = new Map(),
  ) {
    this.names = new Map(serviceNames);
  }

  /** The lines this event adds (maybe none), and whether it ends the operation. */
  see(e: HistoryEvent): { lines: string[]; ended: boolean } {
    const d = (e.data ?? {}) as Record<string, unknown>;
    const id = this.op.operationId;
    const [named, name] = [str(d['serviceId']), str(d['name'])];
    if ((e.type === 'ServiceAdded' || e.type === 'ServiceRenamed') && named && name)
      this.names.set(named, name);
    const a = tryParseAggregateId(e.aggregate);
    if (a?.type === 'op' && a.operationId === id) {
      // a director operation works through managers, whose own operations have other ids
      this.directorOp = true;
      if (e.type === 'OperationProgressed') return { lines: [str(d['step']) ?? ''], ended: false };
      if (e.type === 'OperationSucceeded') return { lines: [], ended: true };
      if (e.type === 'DirectorOperationFailed')
        return { lines: [`failed: ${str(d['reason']) ?? '?'}`], ended: true };
      return { lines: [], ended: false };
    }
    if (a?.type !== 'svc' || !this.concerns(e)) return { lines: [], ended: false };
    const mine = str(d['operationId']) === id;
    const node = str(d['nodeId']);
    switch (e.type) {
      case 'OperationCompleted':
        return { lines: [], ended: mine };
      case 'OperationFailed':
        return mine
          ? { lines: [`failed: ${str(d['reason']) ?? '?'}`], ended: true }
          : { lines: [], ended: false };
      case 'ServiceStateChanged':
        return {
          lines: [`service ${this.nameOf(e.serviceId)}: ${str(d['from'])} -> ${str(d['to'])}`],
          ended: false,
        };
      case 'NodeRequested':
        if (!node || !(mine || this.directorOp)) return { lines: [], ended: false };
        this.nodes.add(node);
        return {
          lines: [`node ${node} (${str(d['role']) ?? '?'}) requested on ${str(d['cloud']) ?? '?'}`],
          ended: false,
        };
      case 'NodeRemovalRequested':
        if (!node || !(mine || this.directorOp)) return { lines: [], ended: false };
        this.nodes.add(node);
        return { lines: [`node ${node}: removing`], ended: false };
      case 'NodeStarted':
      case 'NodeReady':
      case 'NodeFailed':
      case 'NodeRemoved': {
        if (!node || !this.nodes.has(node)) return { lines: [], ended: false };
        const what = {
          NodeStarted: 'started',
          NodeReady: 'ready',
          NodeFailed: `failed: ${str(d['reason']) ?? '?'}`,
          NodeRemoved: 'removed',
        }[e.type];
        if (e.type === 'NodeRemoved' || e.type === 'NodeFailed') this.nodes.delete(node);
        return { lines: [`node ${node}: ${what}`], ended: false };
      }
      default:
        return { lines: [], ended: false };
    }
  }

  private nameOf(serviceId: string | undefined): string {
    return (serviceId && this.names.get(serviceId)) ?? serviceId ?? '?';
  }

  private concerns(e: HistoryEvent): boolean {
    if (this.op.serviceId) return e.serviceId === this.op.serviceId;
    if (this.op.appId) return e.appId === this.op.appId;
    return true;
  }
}
