import { channel } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { cloudContract, eventually, freshNodeId, nodeSpec } from '../cloud-contract.spec-helpers.js';
import { Ec2Cloud, type Ec2CloudOptions } from './ec2-cloud.js';
import {
  ec2StandInCloudOptions,
  startEc2StandIn,
  type Ec2StandIn,
  type Ec2StandInOptions,
} from './testing/ec2-stand-in.spec-helpers.js';

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

const standIns: Ec2StandIn[] = [];
const standIn = async (o: Ec2StandInOptions = {}): Promise<Ec2StandIn> => {
  const s = await startEc2StandIn(o);
  standIns.push(s);
  return s;
};
afterAll(async () => {
  for (const s of standIns) await s.close();
});

const ec2Cloud = (s: Ec2StandIn, o: Partial<Ec2CloudOptions> = {}): Ec2Cloud =>
  new Ec2Cloud({ ...ec2StandInCloudOptions(s), ...o });

cloudContract('ec2 (against a local EC2 stand-in)', async () => {
  const s = await standIn();
  return {
    cloud: ec2Cloud(s),
    isRunning: async (node) => s.instance(node.instanceId)?.state === 'running',
    crash: async (node) => s.setState(node.instanceId, 'stopped'),
    cleanup: async () => undefined,
  };
});

describe('Ec2Cloud', () => {
  let s: Ec2StandIn;
  beforeAll(async () => {
    s = await standIn();
  });

  it('launches one tagged instance with the configured image, type, groups, key and subnet', async () => {
    const cloud = ec2Cloud(s, { keyName: 'ops', subnetId: 'subnet-1' });
    const spec = nodeSpec(freshNodeId(), { kind: 'manager', role: 'lead' });
    const node = await cloud.create(spec);
    const i = s.instance(node.instanceId)!;
    expect(i).toMatchObject({
      imageId: 'ami-0123456789abcdef0',
      instanceType: 't3.micro',
      securityGroupIds: ['sg-0123456789abcdef0'],
      keyName: 'ops',
      subnetId: 'subnet-1',
    });
    expect(Object.fromEntries(i.tags)).toEqual({
      Name: `cps-p1-${spec.nodeId}`,
      'cps:platform': 'p1',
      'cps:node': spec.nodeId,
      'cps:app': 'app1',
      'cps:service': 'svc1',
      'cps:kind': 'manager',
      'cps:role': 'lead',
    });
    expect(node).toMatchObject({ kind: 'manager', address: i.publicIp, createdAt: i.launchTime });
    const run = s.requests.filter(
      (r) => r.action === 'RunInstances' && r.params.get('ClientToken') === i.clientToken,
    );
    expect(run).toHaveLength(1);
    expect(i.clientToken).toMatch(/^cps-[A-Za-z0-9_-]{40}$/);
  });

  it('puts the contextualization in user-data as a boot script, with no private key in it', async () => {
    const cloud = ec2Cloud(s, { startCommand: ['cps-agent', '--join'] });
    const files = { 'enroll.token': 'one-time-token', 'certs/ca.pem': '-----BEGIN CERTIFICATE-----\nMIIB\n' };
    const spec = nodeSpec(freshNodeId(), {
      contextualization: { env: { CPS_BUS_URL: "tls://bus:4222 'x'" }, files },
    });
    const node = await cloud.create(spec);
    const userData = s.instance(node.instanceId)!.userData;
    expect(userData).toMatch(/^#!\/bin\/sh\n/);
    expect(userData).not.toContain('PRIVATE KEY');
    expect(userData).toContain(Buffer.from('one-time-token').toString('base64'));
    expect(userData).toContain(`'cps-agent' '--join'`);
    expect(userData).toContain(`CPS_NODE_ID='${spec.nodeId}'`);
  });

  it.each([
    [
      'a PEM private key in a file',
      { files: { 'node.key': '-----BEGIN PRIVATE KEY-----\nMIIE\n' }, env: {} },
      'files["node.key"]',
    ],
    ['an RSA key in a file', { files: { k: 'x\n-----BEGIN RSA PRIVATE KEY-----\n' }, env: {} }, 'files["k"]'],
    ['an nkey seed in env', { files: {}, env: { SEED: `SU${'A'.repeat(56)}` } }, 'env["SEED"]'],
  ])('refuses %s with code validation and launches nothing', async (_, contextualization, path) => {
    const cloud = ec2Cloud(s);
    const spec = nodeSpec(freshNodeId(), { contextualization });
    const before = s.requests.filter((r) => r.action === 'RunInstances').length;
    const error: unknown = await cloud.create(spec).catch((e: unknown) => e);
    expect(hasErrorCode(error, 'validation') && error.issues.map((i) => [i.path, i.code])).toEqual([
      [`$.contextualization.${path}`, 'secret'],
    ]);
    expect(s.requests.filter((r) => r.action === 'RunInstances')).toHaveLength(before);
    expect(await cloud.get(spec.nodeId)).toBeUndefined();
  });

  it('refuses a contextualization too large for user-data with code validation', async () => {
    const cloud = ec2Cloud(s);
    const spec = nodeSpec(freshNodeId(), {
      contextualization: { env: {}, files: { big: 'x'.repeat(13_000) } },
    });
    await expect(cloud.create(spec)).rejects.toMatchObject({
      code: 'validation',
      issues: [{ code: 'too_large' }],
    });
  });

  it('lists every node across DescribeInstances pages (NextToken)', async () => {
    const paged = await standIn({ pageSize: 2 });
    const cloud = ec2Cloud(paged, { platformId: 'paged' });
    const ids = [freshNodeId(), freshNodeId(), freshNodeId(), freshNodeId(), freshNodeId()];
    for (const id of ids) await cloud.create(nodeSpec(id));
    await ec2Cloud(paged, { platformId: 'other' }).create(nodeSpec(freshNodeId()));
    const before = paged.requests.length;
    expect((await cloud.list()).map((n) => n.nodeId).sort()).toEqual([...ids].sort());
    const listed = paged.requests.slice(before);
    expect(listed.map((r) => r.action)).toEqual(Array(3).fill('DescribeInstances'));
    expect(listed.map((r) => r.params.has('NextToken'))).toEqual([false, true, true]);
  });

  it('gets one instance from a RunInstances retried after a lost reply (same ClientToken)', async () => {
    const cloud = ec2Cloud(s);
    const spec = nodeSpec();
    s.failNext({
      action: 'RunInstances',
      status: 503,
      code: 'Unavailable',
      message: 'lost',
      afterEffect: true,
    });
    const node = await cloud.create(spec);
    const runs = s.requests.filter((r) => r.action === 'RunInstances').slice(-2);
    expect(runs.map((r) => r.params.get('ClientToken'))).toEqual([
      s.instance(node.instanceId)!.clientToken,
      s.instance(node.instanceId)!.clientToken,
    ]);
    expect(s.instances().filter((i) => i.tags.get('cps:node') === spec.nodeId)).toHaveLength(1);
    expect(node.state).toBe('running');
  });

  it('launches a new instance for a node re-created with the same spec after its destroy', async () => {
    const cloud = ec2Cloud(s);
    const spec = nodeSpec();
    const first = await cloud.create(spec);
    await cloud.destroy(spec.nodeId);
    const second = await cloud.create(spec);
    expect(second.instanceId).not.toBe(first.instanceId);
    expect(second.state).toBe('running');
    expect((await cloud.get(spec.nodeId))?.instanceId).toBe(second.instanceId);
  });

  it('maps EC2 states: pending, running, stopping and stopped show; shutting-down and terminated are gone', async () => {
    const cloud = ec2Cloud(s, { platformId: 'states' });
    const states = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] as const;
    const nodes = await Promise.all(states.map(() => cloud.create(nodeSpec())));
    states.forEach((state, n) => s.setState(nodes[n]!.instanceId, state));
    const seen = new Map((await cloud.list()).map((n) => [n.instanceId, n.state]));
    expect(nodes.map((n) => seen.get(n.instanceId))).toEqual([
      'pending',
      'running',
      'stopped',
      'stopped',
      undefined,
      undefined,
    ]);
    expect(await Promise.all(nodes.map(async (n) => (await cloud.get(n.nodeId))?.state))).toEqual([
      'pending',
      'running',
      'stopped',
      'stopped',
      undefined,
      undefined,
    ]);
  });

  it('fails with code unavailable when a launched instance ends while pending', async () => {
    const slow = await standIn({ pendingMs: 60_000 });
    const cloud = ec2Cloud(slow);
    const creating = cloud.create(nodeSpec());
    const [i] = await eventually(
      async () => slow.instances(),
      (x) => x.length === 1,
    );
    slow.setState(i!.instanceId, 'terminated');
    await expect(creating).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('waits while an instance is pending, and gives up with code timeout; a retry finds the same instance', async () => {
    const slow = await standIn({ pendingMs: 60_000 });
    const cloud = ec2Cloud(slow, { readyTimeoutMs: 100 });
    const spec = nodeSpec();
    await expect(cloud.create(spec)).rejects.toMatchObject({ code: 'timeout' });
    const [i] = slow.instances();
    slow.setState(i!.instanceId, 'running');
    expect(await cloud.create(spec)).toMatchObject({ instanceId: i!.instanceId, state: 'running' });
    expect(slow.instances()).toHaveLength(1);
  });

  it('destroys a node that is already gone, or unknown to EC2, without error', async () => {
    const cloud = ec2Cloud(s);
    const node = await cloud.create(nodeSpec());
    s.setState(node.instanceId, 'terminated');
    await cloud.destroy(node.nodeId);
    await cloud.destroy(freshNodeId());
  });

  it('signs every request with the configured credentials (SigV4)', async () => {
    const before = s.requests.length;
    await ec2Cloud(s).list();
    const seen = s.requests.slice(before);
    expect(seen.length).toBeGreaterThan(0);
    for (const r of seen)
      expect(r.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${s.accessKeyId}/`));
  });

  it('fails with code unavailable on refused credentials, naming neither key in the error', async () => {
    const wrongSecret = 'wrong-secret-0123456789abcdefghijklmnopqrst';
    const cloud = ec2Cloud(s, {
      credentials: { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: wrongSecret },
    });
    const error: unknown = await cloud.list().catch((e: unknown) => e);
    expect(hasErrorCode(error, 'unavailable')).toBe(true);
    expect((error as Error).message).toMatch(/AuthFailure/);
    const seen = inspect(error, { depth: 10, showHidden: true });
    expect(seen).not.toContain('AKIAWRONGWRONGWRONG1');
    expect(seen).not.toContain(wrongSecret);
    expect(inspect(cloud, { depth: 10, showHidden: true })).not.toContain(wrongSecret);
  });

  it('scrubs the credentials from an error message that echoes them', async () => {
    const cloud = ec2Cloud(s);
    const message = `signature for ${s.accessKeyId} with ${s.secretAccessKey} does not match`;
    s.failNext({ action: 'DescribeInstances', status: 403, code: 'SignatureDoesNotMatch', message });
    const error: unknown = await cloud.list().catch((e: unknown) => e);
    expect(hasErrorCode(error, 'unavailable')).toBe(true);
    const seen = inspect(error, { depth: 10, showHidden: true });
    expect(seen).toContain('SignatureDoesNotMatch');
    expect(seen).not.toContain(s.accessKeyId);
    expect(seen).not.toContain(s.secretAccessKey);
  });

  it('refuses invalid options with code validation', () => {
    expect(() => ec2Cloud(s, { platformId: 'A.B' })).toThrow(expect.objectContaining({ code: 'validation' }));
    expect(() => ec2Cloud(s, { imageId: '' })).toThrow(expect.objectContaining({ code: 'validation' }));
  });
});
