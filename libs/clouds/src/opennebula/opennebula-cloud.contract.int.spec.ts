import { channel } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { cloudContract, eventually, freshNodeId, nodeSpec } from '../cloud-contract.spec-helpers.js';
import { OpenNebulaCloud, type OpenNebulaCloudOptions } from './opennebula-cloud.js';
import {
  OneLcm,
  OneStates,
  oneStandInCloudOptions,
  startOneStandIn,
  type OneStandIn,
  type OneStandInOptions,
} from './testing/opennebula-stand-in.spec-helpers.js';

const remotes = new Set<string>();
const onSocket = (message: unknown): void => {
  const socket = (message as { socket: Socket }).socket;
  socket.once('connect', () => remotes.add(socket.remoteAddress ?? '?'));
};
channel('net.client.socket').subscribe(onSocket);
afterAll(() => {
  channel('net.client.socket').unsubscribe(onSocket);
  expect([...remotes]).toEqual(['127.0.0.1']);
});

const standIns: OneStandIn[] = [];
const standIn = async (o: OneStandInOptions = {}): Promise<OneStandIn> => {
  const s = await startOneStandIn(o);
  standIns.push(s);
  return s;
};
afterAll(async () => {
  for (const s of standIns) await s.close();
});

const oneCloud = (s: OneStandIn, o: Partial<OpenNebulaCloudOptions> = {}): OpenNebulaCloud =>
  new OpenNebulaCloud({ ...oneStandInCloudOptions(s), ...o });

const startScriptOf = (s: OneStandIn, id: string): string => {
  const context = s.vm(Number(id))!.template.CONTEXT as Record<string, string>;
  return Buffer.from(context.START_SCRIPT_BASE64!, 'base64').toString('utf8');
};

cloudContract('opennebula (against a local XML-RPC stand-in)', async () => {
  const s = await standIn();
  return {
    cloud: oneCloud(s),
    isRunning: async (node) => {
      const vm = s.vm(Number(node.instanceId));
      return vm?.state === OneStates.ACTIVE && vm.lcm === OneLcm.RUNNING;
    },
    crash: async (node) => s.setState(Number(node.instanceId), OneStates.POWEROFF),
    cleanup: async () => undefined,
  };
});

describe('OpenNebulaCloud', () => {
  let s: OneStandIn;
  beforeAll(async () => {
    s = await standIn();
  });

  it('allocates a named, labelled VM from the template basics, its boot script in CONTEXT', async () => {
    const cloud = oneCloud(s, { startCommand: ['cps-agent'] });
    const files = { 'enroll.token': 'one-time-token' };
    const spec = nodeSpec(freshNodeId(), { role: 'db', contextualization: { env: { A: 'b' }, files } });
    const node = await cloud.create(spec);
    const vm = s.vm(Number(node.instanceId))!;
    expect(vm.name).toBe(`cps-p1-${spec.nodeId}`);
    expect(vm.template).toMatchObject({
      CPU: '0.5',
      VCPU: '1',
      MEMORY: '512',
      DISK: { IMAGE_ID: '7' },
      NIC: { NETWORK_ID: '3' },
      CONTEXT: { NETWORK: 'YES' },
    });
    expect(vm.userTemplate).toEqual({
      CPS_PLATFORM: 'p1',
      CPS_NODE: spec.nodeId,
      CPS_APP: 'app1',
      CPS_SERVICE: 'svc1',
      CPS_KIND: 'agent',
      CPS_ROLE: 'db',
    });
    expect(node).toMatchObject({
      state: 'running',
      address: vm.ip,
      createdAt: new Date(vm.stime * 1000).toISOString(),
    });
    const script = startScriptOf(s, node.instanceId);
    expect(script).toMatch(/^#!\/bin\/sh\n/);
    expect(script).toContain(Buffer.from('one-time-token').toString('base64'));
    expect(script).toContain(`'cps-agent'`);
    expect(script).not.toContain('PRIVATE KEY');
  });

  it.each([
    [
      'a PEM private key in a file',
      { files: { 'n.key': '-----BEGIN EC PRIVATE KEY-----\n' }, env: {} },
      'files["n.key"]',
    ],
    ['an nkey seed in env', { files: {}, env: { NKEY: `SU${'B'.repeat(56)}` } }, 'env["NKEY"]'],
  ])('refuses %s with code validation and allocates nothing', async (_, contextualization, path) => {
    const before = s.calls.filter((c) => c.method === 'one.vm.allocate').length;
    const error: unknown = await oneCloud(s)
      .create(nodeSpec(freshNodeId(), { contextualization }))
      .catch((e: unknown) => e);
    expect(hasErrorCode(error, 'validation') && error.issues.map((i) => [i.path, i.code])).toEqual([
      [`$.contextualization.${path}`, 'secret'],
    ]);
    expect(s.calls.filter((c) => c.method === 'one.vm.allocate')).toHaveLength(before);
  });

  it('creates idempotently by name: a second driver (another process) finds the VM', async () => {
    const spec = nodeSpec();
    const node = await oneCloud(s).create(spec);
    const before = s.calls.filter((c) => c.method === 'one.vm.allocate').length;
    expect(await oneCloud(s).create(spec)).toEqual(node);
    expect(s.calls.filter((c) => c.method === 'one.vm.allocate')).toHaveLength(before);
  });

  it('keeps the lowest VM id when two drivers allocate for one node at once, ending the other', async () => {
    const spec = nodeSpec();
    const [a, b] = await Promise.all([oneCloud(s).create(spec), oneCloud(s).create(spec)]);
    expect(b.instanceId).toBe(a.instanceId);
    const mine = s.vms().filter((vm) => vm.name === `cps-p1-${spec.nodeId}`);
    const live = mine.filter((vm) => vm.state !== OneStates.DONE && vm.lcm !== OneLcm.SHUTDOWN);
    expect(live.map((vm) => String(vm.id))).toEqual([a.instanceId]);
    expect(Math.min(...mine.map((vm) => vm.id))).toBe(Number(a.instanceId));
    expect((await oneCloud(s).list()).filter((n) => n.nodeId === spec.nodeId)).toHaveLength(1);
  });

  it('keeps to its platform, even where names collide (platform "p1-x" vs "p1")', async () => {
    const other = oneCloud(s, { platformId: 'p1-x' });
    const spec = nodeSpec(`y${freshNodeId()}`);
    const theirs = await other.create(spec);
    const ours = oneCloud(s);
    expect((await ours.list()).map((n) => n.instanceId)).not.toContain(theirs.instanceId);
    expect(await ours.get(`x-${spec.nodeId}`)).toBeUndefined();
    expect((await other.get(spec.nodeId))?.instanceId).toBe(theirs.instanceId);
  });

  it('maps OpenNebula states: pending, running, powered off (stopped), failed; terminating and done are gone', async () => {
    const cloud = oneCloud(s, { platformId: 'states' });
    const states: [number, number][] = [
      [OneStates.PENDING, OneLcm.LCM_INIT],
      [OneStates.ACTIVE, OneLcm.BOOT],
      [OneStates.ACTIVE, OneLcm.RUNNING],
      [OneStates.POWEROFF, OneLcm.LCM_INIT],
      [OneStates.ACTIVE, OneLcm.BOOT_FAILURE],
      [OneStates.ACTIVE, OneLcm.SHUTDOWN],
      [OneStates.DONE, OneLcm.LCM_INIT],
    ];
    const nodes = await Promise.all(states.map(() => cloud.create(nodeSpec())));
    states.forEach(([state, lcm], n) => s.setState(Number(nodes[n]!.instanceId), state, lcm));
    const seen = new Map((await cloud.list()).map((n) => [n.instanceId, n.state]));
    expect(nodes.map((n) => seen.get(n.instanceId))).toEqual([
      'pending',
      'pending',
      'running',
      'stopped',
      'failed',
      undefined,
      undefined,
    ]);
  });

  it('maps an XML-RPC fault to code unavailable, with the fault message', async () => {
    const cloud = oneCloud(s);
    s.failNext({ method: 'one.vmpool.info', fault: { code: 4, message: 'too many open files' } });
    const error: unknown = await cloud.list().catch((e: unknown) => e);
    expect(hasErrorCode(error, 'unavailable')).toBe(true);
    expect((error as Error).message).toContain('one.vmpool.info');
    expect((error as Error).message).toContain('XML-RPC fault 4: too many open files');
  });

  it("maps OpenNebula's [false, message, code] to code unavailable naming the error", async () => {
    const cloud = oneCloud(s);
    s.failNext({ method: 'one.vm.allocate', error: { code: 0x2000, message: 'Cannot get IP/MAC lease' } });
    const spec = nodeSpec();
    await expect(cloud.create(spec)).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringMatching(/one\.vm\.allocate failed \(INTERNAL\): Cannot get IP\/MAC lease/),
    });
    expect(await cloud.get(spec.nodeId)).toBeUndefined();
  });

  it('fails with code unavailable on a wrong session, never naming the session or password', async () => {
    const session = 'cps-admin:wrong-password-0123456789';
    const cloud = oneCloud(s, { session });
    const error: unknown = await cloud.list().catch((e: unknown) => e);
    expect(hasErrorCode(error, 'unavailable')).toBe(true);
    expect((error as Error).message).toMatch(/AUTHENTICATION/);
    const seen = inspect(error, { depth: 10, showHidden: true });
    expect(seen).not.toContain('wrong-password-0123456789');
    expect(inspect(cloud, { depth: 10, showHidden: true })).not.toContain('wrong-password');
  });

  it('scrubs the session from a fault that echoes it', async () => {
    const cloud = oneCloud(s);
    s.failNext({ method: 'one.vmpool.info', fault: { code: 1, message: `bad session ${s.session}` } });
    const seen = inspect(await cloud.list().catch((e: unknown) => e), { depth: 10, showHidden: true });
    expect(seen).toContain('bad session ***');
    expect(seen).not.toContain(s.session.split(':')[1]);
  });

  it('fails with code unavailable when the endpoint does not answer', async () => {
    const gone = await standIn();
    await gone.close();
    await expect(oneCloud(gone).list()).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('fails with code unavailable when a VM fails while booting', async () => {
    const slow = await standIn({ pendingMs: 60_000 });
    const creating = oneCloud(slow).create(nodeSpec());
    const [vm] = await eventually(
      async () => slow.vms(),
      (x) => x.length === 1,
    );
    slow.setState(vm!.id, OneStates.DONE);
    await expect(creating).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('destroys a VM that is already done, or unknown, without error', async () => {
    const cloud = oneCloud(s);
    const node = await cloud.create(nodeSpec());
    s.setState(Number(node.instanceId), OneStates.DONE);
    await cloud.destroy(node.nodeId);
    await cloud.destroy(freshNodeId());
  });

  it('refuses invalid options with code validation', () => {
    const bad: Partial<OpenNebulaCloudOptions>[] = [
      { platformId: 'P' },
      { endpoint: 'ftp://x' },
      { session: 'nopassword' },
      { template: { cpu: 0, memoryMb: 512, imageId: 1, networkId: 1 } },
      { template: { cpu: 1, memoryMb: 1.5, imageId: 1, networkId: 1 } },
      { template: { cpu: 1, memoryMb: 512, imageId: -1, networkId: 1 } },
    ];
    for (const o of bad)
      expect(() => oneCloud(s, o)).toThrow(expect.objectContaining({ code: 'validation' }));
  });
});
