import { createHash } from 'node:crypto';
import type * as Ec2Sdk from '@aws-sdk/client-ec2';
import type {
  _InstanceType,
  EC2Client,
  Filter,
  Instance,
  RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { CpsError, ID_PATTERN, isCpsError, ValidationError } from '@cps/core';
import type { BaseCloud, CloudNode, CloudNodeState, NodeKind, NodeSpec } from '../types.js';
import { validateNodeId, validateNodeSpec } from '../local/node-spec.js';
import {
  bootScript,
  onePerNode,
  redact,
  refuseSecrets,
  settle,
  type IaasNodeOptions,
} from '../iaas/iaas-node.js';

/** Static AWS credentials: the driver never looks for others (no environment, files or metadata service). */
export interface Ec2Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface Ec2CloudOptions extends IaasNodeOptions {
  /** The name this cloud is configured under; `ec2` by default. */
  readonly name?: string;
  /** Tags every instance (`cps:platform`): `list` shows only this platform's instances. */
  readonly platformId: string;
  /** The AWS region, e.g. `eu-west-1`; always explicit (no region lookup). */
  readonly region: string;
  /** Never logged, never in an error message. */
  readonly credentials: Ec2Credentials;
  /** The EC2 API URL; the region's AWS endpoint when absent (a stand-in in tests). */
  readonly endpoint?: string;
  /** The AMI every node boots: it runs the user-data script (cloud-init) and has `startCommand`. */
  readonly imageId: string;
  /** e.g. `t3.small`. */
  readonly instanceType: string;
  /** Security groups of every instance; the VPC's default group when empty. */
  readonly securityGroupIds: readonly string[];
  /** An EC2 key pair for operators' SSH access; a node's own key never travels in user-data. */
  readonly keyName?: string;
  /** The VPC subnet to launch in; the default subnet when absent. */
  readonly subnetId?: string;
  /** Per HTTP request; default 30000 ms. */
  readonly requestTimeoutMs?: number;
  /** Attempts per API call, retries included (the SDK's standard retry); default 3. */
  readonly maxAttempts?: number;
}

/** Tags the driver puts on every instance, and reads back. */
export const Ec2Tags = {
  platform: 'cps:platform',
  node: 'cps:node',
  app: 'cps:app',
  service: 'cps:service',
  kind: 'cps:kind',
  role: 'cps:role',
} as const;

const STATES: Readonly<Record<string, CloudNodeState>> = {
  pending: 'pending',
  running: 'running',
  stopping: 'stopped',
  stopped: 'stopped',
  'shutting-down': 'terminated',
  terminated: 'terminated',
};
const LIVE: Filter = { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] };
const USER_DATA_MAX = 16_384;
const KINDS: readonly string[] = ['manager', 'agent'] satisfies NodeKind[];

const required = (value: string | undefined, path: string): string => {
  if (typeof value !== 'string' || value.trim() === '')
    throw new ValidationError(`${path} is required`, [
      { path: `$.${path}`, code: 'required', message: 'must be a non-empty string' },
    ]);
  return value;
};

const tagOf = (i: Instance, key: string): string | undefined => i.Tags?.find((t) => t.Key === key)?.Value;
const digest = (...parts: string[]): string =>
  createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 40);

/**
 * Nodes as EC2 instances (AWS SDK v3). Every instance carries the tags of {@link Ec2Tags}; `create`
 * looks a node up by them first and launches with a ClientToken derived from the node id and the
 * launch request, so a retried or concurrent create (the SDK's own retries included) yields one
 * instance. User-data is a boot script (see {@link bootScript}) that must not carry a private key.
 * `list` and `get` show pending, running, stopping and stopped instances; one that is shutting down
 * or terminated is gone (so a destroyed node leaves `list` at once).
 */
export class Ec2Cloud implements BaseCloud {
  readonly driver = 'ec2' as const;
  readonly name: string;
  readonly #client: Promise<{ sdk: typeof Ec2Sdk; client: EC2Client }>;
  readonly #secrets: readonly string[];
  readonly #o: Ec2CloudOptions;

  constructor(options: Ec2CloudOptions) {
    this.name = options.name ?? 'ec2';
    if (!ID_PATTERN.test(options.platformId))
      throw new ValidationError(`platformId must match ${ID_PATTERN.source}`, [
        { path: '$.platformId', code: 'invalid_id', message: `must match ${ID_PATTERN.source}` },
      ]);
    for (const f of ['region', 'imageId', 'instanceType'] as const) required(options[f], f);
    const { accessKeyId, secretAccessKey, sessionToken } = options.credentials;
    required(accessKeyId, 'credentials.accessKeyId');
    required(secretAccessKey, 'credentials.secretAccessKey');
    this.#secrets = [secretAccessKey, accessKeyId, ...(sessionToken ? [sessionToken] : [])];
    this.#o = { ...options, credentials: { accessKeyId: '***', secretAccessKey: '***' } };
    // the SDK is loaded on first use: processes that never reach EC2 do not pay for it
    this.#client = import('@aws-sdk/client-ec2').then((sdk) => ({
      sdk,
      client: new sdk.EC2Client({
        region: options.region,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
        ignoreConfiguredEndpointUrls: true,
        defaultsMode: 'legacy',
        retryMode: 'standard',
        maxAttempts: options.maxAttempts ?? 3,
        useFipsEndpoint: false,
        useDualstackEndpoint: false,
        requestHandler: { connectionTimeout: 5_000, requestTimeout: options.requestTimeoutMs ?? 30_000 },
      }),
    }));
  }

  /**
   * Returns the node's live instance as it is (a stopped one stays stopped), or launches one and
   * waits until it leaves `pending`. Refuses (code `validation`) a spec whose contextualization
   * carries a private key or does not fit in 16 KiB of user-data.
   */
  async create(spec: NodeSpec): Promise<CloudNode> {
    validateNodeSpec(spec);
    refuseSecrets(spec);
    const userData = bootScript(spec, this.#o.startCommand);
    if (Buffer.byteLength(userData) > USER_DATA_MAX)
      throw new ValidationError(`node ${spec.nodeId}: user-data exceeds ${USER_DATA_MAX} bytes`, [
        {
          path: '$.contextualization',
          code: 'too_large',
          message: `user-data exceeds ${USER_DATA_MAX} bytes`,
        },
      ]);
    const existing = onePerNode(await this.#instances(spec.nodeId))[0];
    const node = existing ?? (await this.#launch(spec, Buffer.from(userData).toString('base64')));
    return settle(node, () => this.#byInstanceId(node.instanceId), this.#o);
  }

  async list(): Promise<CloudNode[]> {
    return onePerNode(await this.#describe([]));
  }

  async get(nodeId: string): Promise<CloudNode | undefined> {
    validateNodeId(nodeId);
    return onePerNode(await this.#instances(nodeId))[0];
  }

  /** Terminates every instance of the node; an unknown or already terminated node is fine. */
  async destroy(nodeId: string): Promise<void> {
    validateNodeId(nodeId);
    const ids = (await this.#instances(nodeId)).map((n) => n.instanceId);
    if (ids.length === 0) return;
    try {
      const { sdk, client } = await this.#client;
      await client.send(new sdk.TerminateInstancesCommand({ InstanceIds: ids }));
    } catch (e) {
      if ((e as { name?: string }).name !== 'InvalidInstanceID.NotFound')
        throw this.#fail('TerminateInstances', e);
    }
  }

  /** Launches with a ClientToken; a token EC2 already spent on a since-terminated instance is salted with its id. */
  async #launch(spec: NodeSpec, userData: string): Promise<CloudNode> {
    const o = this.#o;
    const input: RunInstancesCommandInput = {
      ImageId: o.imageId,
      InstanceType: o.instanceType as _InstanceType,
      MinCount: 1,
      MaxCount: 1,
      UserData: userData,
      ...(o.securityGroupIds.length > 0 ? { SecurityGroupIds: [...o.securityGroupIds] } : {}),
      ...(o.keyName === undefined ? {} : { KeyName: o.keyName }),
      ...(o.subnetId === undefined ? {} : { SubnetId: o.subnetId }),
      TagSpecifications: [{ ResourceType: 'instance', Tags: this.#tags(spec) }],
    };
    let token = `cps-${digest(o.platformId, spec.nodeId, JSON.stringify(input))}`;
    for (let attempt = 0; attempt < 4; attempt++) {
      const out = await this.#send('RunInstances', () =>
        this.#client.then(({ sdk, client }) =>
          client.send(new sdk.RunInstancesCommand({ ...input, ClientToken: token })),
        ),
      );
      const instance = out.Instances?.[0];
      const node = instance && this.#toNode(instance, spec);
      if (!node) throw new CpsError('unavailable', `ec2 ${this.name}: RunInstances returned no instance`);
      if (node.state !== 'terminated') return node;
      token = `cps-${digest(token, node.instanceId)}`;
    }
    throw new CpsError('unavailable', `ec2 ${this.name}: node ${spec.nodeId}: every launch ended at once`);
  }

  #tags(spec: NodeSpec): { Key: string; Value: string }[] {
    return [
      { Key: 'Name', Value: `cps-${this.#o.platformId}-${spec.nodeId}` },
      { Key: Ec2Tags.platform, Value: this.#o.platformId },
      { Key: Ec2Tags.node, Value: spec.nodeId },
      { Key: Ec2Tags.app, Value: spec.appId },
      { Key: Ec2Tags.service, Value: spec.serviceId },
      { Key: Ec2Tags.kind, Value: spec.kind },
      ...(spec.role === undefined ? [] : [{ Key: Ec2Tags.role, Value: spec.role }]),
    ];
  }

  #instances(nodeId: string): Promise<CloudNode[]> {
    return this.#describe([{ Name: `tag:${Ec2Tags.node}`, Values: [nodeId] }]);
  }

  async #describe(filters: Filter[]): Promise<CloudNode[]> {
    const Filters = [{ Name: `tag:${Ec2Tags.platform}`, Values: [this.#o.platformId] }, LIVE, ...filters];
    const out: CloudNode[] = [];
    try {
      const { sdk, client } = await this.#client;
      for await (const page of sdk.paginateDescribeInstances({ client, pageSize: 1000 }, { Filters }))
        for (const r of page.Reservations ?? [])
          for (const i of r.Instances ?? []) {
            const node = this.#toNode(i);
            if (node) out.push(node);
          }
    } catch (e) {
      throw this.#fail('DescribeInstances', e);
    }
    return out;
  }

  async #byInstanceId(instanceId: string): Promise<CloudNode | undefined> {
    try {
      const { sdk, client } = await this.#client;
      const out = await client.send(new sdk.DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      const i = out.Reservations?.[0]?.Instances?.[0];
      return i && this.#toNode(i);
    } catch (e) {
      if ((e as { name?: string }).name === 'InvalidInstanceID.NotFound') return undefined;
      throw this.#fail('DescribeInstances', e);
    }
  }

  #toNode(i: Instance, spec?: NodeSpec): CloudNode | undefined {
    const nodeId = tagOf(i, Ec2Tags.node) ?? spec?.nodeId;
    const kind = tagOf(i, Ec2Tags.kind) ?? spec?.kind;
    const appId = tagOf(i, Ec2Tags.app) ?? spec?.appId;
    const serviceId = tagOf(i, Ec2Tags.service) ?? spec?.serviceId;
    if (!nodeId || !kind || !KINDS.includes(kind) || !appId || !serviceId || !i.InstanceId) return undefined;
    const address = i.PublicIpAddress ?? i.PrivateIpAddress;
    return {
      nodeId,
      cloud: this.name,
      instanceId: i.InstanceId,
      state: STATES[i.State?.Name ?? ''] ?? 'failed',
      kind: kind as NodeKind,
      appId,
      serviceId,
      ...(address ? { address } : {}),
      createdAt: i.LaunchTime?.toISOString() ?? '',
    };
  }

  async #send<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      throw this.#fail(operation, e);
    }
  }

  /** Every SDK failure as `unavailable`, credentials scrubbed from the message and from the cause. */
  #fail(operation: string, e: unknown): CpsError {
    if (isCpsError(e)) return e;
    const err = e as { name?: string; message?: string; $metadata?: { requestId?: string } };
    const request = err.$metadata?.requestId ? ` (request ${err.$metadata.requestId})` : '';
    const text = redact(`${err.name ?? 'Error'}: ${err.message ?? String(e)}${request}`, this.#secrets);
    const cause = new Error(text);
    cause.name = redact(err.name ?? 'Error', this.#secrets);
    return new CpsError('unavailable', `ec2 ${this.name}: ${operation} failed: ${text}`, [], { cause });
  }
}
