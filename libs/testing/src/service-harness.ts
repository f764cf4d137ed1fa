import { ensureDataBucket } from '@cps/archives';
import { fileURLToPath } from 'node:url';
import {
  subjects,
  type Address,
  type CommandDefinition,
  createManagerNode,
  callMethod,
  getServiceInfo,
  listNodes,
  startupService,
  type NodeInfo,
} from '@cps/bus';
import type { CloudNode } from '@cps/clouds';
import { hasErrorCode } from '@cps/core';
import type { z } from 'zod';
import { eventually } from './eventually.js';
import { TestHost } from './host.js';

/** The built node programs, beside this library in the repository (`npm run build` first). */
const entry = (app: 'agent-runtime' | 'manager-runtime'): string =>
  fileURLToPath(new URL(`../../../apps/${app}/dist/main.js`, import.meta.url));

export interface ServiceHarnessOptions {
  /** The service type under test (one of the built-in types). */
  readonly type: string;
  readonly appId?: string;
  readonly serviceId?: string;
  /** Extra environment of the manager process (e.g. `CPS_HEARTBEAT_TIMEOUT_MS`). */
  readonly managerEnv?: Readonly<Record<string, string>>;
  /** Runs the local cloud in host mode (see `TestHostOptions.hostMode`). */
  readonly hostMode?: boolean;
}

/**
 * One service of a plugin under test, run for real: a nats-server with mTLS, the Provisioner with the
 * local cloud, the service's manager as a process and its agents as processes, driven over the bus
 * as the director drives them. It can kill and restart each part, and stop and start the whole
 * platform's nodes as `cps down` / `cps up` do, so a plugin's tests live in its own folder.
 */
export class ServiceHarness {
  readonly at: Address;
  private readonly managerNodeId: string;

  private constructor(
    readonly host: TestHost,
    readonly appId: string,
    readonly serviceId: string,
  ) {
    this.at = subjects.manager(appId, serviceId);
    this.managerNodeId = `mgr-${serviceId}`;
  }

  static async start(o: ServiceHarnessOptions): Promise<ServiceHarness> {
    const host = await TestHost.start({
      agentEntry: entry('agent-runtime'),
      managerEntry: entry('manager-runtime'),
      managerEnv: { CPS_HEARTBEAT_TIMEOUT_MS: '3000', ...o.managerEnv },
      stopGraceMs: 3_000,
      ...(o.hostMode ? { hostMode: true } : {}),
    });
    try {
      return await ServiceHarness.on(host, o);
    } catch (e) {
      await host.cleanup();
      throw e;
    }
  }

  /**
   * Another service on the platform of `h` (another application's, say: a tenant next door). Its
   * nodes and manager end with `h.cleanup()`.
   */
  static beside(
    h: ServiceHarness,
    o: Omit<ServiceHarnessOptions, 'managerEnv' | 'hostMode'>,
  ): Promise<ServiceHarness> {
    return ServiceHarness.on(h.host, o);
  }

  private static async on(host: TestHost, o: ServiceHarnessOptions): Promise<ServiceHarness> {
    const h = new ServiceHarness(host, o.appId ?? 'a1', o.serviceId ?? 's1');
    // as the director does before it starts a manager
    await ensureDataBucket(host.bus.connection, h.serviceId);
    await host.bus.request(
      subjects.managerProvisioner(h.appId, h.serviceId),
      createManagerNode,
      { nodeId: h.managerNodeId, serviceType: o.type },
      { requestId: `start-manager-${h.appId}-${h.serviceId}`, timeoutMs: 30_000 },
    );
    await eventually(
      () => h.info().catch(() => undefined),
      (i) => i !== undefined,
      30_000,
    );
    return h;
  }

  /** A generic command of the service's manager. */
  request<C extends CommandDefinition>(
    command: C,
    args: z.input<C['request']>,
    o: { timeoutMs?: number } = {},
  ): Promise<z.output<C['reply']>> {
    return this.host.bus.request(this.at, command, args, { timeoutMs: o.timeoutMs ?? 10_000 });
  }

  /** One of the plugin's manager methods, by name. */
  async call(method: string, args: unknown = {}, o: { timeoutMs?: number } = {}): Promise<unknown> {
    return (await this.request(callMethod, { method, args }, o)).result;
  }

  info() {
    return this.request(getServiceInfo, {}, { timeoutMs: 3_000 });
  }

  async nodes(): Promise<NodeInfo[]> {
    return (await this.request(listNodes, {})).nodes;
  }

  /** Waits until the service is in `state` (asked again while its manager does not answer). */
  async until(state: string, ms = 60_000): Promise<void> {
    await eventually(
      () => this.info().catch(() => ({ state: 'unreachable' })),
      (i) => i.state === state,
      ms,
    );
  }

  /** Starts the service and waits until it runs. */
  async startup(): Promise<void> {
    await this.request(startupService, {});
    await this.until('RUNNING');
  }

  /** The manager's node (a process of the local cloud). */
  async managerNode(): Promise<CloudNode> {
    const n = await this.host.cloud.get(this.managerNodeId);
    if (!n) throw new Error('the manager has no node');
    return n;
  }

  /** The node of one agent, as its cloud has it. */
  async agentNode(nodeId: string): Promise<CloudNode> {
    const n = await this.host.cloud.get(nodeId);
    if (!n) throw new Error(`no node ${nodeId}`);
    return n;
  }

  /** kill -9 of a node's process (the manager's or an agent's); its workloads live on. */
  async kill(node: CloudNode): Promise<void> {
    process.kill(Number(node.instanceId), 'SIGKILL');
    await eventually(
      () => this.host.cloud.get(node.nodeId),
      (n) => n?.state !== 'running',
      5_000,
    );
  }

  /** What the leading director's reconciler does every few seconds: dead nodes started again. */
  async reconcile(): Promise<Awaited<ReturnType<TestHost['provisioner']['reconcile']>>> {
    // as the reconciler does at its next round: a node's stream written meanwhile (a manager asking
    // for a replacement) is read again, and the pass tried again
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.host.provisioner.reconcile();
      } catch (e) {
        if (!hasErrorCode(e, 'concurrency') || attempt >= 5) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** What `cps down` does to the nodes: every node (manager and agents) stopped, its directory kept. */
  async down(): Promise<void> {
    for (const n of await this.host.cloud.list()) await this.host.cloud.stop(n.nodeId);
  }

  /** What `cps up` does to them: the reconciler starts every stopped node again, manager included. */
  async up(): Promise<void> {
    await this.reconcile();
    // a manager catching up on a loaded machine (parallel test files) may take a while
    await eventually(
      () => this.info().catch(() => undefined),
      (i) => i !== undefined,
      60_000,
    );
  }

  async cleanup(): Promise<void> {
    await this.host.cleanup();
  }
}
