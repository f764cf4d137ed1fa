import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Subscription as NatsSubscription } from '@nats-io/transport-node';
import {
  aggregateIds,
  ConflictError,
  CpsError,
  isCpsError,
  issuesFromZod,
  NotFoundError,
  serial,
  ValidationError,
} from '@cps/core';
import {
  subjects,
  untilServed,
  type Bus,
  type CommandDefinition,
  type Handler,
  addNodes,
  callMethod,
  configureAgent,
  getHistory,
  getLogs,
  getNodeInfo,
  linkCredentials,
  getServiceInfo,
  HeartbeatSchema,
  listNodes,
  removeNodes,
  shutdownService,
  startupService,
  agentLogs,
  archiveChunk,
  ARCHIVE_TRANSFER_CHUNK,
  setArchive,
  setLinks,
  type NodeInfo,
  createNode,
  issueNodeCertificate,
  destroyNode,
} from '@cps/bus';
import { CommandHandler, type EventStore, type SnapshotStore } from '@cps/events';
import {
  allowedStates,
  mapSecrets,
  type ArchiveView,
  type NodeConfig,
  type NodeView,
  type ManagerContext,
  type MethodDefinition,
  type NodeAnswer,
  type PluginLogger,
  type ServiceDefinition,
  type ServiceObjects,
  type LinkView,
  serviceDecider,
  serviceHistory,
  withV2Fields,
  ServiceRegistry,
  type NodeRequest,
  type ServiceCommand,
  type ServiceEvent,
  type ServiceNode,
  type ServiceState,
} from '@cps/services';
import type { ServedCommand } from '@cps/nest-bus';
import { inPieces, serviceObjects } from './service-objects.js';
import { ArchiveStore } from '@cps/archives';

/** Pieces of an archive sent to a node before the first is answered. */
const PIECES_IN_FLIGHT = 4;

export interface ManagerRuntimeOptions {
  readonly bus: Bus;
  readonly store: EventStore;
  readonly snapshots?: SnapshotStore;
  readonly service: ServiceDefinition;
  readonly appId: string;
  readonly serviceId: string;
  readonly config?: unknown;
  /**
   * Seals the config's secret fields before they reach the event stream, and opens them for the
   * plugin. Without it, a config that carries a secret is refused.
   */
  readonly secrets?: SecretSealer;
  /** Every service type: a linked one's `links.env` gives the nodes their environment. */
  readonly types?: ServiceRegistry;
  /** A node that is not ready this long after its cloud started it is marked failed (default 60 s). */
  readonly readyTimeoutMs?: number;
  /** A running node silent this long is marked failed (default 3 s). */
  readonly heartbeatTimeoutMs?: number;
  /**
   * After the manager starts or its NATS connection comes back, a running node not heard from
   * since is marked failed for silence only once this grace has passed too (default 15 s): after
   * a restart of the platform the agents' heartbeats resume a little later than the manager's own
   * connection does. A node heard from since is judged by `heartbeatTimeoutMs` alone; while the
   * connection is down, silence fails no node.
   */
  readonly heartbeatGraceMs?: number;
  /** Replace a failed node by a new one of its role (default true). */
  readonly replaceFailedNodes?: boolean;
  readonly log?: PluginLogger;
  readonly clock?: () => Date;
}

type Live = Exclude<ServiceState, { status: 'NONE' }>;

/** Seals secret values for the event stream (e.g. AES-GCM under a key the supervisor hands over). */
export interface SecretSealer {
  seal(clear: string, path: string): string;
  open(sealed: string): string;
  /** A secret for `purpose`, the same on every call and after every restart (see `ManagerContext.secret`). */
  derive(purpose: string): string;
}

const silent: PluginLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * One service's manager: the single writer of the service aggregate `svc.<app>.<svc>`. Serves the
 * generic methods and the plugin's own over the bus, asks the Provisioner for nodes, watches its
 * agents' heartbeats, and after a restart resumes whatever its history says was under way.
 */
export class ManagerRuntime {
  private readonly handler: CommandHandler<ServiceCommand, ServiceEvent, ServiceState>;
  private readonly aggregate: string;
  private readonly since = new Map<string, number>();
  private readonly seen = new Map<
    string,
    { at: number; ready: boolean; metrics: Record<string, number>; boot?: string }
  >();
  /** What each node's current boot was last configured with (a digest of its NodeConfig). */
  private readonly configured = new Map<string, { boot: string; digest: string }>();
  /** Nodes to configure at the next pass; passes run one at a time. */
  private readonly toConfigure = new Set<string>();
  private configuring: Promise<void> | undefined;
  /** The state as last loaded or written. */
  private latest: ServiceState | undefined;
  private readonly inFlight = new Set<string>();
  /** One command of the service at a time. */
  private readonly oneCommand = serial();
  private timer: NodeJS.Timeout | undefined;
  private periodicTimer: NodeJS.Timeout | undefined;
  private heartbeats: NatsSubscription | undefined;
  /** When the manager started or its connection last came back; undefined while it is down. */
  private connectedAt: number | undefined;
  private stopped = false;
  /** Aborted when the runtime stops: long plugin hooks (a drain) end with it. */
  private readonly stopping = new AbortController();
  private checkQueued = false;
  private nodesChangedQueued = false;
  private nodesChanging: Promise<void> = Promise.resolve();
  private table: Map<string, ServedCommand> | undefined;
  private archiveStore: ArchiveStore | undefined;
  private readonly transfers = new Map<string, Promise<ArchiveView>>();

  constructor(private readonly o: ManagerRuntimeOptions) {
    this.aggregate = aggregateIds.service(o.appId, o.serviceId);
    this.handler = new CommandHandler(o.store, serviceDecider(new ServiceRegistry([o.service])), {
      ...(o.snapshots ? { snapshots: o.snapshots } : {}),
      snapshotEvery: 20,
    });
  }

  /** The manager's own log: kept (last 1,000 lines) for `get_logs`, and passed to the configured logger. */
  private readonly recent: string[] = [];
  private readonly log: PluginLogger = (['info', 'warn', 'error'] as const).reduce(
    (l, level) => ({
      ...l,
      [level]: (msg: string, fields?: Record<string, unknown>) => {
        this.recent.push(
          `${new Date().toISOString()} ${level} ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`,
        );
        if (this.recent.length > 1_000) this.recent.splice(0, this.recent.length - 1_000);
        (this.o.log ?? silent)[level](msg, fields);
      },
    }),
    silent,
  );

  private now(): Date {
    return (this.o.clock ?? (() => new Date()))();
  }

  async start(o: { serveBus?: boolean } = {}): Promise<void> {
    const loaded = await this.handler.load(this.aggregate);
    this.latest = withV2Fields(loaded.state);
    if (loaded.state.status === 'NONE') {
      const parsed = this.o.service.configSchema.safeParse(this.o.config ?? {});
      if (!parsed.success) throw new ValidationError('invalid service config', issuesFromZod(parsed.error));
      const config = mapSecrets(this.o.service.configSchema, parsed.data, (v, path) =>
        this.seal(String(v), path),
      );
      await this.exec(
        'Create',
        { appId: this.o.appId, serviceId: this.o.serviceId, type: this.o.service.type, config },
        `create:${this.o.serviceId}`,
      );
    }
    if (o.serveBus !== false) this.serve();
    this.connectedAt = Date.now();
    void this.watchConnection();
    this.heartbeats = this.o.bus.connection.subscribe(
      `cps.node.${this.o.appId}.${this.o.serviceId}.*.heartbeat`,
      {
        callback: (err, m) => {
          if (err) return;
          const hb = HeartbeatSchema.safeParse(m.json());
          const nodeId = m.subject.split('.')[4];
          if (!hb.success || nodeId !== hb.data.nodeId) return;
          const before = this.seen.get(nodeId);
          this.seen.set(nodeId, {
            at: Date.now(),
            ready: hb.data.ready,
            metrics: hb.data.metrics,
            ...(hb.data.boot ? { boot: hb.data.boot } : {}),
          });
          if (hb.data.ready && !before?.ready) this.checkSoon();
          this.onHeartbeat(nodeId, hb.data, hb.data.boot !== undefined && before?.boot !== hb.data.boot);
        },
      },
    );
    await this.o.bus.flush();
    await this.resume();
    // what the plugin watches may have changed while no manager ran
    if ((await this.state()).status === 'RUNNING') this.nodesChangedSoon();
    this.timer = setInterval(
      () => void this.check().catch((e: unknown) => this.log.error('check failed', { error: String(e) })),
      250,
    );
    const periodic = this.o.service.manager.periodic;
    if (periodic) {
      let busy = false;
      this.periodicTimer = setInterval(() => {
        if (busy || this.stopped) return;
        busy = true;
        void (async () => {
          const s = await this.state();
          if (s.status === 'RUNNING') await periodic.run(this.context(s));
        })()
          .catch((e: unknown) => this.log.error('periodic run failed', { error: String(e) }))
          .finally(() => {
            busy = false;
          });
      }, periodic.everyMs);
    }
  }

  private async watchConnection(): Promise<void> {
    for await (const s of this.o.bus.connection.status()) {
      if (this.stopped) return;
      if (s.type === 'disconnect') this.connectedAt = undefined;
      else if (s.type === 'reconnect') {
        this.connectedAt = Date.now();
        this.log.info('connection back: nodes not heard from since get the heartbeat grace', {
          graceMs: this.o.heartbeatGraceMs ?? 15_000,
        });
      }
    }
  }

  /** Whether a running node last heard from at `at` has been silent too long (see `heartbeatGraceMs`). */
  private silentTooLong(at: number, now: number): boolean {
    const since = this.connectedAt;
    if (since === undefined || now - at <= (this.o.heartbeatTimeoutMs ?? 3_000)) return false;
    return at > since || now - since >= (this.o.heartbeatGraceMs ?? 15_000);
  }

  /**
   * Tells the plugin its nodes changed, once per burst of changes, one run at a time: a change during
   * a run is told by one more run after it.
   */
  private nodesChangedSoon(): void {
    if (this.nodesChangedQueued || !this.o.service.manager.onNodesChanged) return;
    this.nodesChangedQueued = true;
    const run = async (): Promise<void> => {
      await new Promise((r) => setTimeout(r, 50));
      this.nodesChangedQueued = false;
      if (this.stopped) return;
      const s = await this.live();
      await this.o.service.manager.onNodesChanged?.(this.context(s));
    };
    this.nodesChanging = this.nodesChanging
      .then(run)
      .catch((err: unknown) => this.log.warn('onNodesChanged failed', { error: String(err) }));
  }

  /** A node just became ready: check now rather than at the next tick (coalesced). */
  private checkSoon(): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    setImmediate(() => {
      this.checkQueued = false;
      void this.check().catch((e: unknown) => this.log.error('check failed', { error: String(e) }));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearInterval(this.timer);
    clearInterval(this.periodicTimer);
    this.heartbeats?.unsubscribe();
    await this.oneCommand(async () => undefined);
  }

  async state(): Promise<ServiceState> {
    this.latest = withV2Fields((await this.handler.load(this.aggregate)).state);
    return this.latest;
  }

  private async live(): Promise<Live> {
    const s = await this.state();
    if (s.status === 'NONE') throw new NotFoundError('no such service');
    return s;
  }

  /** Runs one command through the decider (serialised: this process is the single writer). */
  private exec<T extends ServiceCommand['type']>(
    type: T,
    data: Extract<ServiceCommand, { type: T }>['data'],
    requestId: string = randomUUID(),
  ): Promise<readonly ServiceEvent[]> {
    const run = async (): Promise<readonly ServiceEvent[]> => {
      const command = {
        type,
        data,
        metadata: { now: this.now(), requestId, actor: `manager:${this.o.serviceId}` },
      } as ServiceCommand;
      const r = await this.handler.handle(command, this.aggregate);
      this.latest = withV2Fields(r.state);
      for (const e of r.events) this.react(e, r.state);
      return r.events;
    };
    return this.oneCommand(run);
  }

  private react(e: ServiceEvent, state: ServiceState): void {
    if (e.type !== 'NodeStarted') this.log.info(e.type, e.data);
    if (
      (e.type === 'NodeReady' ||
        e.type === 'NodeRemoved' ||
        e.type === 'NodeFailed' ||
        e.type === 'NodeMoved') &&
      this.o.service.manager.onNodesChanged
    )
      this.nodesChangedSoon();
    if (RECONFIGURING.has(e.type)) this.configureSoon('all');
    if (e.type === 'NodeRemoved' || e.type === 'NodeFailed') this.configured.delete(e.data.nodeId);
    if (e.type === 'NodeRequested') {
      this.since.set(e.data.nodeId, Date.now());
      this.provision(e.data.nodeId, e.data.role, e.data.cloud);
    } else if (e.type === 'NodeStarted') {
      // the time to be ready counts from the cloud's start of the node, not from a wait for a
      // Provisioner nobody served (no director leading)
      this.since.set(e.data.nodeId, Date.now());
    } else if (e.type === 'NodeRemovalRequested') {
      this.deprovision(e.data.nodeId);
    } else if (
      e.type === 'NodeFailed' &&
      state.status === 'RUNNING' &&
      !state.operation &&
      this.o.replaceFailedNodes !== false
    ) {
      const failed = state.nodes[e.data.nodeId];
      if (failed) void this.replace(failed);
    }
  }

  private provision(nodeId: string, role: string, cloud: string): void {
    if (this.inFlight.has(`create:${nodeId}`)) return;
    this.inFlight.add(`create:${nodeId}`);
    void this.toProvisioner(() =>
      this.o.bus.request(
        subjects.provisioner(this.o.appId, this.o.serviceId),
        createNode,
        { nodeId, kind: 'agent', serviceType: this.o.service.type, role, cloud },
        { requestId: `create:${nodeId}`, timeoutMs: 60_000, retries: 3 },
      ),
    )
      .then(
        (r) =>
          this.exec('NodeStarted', {
            nodeId,
            instanceId: r.instanceId,
            ...(r.address ? { address: r.address } : {}),
            ...(r.ports ? { ports: r.ports } : {}),
          }),
        (e: unknown) =>
          this.exec('NodeFailed', { nodeId, reason: `provisioning failed: ${(e as Error).message}` }),
      )
      .catch((e: unknown) => this.log.error('provision', { nodeId, error: String(e) }))
      .finally(() => this.inFlight.delete(`create:${nodeId}`));
  }

  /**
   * Asks the Provisioner, asking again while nobody serves it (no director leads: one is starting,
   * or leadership is changing hands) for up to {@link PROVISIONER_WAIT_MS}; the request id makes a
   * repeat harmless. Stops asking once the manager stops.
   */
  private toProvisioner<T>(ask: () => Promise<T>): Promise<T> {
    return untilServed(
      () => (this.stopped ? Promise.reject(new CpsError('internal', 'the manager stopped')) : ask()),
      { forMs: PROVISIONER_WAIT_MS, everyMs: 500 },
    );
  }

  private deprovision(nodeId: string): void {
    if (this.inFlight.has(`destroy:${nodeId}`)) return;
    this.inFlight.add(`destroy:${nodeId}`);
    void this.beforeRemove(nodeId)
      .then(() => this.destroy(nodeId))
      .finally(() => {
        this.inFlight.delete(`destroy:${nodeId}`);
        this.seen.delete(nodeId);
      });
  }

  /**
   * The plugin's `beforeRemove` for a node that `remove_nodes` removes (not one of a shutdown, nor a
   * failed node being replaced): its data moved away, say. Never fails.
   */
  private async beforeRemove(nodeId: string): Promise<void> {
    const hook = this.o.service.manager.beforeRemove;
    if (!hook) return;
    try {
      const s = await this.live();
      const n = s.nodes[nodeId];
      if (n && s.operation?.kind === 'remove_nodes')
        await hook(this.context(s), viewOf(n), this.stopping.signal);
    } catch (e) {
      if (!this.stopped)
        this.log.warn('beforeRemove failed: the node is removed all the same', { nodeId, error: String(e) });
    }
  }

  private destroy(nodeId: string): Promise<unknown> {
    return this.toProvisioner(() =>
      this.o.bus.request(
        subjects.provisioner(this.o.appId, this.o.serviceId),
        destroyNode,
        { nodeId },
        { requestId: `destroy:${nodeId}`, timeoutMs: 30_000, retries: 3 },
      ),
    )
      .then(
        () => this.exec('NodeRemoved', { nodeId }),
        (e: unknown) => {
          if (e instanceof CpsError && e.code === 'not_found') return this.exec('NodeRemoved', { nodeId });
          this.log.error('deprovision', { nodeId, error: String(e) });
          return undefined;
        },
      )
      .catch((e: unknown) => this.log.error('deprovision', { nodeId, error: String(e) }));
  }

  private async replace(failed: ServiceNode): Promise<void> {
    const nodes: NodeRequest[] = [
      { nodeId: newNodeId(), role: failed.role, cloud: failed.cloud, replaces: failed.nodeId },
    ];
    await this.exec('AddNodes', { operationId: `op-${randomUUID()}`, nodes }).catch((e: unknown) =>
      this.log.warn('replace', { nodeId: failed.nodeId, error: String(e) }),
    );
  }

  /** After a restart: carry on with every node whose step was under way. */
  private async resume(): Promise<void> {
    const s = await this.state();
    if (s.status === 'NONE') return;
    for (const n of Object.values(s.nodes)) {
      if (n.state === 'requested' || n.state === 'starting') this.since.set(n.nodeId, Date.now());
      if (n.state === 'requested') this.provision(n.nodeId, n.role, n.cloud);
      if (n.state === 'removing') this.deprovision(n.nodeId);
      // not heard from yet: counted from the start, with the grace
      if (n.state === 'running' && !this.seen.has(n.nodeId))
        this.seen.set(n.nodeId, { at: this.connectedAt ?? Date.now(), ready: true, metrics: {} });
    }
  }

  /** Readiness and liveness, from heartbeats; runs every 250 ms. */
  private async check(): Promise<void> {
    if (this.stopped) return;
    const s = await this.state();
    if (s.status === 'NONE') return;
    const now = Date.now();
    const readyTimeout = this.o.readyTimeoutMs ?? 60_000;
    for (const n of Object.values(s.nodes)) {
      const hb = this.seen.get(n.nodeId);
      if ((n.state === 'requested' || n.state === 'starting') && hb?.ready)
        await this.exec('NodeReady', { nodeId: n.nodeId });
      else if (
        (n.state === 'requested' || n.state === 'starting') &&
        now - (this.since.get(n.nodeId) ?? now) > readyTimeout
      ) {
        await this.exec('NodeFailed', { nodeId: n.nodeId, reason: `not ready within ${readyTimeout} ms` });
        this.deprovision(n.nodeId);
      } else if (n.state === 'running' && hb && this.silentTooLong(hb.at, now)) {
        await this.exec('NodeFailed', { nodeId: n.nodeId, reason: `no heartbeat for ${now - hb.at} ms` });
      }
    }
  }

  /**
   * A heartbeat: a node that can never be ready fails at once with its reason; a node that moved
   * (its cloud restarted it elsewhere) is recorded where it is now; a new boot of an agent (a
   * new node, a restarted agent, a restart of this manager) is configured.
   */
  private onHeartbeat(nodeId: string, hb: z.output<typeof HeartbeatSchema>, newBoot: boolean): void {
    const n = this.latest?.status === 'NONE' ? undefined : this.latest?.nodes[nodeId];
    if (!n || n.state === 'removed' || n.state === 'removing' || n.state === 'failed') return;
    if (hb.fatal && (n.state === 'requested' || n.state === 'starting')) {
      void this.exec('NodeFailed', { nodeId, reason: hb.fatal })
        .then(() => this.deprovision(nodeId))
        .catch((e: unknown) => this.log.warn('failing a node', { nodeId, error: String(e) }));
      return;
    }
    if (
      n.address !== undefined &&
      hb.address &&
      hb.ports &&
      (hb.address !== n.address || hb.ports.from !== n.ports?.from)
    )
      void this.exec('MoveNode', { nodeId, address: hb.address, ports: hb.ports }).catch((e: unknown) =>
        this.log.warn('recording a moved node', { nodeId, error: String(e) }),
      );
    if (hb.boot && this.configured.get(nodeId)?.boot !== hb.boot) this.configureSoon([nodeId]);
    if (newBoot && (n.state === 'requested' || n.state === 'starting')) this.nodeJoined(nodeId);
  }

  /** The plugin's `onNodeJoined` for a node not running yet whose agent now answers (never awaited). */
  private nodeJoined(nodeId: string): void {
    const hook = this.o.service.manager.onNodeJoined;
    if (!hook) return;
    void this.live()
      .then(async (s) => {
        const n = s.nodes[nodeId];
        if (n && (n.state === 'requested' || n.state === 'starting')) await hook(this.context(s), viewOf(n));
      })
      .catch((e: unknown) => this.log.warn('onNodeJoined failed', { nodeId, error: String(e) }));
  }

  /**
   * Configures `nodes` (or every node) in the next pass. Passes run one at a time, so two
   * configurations of one service never overlap; a node whose configuration did not change since
   * its current boot got it is skipped.
   */
  private configureSoon(nodes: readonly string[] | 'all'): void {
    if (nodes === 'all') for (const id of this.seen.keys()) this.toConfigure.add(id);
    else for (const id of nodes) this.toConfigure.add(id);
    if (this.configuring || this.stopped) return;
    this.configuring = (async () => {
      while (this.toConfigure.size > 0 && !this.stopped) {
        const batch = [...this.toConfigure];
        this.toConfigure.clear();
        for (const nodeId of batch) await this.configureNode(nodeId);
      }
    })()
      .catch((e: unknown) => this.log.warn('configuring nodes', { error: String(e) }))
      .finally(() => {
        this.configuring = undefined;
        if (this.toConfigure.size > 0) this.configureSoon([]);
      });
  }

  private async configureNode(nodeId: string): Promise<void> {
    const s = await this.live();
    const n = s.nodes[nodeId];
    const boot = this.seen.get(nodeId)?.boot;
    if (!n || !boot || !['requested', 'starting', 'running'].includes(n.state)) return;
    const ctx = this.context(s);
    let config: NodeConfig;
    try {
      config = {
        settings: (await this.o.service.manager.configureNode?.(ctx, viewOf(n))) ?? {},
        nodes: Object.values(s.nodes)
          .filter((x) => x.state === 'running')
          .map(viewOf),
        links: this.nodeLinks(s),
        ...(s.volumes && s.volumes.length > 0 ? { volumes: s.volumes } : {}),
      };
    } catch (e) {
      this.log.error('configureNode failed', { nodeId, error: String(e) });
      return;
    }
    const digest = createHash('sha256').update(JSON.stringify(config)).digest('hex');
    const done = this.configured.get(nodeId);
    if (done?.boot === boot && done.digest === digest) return;
    try {
      await this.o.bus.request(
        subjects.agent(s.appId, s.serviceId, nodeId),
        configureAgent,
        {
          settings: config.settings,
          links: config.links,
          nodes: [...config.nodes],
          ...(config.volumes ? { volumes: [...config.volumes] } : {}),
        },
        {
          timeoutMs: CONFIGURE_TIMEOUT_MS,
        },
      );
      this.configured.set(nodeId, { boot, digest });
    } catch (e) {
      // asked again at its next heartbeat
      this.configured.delete(nodeId);
      this.log.warn('configuring a node failed', { nodeId, error: String(e) });
    }
  }

  /** The state `s` or a newer one this manager wrote since (a plugin hook sees its own writes). */
  private fresh(s: Live): Live {
    const l = this.latest;
    return l && l.status !== 'NONE' ? l : s;
  }

  private nodeInfo(n: ServiceNode): NodeInfo {
    const hb = this.seen.get(n.nodeId);
    return {
      nodeId: n.nodeId,
      role: n.role,
      cloud: n.cloud,
      state: n.state,
      ...(n.address ? { address: n.address } : {}),
      ...(n.ports ? { ports: { from: n.ports.from, to: n.ports.to } } : {}),
      ...(n.reason ? { reason: n.reason } : {}),
      ...(hb ? { lastHeartbeat: new Date(hb.at).toISOString(), metrics: hb.metrics } : {}),
    };
  }

  private checkRoles(nodes: Record<string, number>): void {
    const unknown = Object.keys(nodes).filter((r) => !this.o.service.roles.includes(r));
    if (unknown.length > 0) {
      throw new ValidationError(
        `unknown role(s) ${unknown.join(', ')} for ${this.o.service.type}`,
        unknown.map((r) => ({
          path: `$.nodes.${r}`,
          code: 'unknown_role',
          message: `roles: ${this.o.service.roles.join(', ')}`,
        })),
      );
    }
  }

  /**
   * The commands this manager serves, by name: the bus handlers, whether registered directly
   * (`start()`) or through the NestJS app (`start({ serveBus: false })` + `createBusApp`).
   */
  commands(): ReadonlyMap<string, ServedCommand> {
    if (this.table) return this.table;
    const bus = this.o.bus;
    const table = new Map<string, ServedCommand>();
    const handle = <C extends CommandDefinition>(command: C, h: Handler<C>): void => {
      table.set(command.name, { command, handle: h });
    };
    const requests = (counts: Record<string, number>, cloud: string): NodeRequest[] =>
      Object.entries(counts).flatMap(([role, n]) =>
        Array.from({ length: n }, () => ({ nodeId: newNodeId(), role, cloud })),
      );
    handle(startupService, async (d, ctx) => {
      const operationId = `op-${ctx.requestId}`;
      await this.exec(
        'Startup',
        { operationId, nodes: requests(this.o.service.defaultRoles as Record<string, number>, d.cloud) },
        ctx.requestId,
      );
      return { operationId };
    });
    handle(addNodes, async (d, ctx) => {
      this.checkRoles(d.nodes);
      const operationId = `op-${ctx.requestId}`;
      await this.exec('AddNodes', { operationId, nodes: requests(d.nodes, d.cloud) }, ctx.requestId);
      return { operationId };
    });
    handle(removeNodes, async (d, ctx) => {
      const s = await this.live();
      const operationId = `op-${ctx.requestId}`;
      const nodeIds = 'nodeIds' in d ? d.nodeIds : this.pickNodes(s, d.nodes);
      const remaining = Object.values(s.nodes).filter(
        (n) =>
          !nodeIds.includes(n.nodeId) &&
          n.state !== 'removing' &&
          n.state !== 'removed' &&
          n.state !== 'failed',
      );
      this.o.service.manager.checkRemove?.(this.context(s), remaining.map(viewOf));
      await this.exec('RemoveNodes', { operationId, nodeIds }, ctx.requestId);
      return { operationId };
    });
    handle(shutdownService, async (_d, ctx) => {
      const operationId = `op-${ctx.requestId}`;
      await this.exec('Shutdown', { operationId }, ctx.requestId);
      return { operationId };
    });
    handle(listNodes, async () => ({
      nodes: Object.values((await this.live()).nodes).map((n) => this.nodeInfo(n)),
    }));
    handle(getNodeInfo, async (d) => {
      const n = (await this.live()).nodes[d.nodeId];
      if (!n) throw new NotFoundError(`no node ${d.nodeId}`);
      return this.nodeInfo(n);
    });
    handle(getServiceInfo, async () => {
      const s = await this.live();
      const count: Record<string, number> = {};
      for (const n of Object.values(s.nodes))
        if (n.state !== 'removed') count[n.role] = (count[n.role] ?? 0) + 1;
      return {
        appId: s.appId,
        serviceId: s.serviceId,
        type: s.type,
        state: s.status,
        nodes: count,
        ...(s.operation
          ? { operation: { operationId: s.operation.operationId, kind: s.operation.kind } }
          : {}),
        ...(s.archive ? { archive: s.archive } : {}),
        endpoints: s.endpoints,
        // credentials stay in the events, sealed, and go to the nodes only
        links: Object.fromEntries(
          Object.entries(s.links).map(([name, { credentials: _sealed, ...link }]) => [name, link]),
        ),
      };
    });
    handle(setLinks, async (d, ctx) => {
      const current = (await this.live()).links;
      // credentials come once (sealed here before they are recorded); a later set keeps them
      const links = Object.fromEntries(
        Object.entries(d.links).map(([name, l]) => {
          const kept = current[name]?.serviceId === l.serviceId ? current[name]?.credentials : undefined;
          const credentials = l.credentials
            ? Object.fromEntries(
                Object.entries(l.credentials).map(([k, v]) => [
                  k,
                  this.seal(v, `$.links.${name}.credentials.${k}`),
                ]),
              )
            : kept;
          const link: LinkView = {
            serviceId: l.serviceId,
            ...(l.type ? { type: l.type } : {}),
            endpoints: l.endpoints,
            ...(credentials ? { credentials } : {}),
          };
          return [name, link];
        }),
      );
      return { changed: (await this.exec('SetLinks', { links }, ctx.requestId)).length > 0 };
    });
    handle(linkCredentials, async (d) => {
      const links = this.o.service.links;
      if (!links)
        throw new ValidationError(
          `a ${this.o.service.type} service gives no credentials to services linking it`,
          [{ path: '$.serviceId', code: 'no_link_credentials', message: `${this.o.service.type} has none` }],
        );
      return { credentials: await links.credentials(this.context(await this.live()), d) };
    });
    handle(setArchive, async (d, ctx) => {
      const info = await this.archives().info(d.version);
      if (!info)
        throw new ValidationError(`service ${this.o.serviceId} has no archive ${d.version}`, [
          { path: '$.version', code: 'not_found', message: 'no such archive in the service bucket' },
        ]);
      const archive = { version: info.version, size: info.size, digest: info.digest };
      const events = await this.exec('SetArchive', archive, ctx.requestId);
      if (events.length > 0) await this.o.service.manager.onArchiveChanged?.(this.context(await this.live()));
      return archive;
    });
    handle(getLogs, async (d) => {
      if (!d.nodeId) return { text: tail(this.recent.join('\n'), d.tailBytes) };
      const n = (await this.live()).nodes[d.nodeId];
      if (!n || n.state === 'removed') throw new NotFoundError(`no running node ${d.nodeId}`);
      return bus.request(subjects.agent(this.o.appId, this.o.serviceId, d.nodeId), agentLogs, {
        tailBytes: d.tailBytes,
        ...(d.workload ? { workload: d.workload } : {}),
      });
    });
    handle(callMethod, async (d) => ({ result: await this.callPlugin(d.method, d.args) }));
    handle(getHistory, async (d) =>
      serviceHistory((await this.o.store.readAggregate(this.aggregate)).events, d.limit),
    );
    this.table = table;
    return table;
  }

  private serve(): void {
    const at = subjects.manager(this.o.appId, this.o.serviceId);
    for (const { command, handle } of this.commands().values()) this.o.bus.handle(at, command, handle);
  }

  private pickNodes(s: Live, counts: Record<string, number>): string[] {
    this.checkRoles(counts);
    return Object.entries(counts).flatMap(([role, n]) => {
      const candidates = Object.values(s.nodes).filter(
        (x) => x.role === role && (x.state === 'running' || x.state === 'failed'),
      );
      if (candidates.length < n)
        throw new ConflictError(`only ${candidates.length} ${role} node(s) to remove`);
      return candidates.slice(-n).map((x) => x.nodeId);
    });
  }

  private async callPlugin(name: string, args: unknown): Promise<unknown> {
    const m: MethodDefinition<z.ZodType, z.ZodType, ManagerContext> | undefined =
      this.o.service.manager.methods[name];
    if (!m) throw new NotFoundError(`${this.o.service.type} has no method ${name}`);
    const s = await this.live();
    const allowed = allowedStates(m);
    if (!allowed.includes(s.status))
      throw new ConflictError(`${name} is not allowed while the service is ${s.status}`);
    const parsed = m.args.safeParse(args ?? {});
    if (!parsed.success)
      throw new ValidationError(`invalid arguments for ${name}`, issuesFromZod(parsed.error));
    const result: unknown = await m.handle(this.context(s), parsed.data);
    const out = m.result.safeParse(result);
    if (!out.success)
      throw new CpsError('internal', `${name} returned an invalid result`, issuesFromZod(out.error));
    return out.data;
  }

  private objects: ServiceObjects | undefined;

  /** The links as the nodes get them: credentials opened, and the environment their type gives. */
  private nodeLinks(s: Live): Record<string, LinkView> {
    return Object.fromEntries(
      Object.entries(s.links).map(([name, l]) => {
        const credentials = Object.fromEntries(
          Object.entries(l.credentials ?? {}).map(([k, v]) => [
            k,
            this.o.secrets ? this.o.secrets.open(v) : v,
          ]),
        );
        const type = l.type && this.o.types?.has(l.type) ? this.o.types.get(l.type) : undefined;
        const env = type?.links?.env({ endpoints: l.endpoints, credentials }) ?? {};
        return [name, { ...l, credentials, env }];
      }),
    );
  }

  private seal(clear: string, path: string): string {
    if (!this.o.secrets)
      throw new ValidationError('this manager has no key to seal secrets with', [
        { path, code: 'no_sealing_key', message: 'secret fields need a sealing key' },
      ]);
    return this.o.secrets.seal(clear, path);
  }

  private archives(): ArchiveStore {
    this.archiveStore ??= new ArchiveStore(this.o.bus.connection, { serviceId: this.o.serviceId });
    return this.archiveStore;
  }

  /**
   * Streams the current archive from the service's bucket to one agent, piece by piece; concurrent
   * asks for the same node and version share one transfer.
   */
  private async sendArchive(nodeId: string): Promise<ArchiveView> {
    const a = (await this.live()).archive;
    if (!a) throw new ConflictError(`service ${this.o.serviceId} has no archive`);
    const key = `${nodeId}:${a.version}`;
    const running = this.transfers.get(key);
    if (running) return running;
    const t = this.transfer(nodeId, a).finally(() => this.transfers.delete(key));
    this.transfers.set(key, t);
    return t;
  }

  private async transfer(nodeId: string, a: ArchiveView): Promise<ArchiveView> {
    const to = subjects.agent(this.o.appId, this.o.serviceId, nodeId);
    const { chunks } = await this.archives().get(a.version);
    // a few pieces in flight (the agent's spool puts an early one after those it follows)
    const bytes = await inPieces(
      chunks,
      ARCHIVE_TRANSFER_CHUNK,
      (offset, data) =>
        this.o.bus.request(
          to,
          archiveChunk,
          { ...a, offset, data: data.toString('base64') },
          { timeoutMs: 30_000 },
        ),
      PIECES_IN_FLIGHT,
    );
    this.log.info('archive sent', { nodeId, version: a.version, bytes });
    return a;
  }

  private context(s: Live): ManagerContext {
    const callAgent: ManagerContext['callAgent'] = async (nodeId, method, args, options) =>
      (
        await this.o.bus.request(
          subjects.agent(s.appId, s.serviceId, nodeId),
          callMethod,
          { method, args },
          options?.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
        )
      ).result;
    return {
      appId: s.appId,
      serviceId: s.serviceId,
      type: s.type,
      archive: () => s.archive,
      sendArchive: (nodeId) => this.sendArchive(nodeId),
      config: mapSecrets(this.o.service.configSchema, s.config, (v) =>
        this.o.secrets ? this.o.secrets.open(String(v)) : v,
      ),
      manifest: mapSecrets(this.o.service.manifestKeys, s.manifest, (v) =>
        this.o.secrets ? this.o.secrets.open(String(v)) : v,
      ) as Record<string, unknown>,
      nodes: () => Object.values(this.fresh(s).nodes).map(viewOf),
      state: () => this.fresh(s).plugin,
      record: async (name, data) => {
        await this.exec('RecordPluginEvent', { name, data });
      },
      endpoints: () => this.fresh(s).endpoints,
      setEndpoint: async (name, endpoint) => {
        await this.exec('SetEndpoint', { name, ...(endpoint ? { endpoint } : {}) });
      },
      links: () => this.fresh(s).links,
      secret: (purpose) => {
        if (!this.o.secrets)
          throw new CpsError('internal', `service ${s.serviceId} has no key to derive its secrets from`);
        return this.o.secrets.derive(purpose);
      },
      issueCertificate: (nodeId, publicKeyPem) =>
        this.toProvisioner(() =>
          this.o.bus.request(
            subjects.provisioner(this.o.appId, this.o.serviceId),
            issueNodeCertificate,
            { nodeId, publicKeyPem },
            { timeoutMs: 10_000 },
          ),
        ),
      fanOut: (nodeIds, method, args, options) =>
        Promise.all(
          nodeIds.map(async (nodeId): Promise<NodeAnswer> => {
            try {
              return { nodeId, ok: true, result: await callAgent(nodeId, method, args, options) };
            } catch (e) {
              const error = isCpsError(e)
                ? { code: e.code, message: e.message }
                : { code: 'internal', message: String(e) };
              return { nodeId, ok: false, error };
            }
          }),
        ),
      callAgent,
      objects: (this.objects ??= serviceObjects(this.o.bus, {
        appId: this.o.appId,
        serviceId: this.o.serviceId,
        log: this.log,
      })),
      log: this.log,
    };
  }
}

/** The events after which every node is configured again (what a node is told may have changed). */
const RECONFIGURING = new Set<ServiceEvent['type']>([
  'NodeReady',
  'NodeRemoved',
  'NodeFailed',
  'NodeMoved',
  'EndpointSet',
  'LinksSet',
  'PluginEventRecorded',
]);
/** A configuration runs the plugin's onConfigure (and onStart the first time): it may take a while. */
const CONFIGURE_TIMEOUT_MS = 60_000;

const viewOf = (n: ServiceNode): NodeView => ({
  nodeId: n.nodeId,
  role: n.role,
  cloud: n.cloud,
  state: n.state,
  ...(n.address ? { address: n.address } : {}),
  ...(n.ports ? { ports: n.ports } : {}),
});

/** How long a node request waits for a Provisioner to serve it before the node fails. */
const PROVISIONER_WAIT_MS = 10 * 60_000;

const tail = (text: string, bytes: number): string => {
  const b = Buffer.from(text);
  return b.length <= bytes ? text : b.subarray(b.length - bytes).toString();
};

const newNodeId = (): string => `n${randomBytes(6).toString('hex')}`;
