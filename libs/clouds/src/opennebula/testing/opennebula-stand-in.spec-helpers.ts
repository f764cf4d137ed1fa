import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import type { StandInMachines } from '../../iaas/testing/machines.spec-helpers.js';
import type { OpenNebulaCloudOptions } from '../opennebula-cloud.js';

/** OpenNebula VM `STATE` values the stand-in uses. */
export const OneStates = { PENDING: 1, ACTIVE: 3, DONE: 6, POWEROFF: 8 } as const;
/** `LCM_STATE` values the stand-in uses. */
export const OneLcm = { LCM_INIT: 0, BOOT: 2, RUNNING: 3, SHUTDOWN: 12, BOOT_FAILURE: 36 } as const;

export interface StandInVm {
  readonly id: number;
  readonly name: string;
  readonly stime: number;
  /** Its machine's address once booted, when the stand-in boots machines. */
  ip: string;
  /** Template attributes OpenNebula keeps in TEMPLATE (CPU, MEMORY, DISK, NIC, CONTEXT, ...). */
  readonly template: Readonly<Record<string, unknown>>;
  /** Every other attribute of the allocated template (OpenNebula's USER_TEMPLATE). */
  readonly userTemplate: Readonly<Record<string, string>>;
  state: number;
  lcm: number;
  readyAt: number;
  goneAt: number;
}

/** One XML-RPC call as the stand-in saw it (the session string is its first param). */
export interface SeenCall {
  readonly method: string;
  readonly params: readonly unknown[];
}

/** A canned answer for the next call of `method`: an XML-RPC fault, or OpenNebula's `[false, message, code]`. */
export type CannedFailure =
  | { readonly method: string; readonly fault: { readonly code: number; readonly message: string } }
  | { readonly method: string; readonly error: { readonly code: number; readonly message: string } };

export interface OneStandInOptions {
  /** How long a new VM stays PENDING; default 30 ms. */
  readonly pendingMs?: number;
  /** How long a terminated VM stays in SHUTDOWN before DONE; default 30 ms. */
  readonly shutdownMs?: number;
  /**
   * Boots each VM for real: a machine named by its DEPLOY_ID (`one-<id>`) that runs its
   * `START_SCRIPT_BASE64`; `one.vm.allocate` answers once it booted. Powering off or terminating
   * the VM halts the machine (`terminate-hard` answers once it is). Off by default: VMs are records only.
   */
  readonly machines?: StandInMachines;
}

/**
 * A tiny in-memory OpenNebula XML-RPC API on 127.0.0.1 (random port, path /RPC2): `one.vm.allocate`
 * (XML templates), `one.vmpool.info` (the reduced pool body: no custom USER_TEMPLATE attributes,
 * as OpenNebula 5.10+ returns it), `one.vm.info` (the full body) and `one.vm.action`
 * (`terminate-hard`). Checks the session string of every call.
 */
export interface OneStandIn {
  readonly endpoint: string;
  readonly session: string;
  readonly calls: SeenCall[];
  vms(): StandInVm[];
  vm(id: number): StandInVm | undefined;
  /** Sets a VM's state and holds it there (no further automatic transition). */
  setState(id: number, state: number, lcm?: number): void;
  failNext(f: CannedFailure): void;
  close(): Promise<void>;
}

const esc = (s: string): string =>
  s.replace(/[<>&]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&amp;'));
const cdata = (s: string): string => `<![CDATA[${s.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`;
const TEMPLATE_KEYS = new Set(['NAME', 'CPU', 'VCPU', 'MEMORY', 'DISK', 'NIC', 'CONTEXT', 'OS', 'GRAPHICS']);
const AUTH = 0x0100;
const NO_EXISTS = 0x0400;
const ACTION = 0x0800;
const API = 0x1000;

class OneError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const requestParser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  isArray: (name) => name === 'param',
});
const templateParser = new XMLParser({ ignoreAttributes: true, parseTagValue: false });

const paramValue = (v: unknown): unknown => {
  if (typeof v === 'string') return v;
  const o = v as Record<string, unknown>;
  if ('string' in o) return typeof o.string === 'string' ? o.string : '';
  for (const t of ['int', 'i4', 'i8']) if (t in o) return Number(o[t]);
  if ('boolean' in o) return String(o.boolean).trim() === '1';
  throw new OneError(API, `the stand-in does not read ${JSON.stringify(o)}`);
};

const toXml = (o: unknown): string => {
  if (typeof o !== 'object' || o === null) return cdata(String(o));
  return Object.entries(o as Record<string, unknown>)
    .map(([k, v]) =>
      Array.isArray(v) ? v.map((x) => `<${k}>${toXml(x)}</${k}>`).join('') : `<${k}>${toXml(v)}</${k}>`,
    )
    .join('');
};

const value = (v: number | boolean | string): string =>
  typeof v === 'boolean'
    ? `<value><boolean>${v ? 1 : 0}</boolean></value>`
    : typeof v === 'number'
      ? `<value><i4>${v}</i4></value>`
      : `<value><string>${esc(v)}</string></value>`;

const response = (values: (number | boolean | string)[]): string =>
  `<?xml version="1.0"?>\n<methodResponse><params><param><value><array><data>${values.map(value).join('')}</data></array></value></param></params></methodResponse>`;

const faultResponse = (code: number, message: string): string =>
  `<?xml version="1.0"?>\n<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>${code}</int></value></member><member><name>faultString</name><value><string>${esc(message)}</string></value></member></struct></value></fault></methodResponse>`;

/** Starts the stand-in; `close()` stops it. */
export const startOneStandIn = async (o: OneStandInOptions = {}): Promise<OneStandIn> => {
  const session = `cps-admin:${randomBytes(18).toString('base64url')}`;
  const vms = new Map<number, StandInVm>();
  const calls: SeenCall[] = [];
  const failures: CannedFailure[] = [];
  const machines = o.machines;
  let seq = 0;

  const tick = (): void => {
    const now = Date.now();
    for (const vm of vms.values()) {
      if (vm.state === OneStates.PENDING && now >= vm.readyAt)
        [vm.state, vm.lcm] = [OneStates.ACTIVE, OneLcm.RUNNING];
      if (vm.lcm === OneLcm.SHUTDOWN && now >= vm.goneAt)
        [vm.state, vm.lcm] = [OneStates.DONE, OneLcm.LCM_INIT];
    }
  };

  const known = (id: unknown, method: string): StandInVm => {
    const vm = typeof id === 'number' ? vms.get(id) : undefined;
    if (!vm) throw new OneError(NO_EXISTS, `[${method}] Error getting virtual machine [${String(id)}].`);
    return vm;
  };

  const vmXml = (vm: StandInVm, full: boolean): string => {
    const nic = { ...(vm.template.NIC as Record<string, unknown>), IP: vm.ip, NIC_ID: '0' };
    const template = full
      ? { ...vm.template, NIC: nic }
      : { CPU: vm.template.CPU, MEMORY: vm.template.MEMORY, NIC: nic };
    const user = full ? vm.userTemplate : {};
    return `<VM><ID>${vm.id}</ID><UID>0</UID><GID>0</GID><UNAME>cps-admin</UNAME><NAME>${esc(vm.name)}</NAME><STATE>${vm.state}</STATE><LCM_STATE>${vm.lcm}</LCM_STATE><STIME>${vm.stime}</STIME><ETIME>0</ETIME><DEPLOY_ID>one-${vm.id}</DEPLOY_ID><TEMPLATE>${toXml(template)}</TEMPLATE><USER_TEMPLATE>${toXml(user)}</USER_TEMPLATE></VM>`;
  };

  const boot = async (vm: StandInVm, m: StandInMachines): Promise<void> => {
    const encoded = (vm.template.CONTEXT as Record<string, unknown> | undefined)?.START_SCRIPT_BASE64;
    const script = Buffer.from(typeof encoded === 'string' ? encoded : '', 'base64').toString('utf8');
    try {
      vm.ip = (await m.boot(`one-${vm.id}`, script)).address;
      vm.readyAt = Date.now() + (o.pendingMs ?? 30);
    } catch (e) {
      [vm.state, vm.lcm, vm.readyAt] = [OneStates.ACTIVE, OneLcm.BOOT_FAILURE, Infinity];
      throw new OneError(ACTION, `[one.vm.allocate] VM ${vm.id} did not boot: ${(e as Error).message}`);
    }
  };

  /** Halts the machine of a VM that is powered off or shutting down (no-op without machines). */
  const halt = async (vm: StandInVm): Promise<void> => {
    if (vm.state === OneStates.POWEROFF || vm.state === OneStates.DONE || vm.lcm === OneLcm.SHUTDOWN)
      await machines?.halt(`one-${vm.id}`);
  };

  const allocate = async (template: unknown): Promise<number> => {
    let parsed: Record<string, unknown>;
    try {
      parsed =
        (templateParser.parse(String(template)) as { TEMPLATE?: Record<string, unknown> }).TEMPLATE ?? {};
    } catch {
      throw new OneError(API, '[one.vm.allocate] Parse error: not an XML template');
    }
    if (!parsed.MEMORY || !parsed.CPU)
      throw new OneError(API, '[one.vm.allocate] No MEMORY or CPU in template');
    const id = seq++;
    const entries = Object.entries(parsed);
    const vm: StandInVm = {
      id,
      name: typeof parsed.NAME === 'string' ? parsed.NAME : `one-${id}`,
      stime: Math.floor(Date.now() / 1000),
      ip: machines ? '' : `192.0.2.${(id % 250) + 1}`,
      template: Object.fromEntries(entries.filter(([k]) => TEMPLATE_KEYS.has(k))),
      userTemplate: Object.fromEntries(
        entries.filter(([k]) => !TEMPLATE_KEYS.has(k)).map(([k, v]) => [k, typeof v === 'string' ? v : '']),
      ),
      state: OneStates.PENDING,
      lcm: OneLcm.LCM_INIT,
      readyAt: machines ? Infinity : Date.now() + (o.pendingMs ?? 30),
      goneAt: Infinity,
    };
    vms.set(id, vm);
    if (machines) await boot(vm, machines);
    return id;
  };

  const pool = (filter: unknown, start: unknown, end: unknown, state: unknown): string => {
    if (
      ![-3, -2, -1].includes(Number(filter)) ||
      start !== -1 ||
      end !== -1 ||
      ![-2, -1].includes(Number(state))
    )
      throw new OneError(API, '[one.vmpool.info] the stand-in knows filters -3..-1, no ranges, states -2/-1');
    const shown = [...vms.values()].filter((vm) => state === -2 || vm.state !== OneStates.DONE);
    return `<VM_POOL>${shown.map((vm) => vmXml(vm, false)).join('')}</VM_POOL>`;
  };

  const action = async (name: unknown, id: unknown): Promise<number> => {
    const vm = known(id, 'one.vm.action');
    if (name !== 'terminate-hard')
      throw new OneError(API, `[one.vm.action] the stand-in knows terminate-hard only`);
    if (vm.state === OneStates.DONE || vm.lcm === OneLcm.SHUTDOWN)
      throw new OneError(ACTION, `[one.vm.action] Error performing action "terminate-hard": wrong state`);
    [vm.state, vm.lcm, vm.goneAt] = [OneStates.ACTIVE, OneLcm.SHUTDOWN, Infinity];
    await halt(vm);
    vm.goneAt = Date.now() + (o.shutdownMs ?? 30);
    return vm.id;
  };

  const dispatch = (method: string, params: unknown[]): number | string | Promise<number | string> => {
    const [, a, b, c, d] = params;
    switch (method) {
      case 'one.vm.allocate':
        return allocate(a);
      case 'one.vmpool.info':
        return pool(a, b, c, d);
      case 'one.vm.info':
        return vmXml(known(a, method), true);
      case 'one.vm.action':
        return action(a, b);
      default:
        throw new OneError(API, `unknown method ${method}`);
    }
  };

  const handle = async (body: string): Promise<string> => {
    const call = (
      requestParser.parse(body) as {
        methodCall?: { methodName?: string; params?: { param?: { value: unknown }[] } };
      }
    ).methodCall;
    const method = call?.methodName ?? '';
    const params = (call?.params?.param ?? []).map((p) => paramValue(p.value));
    calls.push({ method, params });
    const at = failures.findIndex((f) => f.method === method);
    const failure = at >= 0 ? failures.splice(at, 1)[0] : undefined;
    if (failure && 'fault' in failure) return faultResponse(failure.fault.code, failure.fault.message);
    if (failure) return response([false, failure.error.message, failure.error.code]);
    try {
      if (params[0] !== session)
        throw new OneError(AUTH, `[${method}] User couldn't be authenticated, aborting call.`);
      tick();
      return response([true, await dispatch(method, params), 0]);
    } catch (e) {
      if (e instanceof OneError) return response([false, e.message, e.code]);
      return faultResponse(-500, (e as Error).message);
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/RPC2') {
        res.writeHead(404).end();
        return;
      }
      handle(Buffer.concat(chunks).toString('utf8')).then(
        (xml) => res.writeHead(200, { 'content-type': 'text/xml' }).end(xml),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}/RPC2`,
    session,
    calls,
    vms: () => {
      tick();
      return [...vms.values()];
    },
    vm: (id) => {
      tick();
      return vms.get(id);
    },
    setState: (id, state, lcm = OneLcm.LCM_INIT) => {
      const vm = known(id, 'setState');
      [vm.state, vm.lcm, vm.readyAt, vm.goneAt] = [state, lcm, Infinity, Infinity];
      halt(vm).catch((e: unknown) => console.error(`stand-in: machine one-${id} did not halt`, e));
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

/** Options of an OpenNebulaCloud on stand-in `s` (platform `p1`, a small template, short polls). */
export const oneStandInCloudOptions = (s: OneStandIn): OpenNebulaCloudOptions => ({
  platformId: 'p1',
  endpoint: s.endpoint,
  session: s.session,
  template: { cpu: 0.5, vcpu: 1, memoryMb: 512, imageId: 7, networkId: 3 },
  pollIntervalMs: 10,
  readyTimeoutMs: 5_000,
});
