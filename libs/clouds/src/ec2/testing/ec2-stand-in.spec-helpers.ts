import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StandInMachines } from '../../iaas/testing/machines.spec-helpers.js';
import type { Ec2CloudOptions } from '../ec2-cloud.js';

/** EC2 instance states with their API codes. */
export const Ec2States = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
} as const;
export type Ec2State = keyof typeof Ec2States;

export interface StandInInstance {
  readonly instanceId: string;
  readonly clientToken: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly launchTime: string;
  /** Its machine's address once booted, when the stand-in boots machines. */
  privateIp: string;
  /** None when the stand-in boots machines: the machine has one address, reached from the host. */
  readonly publicIp?: string;
  readonly tags: ReadonlyMap<string, string>;
  readonly securityGroupIds: readonly string[];
  readonly keyName?: string;
  readonly subnetId?: string;
  /** The user-data as the instance would read it (decoded from base64). */
  readonly userData: string;
  state: Ec2State;
  /** When a pending instance turns running; Infinity keeps it pending. */
  readyAt: number;
  /** When a shutting-down instance turns terminated. */
  goneAt: number;
}

/** One API call as the stand-in saw it. */
export interface SeenRequest {
  readonly action: string;
  readonly params: URLSearchParams;
  readonly authorization: string | undefined;
}

/** A canned failure for the next call of `action`, after doing its work when `afterEffect`. */
export interface Failure {
  readonly action: string;
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly afterEffect?: boolean;
}

export interface Ec2StandInOptions {
  /** Most instances per DescribeInstances page, whatever MaxResults asks. Default 1000. */
  readonly pageSize?: number;
  /** How long a new instance stays pending; default 30 ms. */
  readonly pendingMs?: number;
  /** How long a terminated instance stays shutting-down; default 30 ms. */
  readonly shutdownMs?: number;
  /**
   * Boots each instance for real: a machine that runs its user-data (named by its instance id).
   * Stopping or terminating the instance halts the machine (TerminateInstances answers once it is).
   * Off by default: instances are records only.
   */
  readonly machines?: StandInMachines;
}

/**
 * A tiny in-memory EC2 Query API on 127.0.0.1 (random port): RunInstances (ClientToken idempotent,
 * tags, user-data), DescribeInstances (InstanceId, `tag:*` and `instance-state-name` filters,
 * MaxResults/NextToken pages), TerminateInstances. It checks that each request is SigV4-signed
 * with its access key (an `AWS4-HMAC-SHA256` Authorization header for region/ec2).
 */
export interface Ec2StandIn {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly requests: SeenRequest[];
  instances(): StandInInstance[];
  instance(instanceId: string): StandInInstance | undefined;
  setState(instanceId: string, state: Ec2State, hold?: boolean): void;
  failNext(f: Failure): void;
  close(): Promise<void>;
}

const xmlEscape = (s: string): string =>
  s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

const listParam = (p: URLSearchParams, prefix: string): string[] => {
  const out: string[] = [];
  for (let n = 1; p.has(`${prefix}.${n}`); n++) out.push(p.get(`${prefix}.${n}`)!);
  return out;
};

const filtersOf = (p: URLSearchParams): { name: string; values: string[] }[] => {
  const out: { name: string; values: string[] }[] = [];
  for (let n = 1; p.has(`Filter.${n}.Name`); n++)
    out.push({ name: p.get(`Filter.${n}.Name`)!, values: listParam(p, `Filter.${n}.Value`) });
  return out;
};

const tagsOf = (p: URLSearchParams): Map<string, string> => {
  const tags = new Map<string, string>();
  for (let s = 1; p.has(`TagSpecification.${s}.ResourceType`); s++) {
    if (p.get(`TagSpecification.${s}.ResourceType`) !== 'instance') continue;
    for (let t = 1; p.has(`TagSpecification.${s}.Tag.${t}.Key`); t++)
      tags.set(
        p.get(`TagSpecification.${s}.Tag.${t}.Key`)!,
        p.get(`TagSpecification.${s}.Tag.${t}.Value`) ?? '',
      );
  }
  return tags;
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const instanceXml = (i: StandInInstance): string => `<item>
<instanceId>${i.instanceId}</instanceId><imageId>${xmlEscape(i.imageId)}</imageId>
<instanceState><code>${Ec2States[i.state]}</code><name>${i.state}</name></instanceState>
${i.privateIp ? `<privateIpAddress>${i.privateIp}</privateIpAddress>` : ''}${i.state === 'running' && i.publicIp ? `<ipAddress>${i.publicIp}</ipAddress>` : ''}
<instanceType>${xmlEscape(i.instanceType)}</instanceType><launchTime>${i.launchTime}</launchTime>
<clientToken>${xmlEscape(i.clientToken)}</clientToken>
<tagSet>${[...i.tags].map(([k, v]) => `<item><key>${xmlEscape(k)}</key><value>${xmlEscape(v)}</value></item>`).join('')}</tagSet>
</item>`;

/** Starts the stand-in; `close()` stops it. */
export const startEc2StandIn = async (o: Ec2StandInOptions = {}): Promise<Ec2StandIn> => {
  const region = 'eu-stand-in-1';
  const accessKeyId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString('base64');
  const instances = new Map<string, StandInInstance>();
  const pages = new Map<string, string[]>();
  const boots = new Map<string, Promise<void>>();
  const machines = o.machines;
  const requests: SeenRequest[] = [];
  const failures: Failure[] = [];
  let seq = 0;

  const tick = (): void => {
    const now = Date.now();
    for (const i of instances.values()) {
      if (i.state === 'pending' && now >= i.readyAt) i.state = 'running';
      if (i.state === 'shutting-down' && now >= i.goneAt) i.state = 'terminated';
    }
  };

  const known = (id: string): StandInInstance => {
    const i = instances.get(id);
    if (!i) throw new ApiError(400, 'InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    return i;
  };

  const boot = async (i: StandInInstance, m: StandInMachines): Promise<void> => {
    try {
      i.privateIp = (await m.boot(i.instanceId, i.userData)).address;
      i.readyAt = Date.now() + (o.pendingMs ?? 30);
    } catch (e) {
      i.state = 'terminated';
      throw new ApiError(
        500,
        'InternalError',
        `instance ${i.instanceId} did not boot: ${(e as Error).message}`,
      );
    }
  };

  /** Halts the machine of an instance that is neither pending nor running (no-op without machines). */
  const halt = async (i: StandInInstance): Promise<void> => {
    if (i.state !== 'pending' && i.state !== 'running') await machines?.halt(i.instanceId);
  };

  const run = async (p: URLSearchParams): Promise<string> => {
    if (p.get('MinCount') !== '1' || p.get('MaxCount') !== '1')
      throw new ApiError(400, 'InvalidParameterValue', 'this stand-in launches one instance at a time');
    const imageId = p.get('ImageId');
    if (!imageId) throw new ApiError(400, 'MissingParameter', 'ImageId is required');
    const token = p.get('ClientToken') ?? '';
    const userData = Buffer.from(p.get('UserData') ?? '', 'base64').toString('utf8');
    if (userData.length > 16_384)
      throw new ApiError(400, 'InvalidParameterValue', 'User data is limited to 16384 bytes');
    let i = [...instances.values()].find((x) => token !== '' && x.clientToken === token);
    if (!i) {
      seq++;
      const id = `i-${seq.toString(16).padStart(17, '0')}`;
      i = {
        instanceId: id,
        clientToken: token,
        imageId,
        instanceType: p.get('InstanceType') ?? 'm1.small',
        launchTime: new Date().toISOString(),
        privateIp: machines ? '' : `192.0.2.${seq % 250}`,
        ...(machines ? {} : { publicIp: `198.51.100.${seq % 250}` }),
        tags: tagsOf(p),
        securityGroupIds: listParam(p, 'SecurityGroupId'),
        ...(p.has('KeyName') ? { keyName: p.get('KeyName')! } : {}),
        ...(p.has('SubnetId') ? { subnetId: p.get('SubnetId')! } : {}),
        userData,
        state: 'pending',
        readyAt: machines ? Infinity : Date.now() + (o.pendingMs ?? 30),
        goneAt: Infinity,
      };
      instances.set(id, i);
      if (machines) boots.set(id, boot(i, machines));
    }
    await boots.get(i.instanceId);
    return `<RunInstancesResponse xmlns="${NS}"><requestId>r-${seq}</requestId><reservationId>r-${i.instanceId}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${instanceXml(i)}</instancesSet></RunInstancesResponse>`;
  };

  const matches = (i: StandInInstance, f: { name: string; values: string[] }): boolean => {
    if (f.name === 'instance-state-name') return f.values.includes(i.state);
    if (f.name.startsWith('tag:')) return f.values.includes(i.tags.get(f.name.slice(4)) ?? '\0');
    throw new ApiError(400, 'InvalidParameterValue', `The filter '${f.name}' is invalid`);
  };

  const describe = (p: URLSearchParams): string => {
    const ids = listParam(p, 'InstanceId');
    const token = p.get('NextToken');
    let selected: string[];
    if (token) {
      const rest = pages.get(token);
      if (!rest) throw new ApiError(400, 'InvalidParameterValue', 'Invalid NextToken');
      pages.delete(token);
      selected = rest;
    } else {
      const filters = filtersOf(p);
      const chosen = ids.length > 0 ? ids.map(known) : [...instances.values()];
      selected = chosen.filter((i) => filters.every((f) => matches(i, f))).map((i) => i.instanceId);
    }
    if (ids.length > 0 && p.has('MaxResults'))
      throw new ApiError(400, 'InvalidParameterCombination', 'MaxResults cannot be used with InstanceIds');
    const size = Math.min(Number(p.get('MaxResults') ?? 1000), o.pageSize ?? 1000);
    const page = selected.slice(0, size);
    let next = '';
    if (selected.length > size) {
      next = randomBytes(12).toString('hex');
      pages.set(next, selected.slice(size));
    }
    const items = page
      .map((id) => instances.get(id)!)
      .map(
        (i) =>
          `<item><reservationId>r-${i.instanceId}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${instanceXml(i)}</instancesSet></item>`,
      )
      .join('');
    return `<DescribeInstancesResponse xmlns="${NS}"><requestId>d-${seq}</requestId><reservationSet>${items}</reservationSet>${next ? `<nextToken>${next}</nextToken>` : ''}</DescribeInstancesResponse>`;
  };

  const terminate = async (p: URLSearchParams): Promise<string> => {
    const chosen = listParam(p, 'InstanceId').map(known);
    const previous = new Map(chosen.map((i) => [i.instanceId, i.state]));
    for (const i of chosen)
      if (i.state !== 'terminated' && i.state !== 'shutting-down') {
        i.state = 'shutting-down';
        await halt(i);
        i.goneAt = Date.now() + (o.shutdownMs ?? 30);
      }
    const items = chosen
      .map((i) => {
        const was = previous.get(i.instanceId) as Ec2State;
        return `<item><instanceId>${i.instanceId}</instanceId><currentState><code>${Ec2States[i.state]}</code><name>${i.state}</name></currentState><previousState><code>${Ec2States[was]}</code><name>${was}</name></previousState></item>`;
      })
      .join('');
    return `<TerminateInstancesResponse xmlns="${NS}"><requestId>t-${seq}</requestId><instancesSet>${items}</instancesSet></TerminateInstancesResponse>`;
  };

  const actions: Record<string, (p: URLSearchParams) => string | Promise<string>> = {
    RunInstances: run,
    DescribeInstances: describe,
    TerminateInstances: terminate,
  };

  const signedByUs = (auth: string | undefined): boolean =>
    auth !== undefined &&
    auth.startsWith(`AWS4-HMAC-SHA256 Credential=${accessKeyId}/`) &&
    auth.includes(`/${region}/ec2/aws4_request`) &&
    /SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/.test(auth);

  const handle = async (req: IncomingMessage, body: string, res: ServerResponse): Promise<void> => {
    const params = new URLSearchParams(body);
    const action = params.get('Action') ?? '';
    const authorization = req.headers.authorization;
    requests.push({ action, params, authorization });
    const reply = (status: number, xml: string): void => {
      res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8' }).end(xml);
    };
    const error = (e: ApiError): void =>
      reply(
        e.status,
        `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message></Error></Errors><RequestID>e-${seq}</RequestID></Response>`,
      );
    try {
      if (!signedByUs(authorization))
        throw new ApiError(
          401,
          'AuthFailure',
          'AWS was not able to validate the provided access credentials',
        );
      const handler = actions[action];
      if (!handler)
        throw new ApiError(400, 'InvalidAction', `The action ${action} is not valid for this web service`);
      tick();
      const at = failures.findIndex((f) => f.action === action);
      const failure = at >= 0 ? failures.splice(at, 1)[0] : undefined;
      if (failure && !failure.afterEffect) throw new ApiError(failure.status, failure.code, failure.message);
      const xml = await handler(params);
      if (failure) throw new ApiError(failure.status, failure.code, failure.message);
      reply(200, xml);
    } catch (e) {
      if (e instanceof ApiError) error(e);
      else error(new ApiError(500, 'InternalError', (e as Error).message));
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    region,
    accessKeyId,
    secretAccessKey,
    requests,
    instances: () => {
      tick();
      return [...instances.values()];
    },
    instance: (id) => {
      tick();
      return instances.get(id);
    },
    setState: (id, state, hold = true) => {
      const i = known(id);
      i.state = state;
      halt(i).catch((e: unknown) => console.error(`stand-in: machine ${id} did not halt`, e));
      if (hold) {
        i.readyAt = Infinity;
        i.goneAt = Infinity;
      }
    },
    failNext: (f) => failures.push(f),
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
};

/** Options of an Ec2Cloud on stand-in `s` (platform `p1`, its region and keys, short polls). */
export const ec2StandInCloudOptions = (s: Ec2StandIn): Ec2CloudOptions => ({
  platformId: 'p1',
  region: s.region,
  endpoint: s.endpoint,
  credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  imageId: 'ami-0123456789abcdef0',
  instanceType: 't3.micro',
  securityGroupIds: ['sg-0123456789abcdef0'],
  pollIntervalMs: 10,
  readyTimeoutMs: 5_000,
});
