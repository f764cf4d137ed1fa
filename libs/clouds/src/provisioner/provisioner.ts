import type { z } from 'zod';
import {
  aggregateIds,
  ConflictError,
  CpsError,
  ForbiddenError,
  type Identity,
  NotFoundError,
  serialByKey,
  tryParseAggregateId,
} from '@cps/core';
import {
  createManagerNode,
  createNode,
  destroyNode,
  issueNodeCertificate,
  type Bus,
  type Served,
} from '@cps/bus';
import type { AppendOptions, EventStore } from '@cps/events';
import type { BaseCloud, CloudNode, Contextualization, NodeKind } from '../types.js';
import { evolveNode, type NodeEvent, type NodeRecord } from './node-events.js';

/** What a node receives to join the bus (identity files, enrollment token, URLs). */
export interface NodeIdentitySource {
  contextualize(identity: Identity, o: { cloud: string; kind: NodeKind }): Promise<Contextualization>;
}

/** Decides whether a node may be created (quotas and credit arrive with the director). */
export interface ProvisionPolicy {
  check(request: {
    nodeId: string;
    appId: string;
    serviceId: string;
    kind: NodeKind;
    role?: string;
    cloud: string;
  }): Promise<void>;
}

/**
 * Signs a node's HTTPS certificate for the key given, naming `hosts` (the platform's services CA:
 * see `@cps/platform`). The Provisioner decides the node and its names; this only signs.
 */
export interface NodeCertifier {
  certify(request: {
    appId: string;
    serviceId: string;
    nodeId: string;
    publicKeyPem: string;
    hosts: readonly string[];
  }): z.output<typeof issueNodeCertificate.reply>;
}

/** What the reconciler does with a node recorded as provisioned that its cloud no longer runs. */
export type MissingNodePolicy = (node: NodeRecord) => 'recreate' | 'forget';

export interface ProvisionerOptions {
  readonly store: EventStore;
  readonly clouds: readonly BaseCloud[];
  readonly identities: NodeIdentitySource;
  readonly policy?: ProvisionPolicy;
  readonly onMissing?: MissingNodePolicy;
  /** The Debian packages the nodes of a service type need (handed to the cloud in the node spec). */
  readonly software?: (serviceType: string) => readonly string[];
  /** Signs the nodes' HTTPS certificates managers ask for (none: `issueNodeCertificate` is not served). */
  readonly certifier?: NodeCertifier;
  readonly clock?: () => Date;
}

export interface ReconcileReport {
  readonly orphansDestroyed: string[];
  /** Stopped nodes started again with their disks (clouds that keep them). */
  readonly restarted: string[];
  /** Lost nodes created afresh. */
  readonly recreated: string[];
  readonly forgotten: string[];
}

/**
 * Owns the clouds: creates and destroys nodes for managers (and supervisors), recording every node
 * before the cloud is called, so a crash in between leaves a record the reconciler can settle; and
 * reconciles each cloud with the records (orphans destroyed, missing nodes re-created per policy).
 */
export class Provisioner {
  private readonly records = new Map<string, { record: NodeRecord; version: number }>();
  /** One step at a time per node: racing requests for one node id see each other's records. */
  private readonly serial = serialByKey();
  private readonly clouds: ReadonlyMap<string, BaseCloud>;
  /** The configured clouds in order (the first is the default): name, driver, mode. */
  readonly cloudList: readonly { readonly name: string; readonly kind: string; readonly mode?: string }[];

  constructor(private readonly o: ProvisionerOptions) {
    this.clouds = new Map(o.clouds.map((c) => [c.name, c]));
    this.cloudList = o.clouds.map((c) => ({
      name: c.name,
      kind: c.driver,
      ...(c.mode === undefined ? {} : { mode: c.mode }),
    }));
  }

  /** Loads the records from the event history (call once at start). */
  async load(): Promise<void> {
    for (const e of await this.o.store.readAll()) {
      const a = tryParseAggregateId(e.aggregate);
      if (a?.type !== 'node') continue;
      const id = a.nodeId;
      const next = evolveNode(this.records.get(id)?.record, e as unknown as NodeEvent);
      if (next) this.records.set(id, { record: next, version: e.aggregateVersion });
    }
  }

  /**
   * Serves `create` and `destroy` of agents for every manager, and of manager processes for
   * supervisors; the subject names the service asked for. With a certifier, also
   * `issueNodeCertificate`: a certificate for a provisioned node of the asking manager's own
   * service, naming the address recorded for it (a manager never chooses the names).
   */
  serve(bus: Bus): Served {
    const supervisor = 'cps.sys.mgrnode.*.*';
    const served = [
      bus.handleAt(`${supervisor}.${createManagerNode.name}`, createManagerNode, (d, ctx) => {
        const [, , , app, svc] = ctx.subject.split('.');
        return this.create(
          { ...d, kind: 'manager', appId: app as string, serviceId: svc as string },
          ctx.requestId,
        );
      }),
      bus.handleAt(`${supervisor}.${destroyNode.name}`, destroyNode, (d, ctx) => {
        const [, , , app, svc] = ctx.subject.split('.');
        const owner = { appId: app as string, serviceId: svc as string, kind: 'manager' as const };
        return this.destroy(d.nodeId, owner, ctx.requestId);
      }),
      bus.handleAt(`cps.sys.node.*.*.${createNode.name}`, createNode, (d, ctx) => {
        const [, , , app, svc] = ctx.subject.split('.');
        return this.create({ ...d, appId: app as string, serviceId: svc as string }, ctx.requestId);
      }),
      bus.handleAt(`cps.sys.node.*.*.${destroyNode.name}`, destroyNode, (d, ctx) => {
        const [, , , app, svc] = ctx.subject.split('.');
        const owner = { appId: app as string, serviceId: svc as string, kind: 'agent' as const };
        return this.destroy(d.nodeId, owner, ctx.requestId);
      }),
      ...(this.o.certifier
        ? [
            bus.handleAt(`cps.sys.node.*.*.${issueNodeCertificate.name}`, issueNodeCertificate, (d, ctx) => {
              const [, , , app, svc] = ctx.subject.split('.');
              return this.certify(app as string, svc as string, d);
            }),
          ]
        : []),
    ];
    return { stop: async () => void (await Promise.all(served.map((s) => s.stop()))) };
  }

  private certify(
    appId: string,
    serviceId: string,
    d: z.output<typeof issueNodeCertificate.request>,
  ): z.output<typeof issueNodeCertificate.reply> {
    const node = this.get(d.nodeId);
    if (!node) throw new NotFoundError(`no node ${d.nodeId}`);
    if (node.appId !== appId || node.serviceId !== serviceId || node.kind !== 'agent')
      throw new ForbiddenError(`node ${d.nodeId} is not a node of service ${serviceId}`);
    if (node.status !== 'provisioned' || !node.address)
      throw new ConflictError(`node ${d.nodeId} is ${node.status}, with no address yet`);
    return this.o.certifier!.certify({
      appId,
      serviceId,
      nodeId: d.nodeId,
      publicKeyPem: d.publicKeyPem,
      hosts: [node.address],
    });
  }

  list(): NodeRecord[] {
    return [...this.records.values()].map((r) => r.record);
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.records.get(nodeId)?.record;
  }

  create(
    req: {
      nodeId: string;
      kind: NodeKind;
      role?: string;
      serviceType?: string;
      cloud: string;
      appId: string;
      serviceId: string;
    },
    requestId: string,
  ): Promise<z.output<typeof createNode.reply>> {
    return this.serial(req.nodeId, () => this.createNow(req, requestId));
  }

  private async createNow(
    req: Parameters<Provisioner['create']>[0],
    requestId: string,
  ): Promise<z.output<typeof createNode.reply>> {
    const cloud = this.cloud(req.cloud);
    let record = this.get(req.nodeId);
    if (record && (record.appId !== req.appId || record.serviceId !== req.serviceId)) {
      throw new ForbiddenError(`node ${req.nodeId} belongs to another service`);
    }
    if (record && record.kind !== req.kind)
      throw new ForbiddenError(`node ${req.nodeId} is a ${record.kind} node`);
    if (!record) {
      await this.o.policy?.check(req);
      const { nodeId, kind, appId, serviceId, cloud: c } = req;
      record = await this.append(
        nodeId,
        [
          {
            type: 'NodeRecorded',
            data: {
              nodeId,
              kind,
              appId,
              serviceId,
              cloud: c,
              ...(req.role ? { role: req.role } : {}),
              ...(req.serviceType ? { serviceType: req.serviceType } : {}),
            },
          },
        ],
        requestId,
      );
    }
    if (record.status === 'destroying' || record.status === 'destroyed')
      throw new ConflictError(`node ${req.nodeId} is ${record.status}`);
    if (record.status === 'provisioned') {
      const live = await cloud.get(req.nodeId);
      if (live?.state === 'running') return this.reply(live);
      return this.reply(await this.revive(record, cloud, live, requestId));
    }
    return this.reply(await this.provision(record, cloud, requestId, 'create'));
  }

  /**
   * A provisioned node its cloud does not run: started again with its disk where the cloud keeps
   * stopped nodes (`start`), else destroyed (if the cloud still holds it) and created afresh.
   */
  private async revive(
    record: NodeRecord,
    cloud: BaseCloud,
    live: CloudNode | undefined,
    requestId: string,
  ): Promise<CloudNode> {
    if (live?.state === 'stopped' && cloud.start) return this.provision(record, cloud, requestId, 'restart');
    if (live) await cloud.destroy(record.nodeId);
    return this.provision(record, cloud, requestId, 'recreate');
  }

  destroy(
    nodeId: string,
    owner: { appId: string; serviceId: string; kind?: NodeKind } | undefined,
    requestId: string,
  ): Promise<{ nodeId: string; destroyed: boolean }> {
    return this.serial(nodeId, () => this.destroyNow(nodeId, owner, requestId));
  }

  private async destroyNow(
    nodeId: string,
    owner: Parameters<Provisioner['destroy']>[1],
    requestId: string,
  ): Promise<{ nodeId: string; destroyed: boolean }> {
    const record = this.get(nodeId);
    if (!record) throw new NotFoundError(`no node ${nodeId}`);
    if (owner && (record.appId !== owner.appId || record.serviceId !== owner.serviceId))
      throw new ForbiddenError(`node ${nodeId} belongs to another service`);
    if (owner?.kind && record.kind !== owner.kind)
      throw new ForbiddenError(`node ${nodeId} is a ${record.kind} node: not destroyed through this subject`);
    if (record.status === 'destroyed') return { nodeId, destroyed: true };
    if (record.status !== 'destroying')
      await this.append(nodeId, [{ type: 'NodeDestroyRequested', data: { reason: 'requested' } }], requestId);
    await this.cloud(record.cloud).destroy(nodeId);
    await this.append(nodeId, [{ type: 'NodeDestroyed', data: {} }], `${requestId}:done`);
    return { nodeId, destroyed: true };
  }

  /**
   * Compares every cloud with the records: destroys orphans, re-creates or forgets missing nodes.
   * With `agents: 'leave'` a dead agent is left to its manager, which alone decides an agent's fate
   * while it runs (it fails and replaces a silent one); a dead manager is always brought back. The
   * director revives agents too only when it starts leading (after a platform restart no manager
   * ran to see them die), so a running service never gets both a restarted node and its replacement.
   */
  async reconcile(o: { readonly agents?: 'revive' | 'leave' } = {}): Promise<ReconcileReport> {
    const report: ReconcileReport = { orphansDestroyed: [], restarted: [], recreated: [], forgotten: [] };
    for (const cloud of this.clouds.values()) {
      const actual = await cloud.list();
      for (const n of actual) {
        const r = this.get(n.nodeId);
        if (!r || r.status === 'destroyed' || r.status === 'destroying' || r.cloud !== cloud.name) {
          await cloud.destroy(n.nodeId);
          if (r?.status === 'destroying')
            await this.append(
              n.nodeId,
              [{ type: 'NodeDestroyed', data: {} }],
              `reconcile:${n.nodeId}:destroyed`,
            );
          report.orphansDestroyed.push(n.nodeId);
        }
      }
      const held = new Map(actual.map((n) => [n.nodeId, n]));
      // agents before managers: a manager started last hears its agents at once, rather than
      // counting their silence while the nodes after it are still being started
      const records = this.list().filter((x) => x.cloud === cloud.name);
      for (const r of [
        ...records.filter((x) => x.kind !== 'manager'),
        ...records.filter((x) => x.kind === 'manager'),
      ]) {
        if (r.status === 'destroying') {
          await this.destroy(r.nodeId, undefined, `reconcile:${r.nodeId}`);
          continue;
        }
        const live = held.get(r.nodeId);
        if ((r.status !== 'provisioned' && r.status !== 'recorded') || live?.state === 'running') continue;
        if (r.kind === 'agent' && o.agents === 'leave') continue;
        if ((this.o.onMissing ?? (() => 'recreate'))(r) === 'recreate') {
          await this.serial(r.nodeId, async () => {
            // a manager's create may have started it meanwhile, or its destroy ended it for good
            const cur = this.get(r.nodeId);
            if (cur?.status !== 'provisioned' && cur?.status !== 'recorded') return;
            const now = await cloud.get(r.nodeId);
            if (now?.state === 'running') return;
            await this.revive(cur, cloud, now, `reconcile:${r.nodeId}:${this.now().getTime()}`);
            (now?.state === 'stopped' && cloud.start ? report.restarted : report.recreated).push(r.nodeId);
          });
        } else {
          await this.destroy(r.nodeId, undefined, `reconcile:${r.nodeId}:forget`);
          report.forgotten.push(r.nodeId);
        }
      }
    }
    return report;
  }

  /** Creates the node (`create`, or `recreate` after its loss), or starts its stopped self again (`restart`). */
  private async provision(
    record: NodeRecord,
    cloud: BaseCloud,
    requestId: string,
    how: 'create' | 'recreate' | 'restart',
  ): Promise<CloudNode> {
    const identity: Identity =
      record.kind === 'agent'
        ? {
            role: 'agent',
            id: record.nodeId,
            appId: record.appId,
            serviceId: record.serviceId,
            nodeId: record.nodeId,
          }
        : { role: 'manager', id: record.serviceId, appId: record.appId, serviceId: record.serviceId };
    let node: CloudNode;
    try {
      const given = await this.o.identities.contextualize(identity, { cloud: cloud.name, kind: record.kind });
      const contextualization = {
        files: given.files,
        env: {
          ...given.env,
          CPS_APP_ID: record.appId,
          CPS_SERVICE_ID: record.serviceId,
          CPS_NODE_KIND: record.kind,
          ...(record.role ? { CPS_NODE_ROLE: record.role } : {}),
          ...(record.serviceType ? { CPS_SERVICE_TYPE: record.serviceType } : {}),
        },
      };
      const spec = {
        nodeId: record.nodeId,
        kind: record.kind,
        appId: record.appId,
        serviceId: record.serviceId,
        ...(record.role ? { role: record.role } : {}),
        contextualization,
        ...(record.kind === 'agent' && record.serviceType && this.o.software
          ? { software: this.o.software(record.serviceType) }
          : {}),
      };
      node = how === 'restart' && cloud.start ? await cloud.start(spec) : await cloud.create(spec);
    } catch (e) {
      await this.append(
        record.nodeId,
        [{ type: 'NodeProvisionFailed', data: { reason: (e as Error).message } }],
        `${requestId}:failed`,
      );
      throw e instanceof CpsError
        ? e
        : new CpsError(
            'unavailable',
            `cloud ${cloud.name} could not create ${record.nodeId}: ${(e as Error).message}`,
            [],
            { cause: e },
          );
    }
    await this.append(
      record.nodeId,
      [
        {
          type: 'NodeProvisioned',
          data: {
            instanceId: node.instanceId,
            recreated: how === 'recreate',
            restarted: how === 'restart',
            ...(node.address ? { address: node.address } : {}),
            ...(node.ports ? { ports: node.ports } : {}),
          },
        },
      ],
      `${requestId}:provisioned`,
    );
    return node;
  }

  private reply(n: CloudNode): z.output<typeof createNode.reply> {
    return {
      nodeId: n.nodeId,
      instanceId: n.instanceId,
      ...(n.address ? { address: n.address } : {}),
      ...(n.ports ? { ports: n.ports } : {}),
    };
  }

  private cloud(name: string): BaseCloud {
    const c = this.clouds.get(name);
    if (!c)
      throw new NotFoundError(
        `no cloud named ${JSON.stringify(name)}; configured: ${[...this.clouds.keys()].join(', ')}`,
      );
    return c;
  }

  private now(): Date {
    return (this.o.clock ?? (() => new Date()))();
  }

  /** Single writer of node aggregates: appends at the version it holds, folds what it wrote. */
  private async append(nodeId: string, events: NodeEvent[], requestId: string): Promise<NodeRecord> {
    const held = this.records.get(nodeId);
    const meta: AppendOptions['metadata'] = {
      actor: 'provisioner',
      correlationId: requestId,
      causationId: requestId,
      at: this.now().toISOString(),
    };
    const r = await this.o.store.append(aggregateIds.node(nodeId), events, {
      expectedVersion: held?.version ?? 0,
      metadata: meta,
    });
    const record = events.reduce<NodeRecord | undefined>(evolveNode, held?.record) as NodeRecord;
    this.records.set(nodeId, { record, version: r.version });
    return record;
  }
}
