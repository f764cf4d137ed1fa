import { XMLParser } from 'fast-xml-parser';
import { CpsError, ID_PATTERN, ValidationError } from '@cps/core';
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
import { callXmlRpc, escapeXml, XmlRpcFault, type XmlRpcValue } from './xml-rpc.js';

/** What every node's VM gets: the basics of an OpenNebula VM template. */
export interface OpenNebulaTemplate {
  /** `CPU`: the share of a physical CPU, e.g. 0.5 or 1. */
  readonly cpu: number;
  /** `VCPU`: virtual CPUs the guest sees; OpenNebula's default (1) when absent. */
  readonly vcpu?: number;
  /** `MEMORY`, in MiB. */
  readonly memoryMb: number;
  /** `DISK = [ IMAGE_ID ]`: the image the node boots (with OpenNebula's context packages). */
  readonly imageId: number;
  /** `NIC = [ NETWORK_ID ]`. */
  readonly networkId: number;
}

export interface OpenNebulaCloudOptions extends IaasNodeOptions {
  /** The name this cloud is configured under; `opennebula` by default. */
  readonly name?: string;
  /** Names every VM `cps-<platformId>-<nodeId>` and labels it `CPS_PLATFORM`: `list` shows only these. */
  readonly platformId: string;
  /** The XML-RPC endpoint, e.g. `http://frontend:2633/RPC2`. */
  readonly endpoint: string;
  /** `user:password` (the core auth driver's session string); never logged, never in an error. */
  readonly session: string;
  readonly template: OpenNebulaTemplate;
  /** Per XML-RPC call; default 30000 ms. */
  readonly requestTimeoutMs?: number;
}

/** OpenNebula VM states (`STATE`) and the life-cycle states (`LCM_STATE`) of an ACTIVE VM. */
const VM = {
  INIT: 0,
  PENDING: 1,
  HOLD: 2,
  ACTIVE: 3,
  STOPPED: 4,
  SUSPENDED: 5,
  DONE: 6,
  POWEROFF: 8,
} as const;
const LCM_PENDING = new Set([0, 1, 2, 8, 9, 15, 19, 20, 21, 22, 31, 32, 35, 43, 45, 51]);
const LCM_STOPPED = new Set([5, 6, 10, 16, 18, 27, 28, 29, 30, 33, 34]);
const LCM_ENDING = new Set([11, 12, 13, 23]);
const LCM_FAILED = new Set([14, 36, 37, 38, 39, 40, 41, 42, 44, 46, 47, 48, 49, 50, 52]);
const ONE_ERRORS: Readonly<Record<number, string>> = {
  0x0100: 'AUTHENTICATION',
  0x0200: 'AUTHORIZATION',
  0x0400: 'NO_EXISTS',
  0x0800: 'ACTION',
  0x1000: 'XML_RPC_API',
  0x2000: 'INTERNAL',
};
const NO_EXISTS = 0x0400;
const MINE = -3;
const ANY_BUT_DONE = -1;
const KINDS: readonly string[] = ['manager', 'agent'] satisfies NodeKind[];

const stateOf = (state: number, lcm: number): CloudNodeState => {
  switch (state) {
    case VM.INIT:
    case VM.PENDING:
    case VM.HOLD:
    case 10:
      return 'pending';
    case VM.ACTIVE:
      if (LCM_PENDING.has(lcm)) return 'pending';
      if (LCM_STOPPED.has(lcm)) return 'stopped';
      if (LCM_ENDING.has(lcm)) return 'terminated';
      return LCM_FAILED.has(lcm) ? 'failed' : 'running';
    case VM.STOPPED:
    case VM.SUSPENDED:
    case VM.POWEROFF:
    case 9:
      return 'stopped';
    case VM.DONE:
      return 'terminated';
    default:
      return 'failed';
  }
};

interface OneVm {
  readonly id: number;
  readonly name: string;
  readonly state: number;
  readonly lcm: number;
  readonly stime: number;
  readonly ip?: string;
  readonly labels: Readonly<Record<string, string>>;
}

type XmlObject = Record<string, unknown>;
const xml = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  htmlEntities: false,
  isArray: (name, jpath) => jpath === 'VM_POOL.VM' || name === 'NIC',
});
const obj = (v: unknown): XmlObject => (typeof v === 'object' && v !== null ? (v as XmlObject) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (/^-?\d+$/.test(str(v)) ? Number(v) : NaN);

const parseVm = (el: XmlObject): OneVm => {
  const nic = (obj(el.TEMPLATE).NIC as unknown[] | undefined)?.map(obj)[0];
  const labels = Object.fromEntries(
    Object.entries(obj(el.USER_TEMPLATE)).filter(([k, v]) => k.startsWith('CPS_') && typeof v === 'string'),
  ) as Record<string, string>;
  const ip = str(nic?.IP);
  return {
    id: num(el.ID),
    name: str(el.NAME),
    state: num(el.STATE),
    lcm: num(el.LCM_STATE),
    stime: num(el.STIME),
    ...(ip ? { ip } : {}),
    labels,
  };
};

const positive = (v: number | undefined, path: string, integer: boolean, required: boolean): void => {
  if (v === undefined && !required) return;
  if (typeof v !== 'number' || !(v > 0) || (integer && !Number.isInteger(v)))
    throw new ValidationError(`${path} must be a positive ${integer ? 'integer' : 'number'}`, [
      {
        path: `$.${path}`,
        code: 'out_of_range',
        message: `must be a positive ${integer ? 'integer' : 'number'}`,
      },
    ]);
};

const validateOptions = (o: OpenNebulaCloudOptions): void => {
  const problems: [string, string][] = [];
  if (!ID_PATTERN.test(o.platformId)) problems.push(['platformId', `must match ${ID_PATTERN.source}`]);
  if (!/^https?:\/\/[^/]/.test(o.endpoint ?? '')) problems.push(['endpoint', 'must be an http(s) URL']);
  if (typeof o.session !== 'string' || !/^[^:]+:./.test(o.session))
    problems.push(['session', 'must be user:password']);
  for (const k of ['imageId', 'networkId'] as const)
    if (!Number.isInteger(o.template?.[k]) || o.template[k] < 0)
      problems.push([`template.${k}`, 'must be a non-negative integer']);
  if (problems.length > 0)
    throw new ValidationError(
      `invalid OpenNebula options: ${problems.map(([p, m]) => `${p} ${m}`).join('; ')}`,
      problems.map(([p, m]) => ({ path: `$.${p}`, code: 'invalid', message: m })),
    );
  positive(o.template.cpu, 'template.cpu', false, true);
  positive(o.template.memoryMb, 'template.memoryMb', true, true);
  positive(o.template.vcpu, 'template.vcpu', true, false);
};

const element = (name: string, content: string | number): string =>
  `<${name}>${typeof content === 'number' ? content : escapeXml(content)}</${name}>`;

type OneResult = { ok: true; value: XmlRpcValue } | { ok: false; code: number; message: string };

/**
 * Nodes as OpenNebula VMs over XML-RPC (`one.vm.allocate`, `one.vmpool.info`, `one.vm.info`,
 * `one.vm.action`). A node's VM is named `cps-<platformId>-<nodeId>` and labelled in its user
 * template (`CPS_PLATFORM`, `CPS_NODE`, `CPS_APP`, `CPS_SERVICE`, `CPS_KIND`, `CPS_ROLE`); its
 * CONTEXT carries the boot script (`START_SCRIPT_BASE64`, see {@link bootScript}), which must not
 * carry a private key. `create` looks the name up first and, after allocating, keeps the lowest VM
 * id when a concurrent create (another process) allocated too. `list` and `get` omit VMs that are
 * DONE or being terminated, so a destroyed node leaves `list` at once.
 */
export class OpenNebulaCloud implements BaseCloud {
  readonly driver = 'opennebula' as const;
  readonly name: string;
  readonly #o: OpenNebulaCloudOptions;
  readonly #session: string;
  readonly #secrets: readonly string[];
  readonly #creating = new Map<string, Promise<CloudNode>>();

  constructor(options: OpenNebulaCloudOptions) {
    validateOptions(options);
    this.name = options.name ?? 'opennebula';
    this.#session = options.session;
    this.#secrets = [options.session, options.session.slice(options.session.indexOf(':') + 1)];
    this.#o = { ...options, session: '***' };
  }

  /**
   * Returns the node's VM as it is (a stopped one stays stopped), or allocates one and waits until
   * it leaves `pending`. Refuses (code `validation`) a contextualization carrying a private key.
   */
  async create(spec: NodeSpec): Promise<CloudNode> {
    validateNodeSpec(spec);
    refuseSecrets(spec);
    const template = this.#template(spec);
    const running = this.#creating.get(spec.nodeId);
    if (running) return running;
    const creating = this.#create(spec, template).finally(() => this.#creating.delete(spec.nodeId));
    this.#creating.set(spec.nodeId, creating);
    return creating;
  }

  async list(): Promise<CloudNode[]> {
    return onePerNode(await this.#nodes());
  }

  async get(nodeId: string): Promise<CloudNode | undefined> {
    validateNodeId(nodeId);
    return onePerNode(await this.#nodes(nodeId))[0];
  }

  /** Terminates (`terminate-hard`) every VM of the node; an unknown or finished node is fine. */
  async destroy(nodeId: string): Promise<void> {
    validateNodeId(nodeId);
    for (const n of await this.#nodes(nodeId)) await this.#terminate(Number(n.instanceId));
  }

  async #create(spec: NodeSpec, template: string): Promise<CloudNode> {
    const existing = onePerNode(await this.#nodes(spec.nodeId))[0];
    if (existing) return this.#settle(existing);
    const id = await this.#ok('one.vm.allocate', template, false);
    if (typeof id !== 'number')
      throw new CpsError('unavailable', `opennebula ${this.name}: allocate returned no VM id`);
    const winner = onePerNode(await this.#nodes(spec.nodeId))[0] ?? (await this.#node(id));
    if (!winner)
      throw new CpsError('unavailable', `opennebula ${this.name}: VM ${id} vanished after allocate`);
    if (winner.instanceId !== String(id)) await this.#terminate(id);
    return this.#settle(winner);
  }

  #settle(node: CloudNode): Promise<CloudNode> {
    return settle(node, () => this.#node(Number(node.instanceId)), this.#o);
  }

  #vmName(nodeId: string): string {
    return `cps-${this.#o.platformId}-${nodeId}`;
  }

  #template(spec: NodeSpec): string {
    const t = this.#o.template;
    const labels: [string, string][] = [
      ['CPS_PLATFORM', this.#o.platformId],
      ['CPS_NODE', spec.nodeId],
      ['CPS_APP', spec.appId],
      ['CPS_SERVICE', spec.serviceId],
      ['CPS_KIND', spec.kind],
      ...(spec.role === undefined ? [] : [['CPS_ROLE', spec.role] as [string, string]]),
    ];
    const script = Buffer.from(bootScript(spec, this.#o.startCommand), 'utf8').toString('base64');
    return [
      '<TEMPLATE>',
      element('NAME', this.#vmName(spec.nodeId)),
      element('CPU', t.cpu),
      ...(t.vcpu === undefined ? [] : [element('VCPU', t.vcpu)]),
      element('MEMORY', t.memoryMb),
      `<DISK>${element('IMAGE_ID', t.imageId)}</DISK>`,
      `<NIC>${element('NETWORK_ID', t.networkId)}</NIC>`,
      `<CONTEXT>${element('NETWORK', 'YES')}${element('START_SCRIPT_BASE64', script)}</CONTEXT>`,
      ...labels.map(([k, v]) => element(k, v)),
      '</TEMPLATE>',
    ].join('');
  }

  /** The platform's nodes (of one node id when given), from the pool and each VM's own info. */
  async #nodes(nodeId?: string): Promise<CloudNode[]> {
    const pool = await this.#ok('one.vmpool.info', MINE, -1, -1, ANY_BUT_DONE);
    const vms = (obj(obj(xml.parse(str(pool))).VM_POOL).VM as unknown[] | undefined)?.map((v) =>
      parseVm(obj(v)),
    );
    const prefix = this.#vmName('');
    const ids = (vms ?? [])
      .filter((v) => (nodeId === undefined ? v.name.startsWith(prefix) : v.name === this.#vmName(nodeId)))
      .map((v) => v.id);
    const out: CloudNode[] = [];
    for (let at = 0; at < ids.length; at += 8) {
      const batch = await Promise.all(ids.slice(at, at + 8).map((id) => this.#node(id)));
      for (const n of batch) if (n && n.state !== 'terminated') out.push(n);
    }
    return out;
  }

  async #node(id: number): Promise<CloudNode | undefined> {
    const r = await this.#call('one.vm.info', id);
    if (!r.ok && r.code === NO_EXISTS) return undefined;
    const vm = parseVm(obj(obj(xml.parse(str(this.#value('one.vm.info', r)))).VM));
    return this.#toNode(vm);
  }

  #toNode(vm: OneVm): CloudNode | undefined {
    const { CPS_PLATFORM, CPS_NODE, CPS_APP, CPS_SERVICE, CPS_KIND } = vm.labels;
    if (CPS_PLATFORM !== this.#o.platformId || !CPS_NODE || vm.name !== this.#vmName(CPS_NODE))
      return undefined;
    if (!CPS_APP || !CPS_SERVICE || !CPS_KIND || !KINDS.includes(CPS_KIND) || !Number.isInteger(vm.id))
      return undefined;
    return {
      nodeId: CPS_NODE,
      cloud: this.name,
      instanceId: String(vm.id),
      state: stateOf(vm.state, vm.lcm),
      kind: CPS_KIND as NodeKind,
      appId: CPS_APP,
      serviceId: CPS_SERVICE,
      ...(vm.ip ? { address: vm.ip } : {}),
      createdAt: Number.isFinite(vm.stime) ? new Date(vm.stime * 1000).toISOString() : '',
    };
  }

  async #terminate(id: number): Promise<void> {
    const r = await this.#call('one.vm.action', 'terminate-hard', id);
    if (r.ok || r.code === NO_EXISTS) return;
    const now = await this.#node(id);
    if (now === undefined || now.state === 'terminated') return;
    this.#value('one.vm.action', r);
  }

  async #ok(method: string, ...params: XmlRpcValue[]): Promise<XmlRpcValue> {
    return this.#value(method, await this.#call(method, ...params));
  }

  #value(method: string, r: OneResult): XmlRpcValue {
    if (r.ok) return r.value;
    const code = ONE_ERRORS[r.code] ?? `0x${r.code.toString(16)}`;
    throw this.#unavailable(`${method} failed (${code}): ${r.message}`);
  }

  /** One OpenNebula call: `[success, value or message, error code]`; faults and transport failures throw. */
  async #call(method: string, ...params: XmlRpcValue[]): Promise<OneResult> {
    let out: XmlRpcValue;
    try {
      out = await callXmlRpc(
        this.#o.endpoint,
        method,
        [this.#session, ...params],
        this.#o.requestTimeoutMs ?? 30_000,
      );
    } catch (e) {
      const detail = e instanceof XmlRpcFault ? e.message : `${(e as Error).message}${causeOf(e)}`;
      throw this.#unavailable(`${method} failed: ${detail}`);
    }
    if (!Array.isArray(out) || typeof out[0] !== 'boolean')
      throw this.#unavailable(`${method} returned no [success, value, code] array`);
    const [success, value, code] = out as XmlRpcValue[];
    if (success === true) return { ok: true, value: value ?? null };
    return {
      ok: false,
      code: typeof code === 'number' ? code : 0,
      message: typeof value === 'string' ? value : '',
    };
  }

  #unavailable(detail: string): CpsError {
    const text = redact(detail, this.#secrets);
    return new CpsError('unavailable', `opennebula ${this.name}: ${text}`, [], { cause: new Error(text) });
  }
}

const causeOf = (e: unknown): string => {
  const cause = (e as { cause?: { message?: unknown } }).cause;
  return typeof cause?.message === 'string' ? ` (${cause.message})` : '';
};
