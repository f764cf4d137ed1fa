import { createHash } from 'node:crypto';
import { CpsError } from '@cps/core';
import { subjects, untilServed, type Bus, createManagerNode, destroyNode, getServiceInfo } from '@cps/bus';
import type { Directory, NodeView } from '../core/directory.js';
import { waitUntil } from '../operations/wait.js';

/**
 * Manager processes: one per started service, asked of the Provisioner on the supervisors'
 * subject, with a short-lived identity of its own. A dead manager is started again (its state is
 * in its events), a stopped service's manager is destroyed. Runs on the leader director only.
 */
export class Supervisor {
  constructor(
    private readonly bus: Bus,
    private readonly directory: Directory,
    private readonly o: { readonly readyTimeoutMs: number; readonly cloud: string },
  ) {}

  /** The live manager node of a service, if any. */
  managerOf(serviceId: string): NodeView | undefined {
    return this.directory.managerOf(serviceId);
  }

  /** Starts the service's manager unless one runs, and waits until it answers. */
  async ensureManager(appId: string, serviceId: string, type: string, requestId: string): Promise<void> {
    if (!this.managerOf(serviceId)) {
      // one node id per start operation: a retried or resumed operation asks for the same node
      const nodeId = `m${createHash('sha256').update(`${serviceId}:${requestId}`).digest('hex').slice(0, 16)}`;
      // nobody serves the Provisioner during a leader hand-over: asked again up to the ready timeout
      await untilServed(
        () =>
          this.bus.request(
            subjects.managerProvisioner(appId, serviceId),
            createManagerNode,
            { nodeId, serviceType: type, cloud: this.o.cloud },
            { requestId: `${requestId}:manager`, timeoutMs: 60_000 },
          ),
        { forMs: this.o.readyTimeoutMs },
      );
    }
    await this.answering(appId, serviceId);
  }

  /** Waits until the service's manager answers on the bus. */
  async answering(appId: string, serviceId: string): Promise<void> {
    let last: unknown;
    await waitUntil(
      `the manager of ${serviceId}`,
      () =>
        this.bus.request(subjects.manager(appId, serviceId), getServiceInfo, {}, { timeoutMs: 1_000 }).then(
          () => true,
          (e: unknown) => {
            last = e;
            return false;
          },
        ),
      {
        forMs: this.o.readyTimeoutMs,
        everyMs: 200,
        timedOut: () =>
          new CpsError('unavailable', `the manager of ${serviceId} did not answer in time`, [], {
            cause: last,
          }),
      },
    );
  }

  /** Destroys the service's manager process (after its service stopped). */
  async stopManager(appId: string, serviceId: string, requestId: string): Promise<void> {
    const m = this.managerOf(serviceId);
    if (!m) return;
    await untilServed(
      () =>
        this.bus.request(
          subjects.managerProvisioner(appId, serviceId),
          destroyNode,
          { nodeId: m.nodeId },
          { requestId: `${requestId}:manager-stop`, timeoutMs: 30_000 },
        ),
      { forMs: this.o.readyTimeoutMs },
    );
  }
}
