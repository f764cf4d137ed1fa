import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud, type CloudNode } from '../index.js';
import { connectFrom } from '@cps/testing';
import { cloudContract, eventually, freshNodeId, nodeSpec } from '../cloud-contract.spec-helpers.js';
import { isAlive } from '../local/proc.js';
import {
  bridgeNamespace,
  namespaceOfAddress,
  parseNodeAddress,
  uplinkName,
  uplinkRootAddress,
} from './address-plan.js';
import { bridgeMac } from './app-networks.js';
import { links, namespaceExists, namespaces } from './kernel.js';
import { claimPlatformAddress, releasePlatformAddress, type PlatformAddress } from './platform-address.js';

/**
 * A host-mode node: serves its id on its address and first port, and writes what it sees of the
 * machine (its environment, the node directories it can list, the processes it can see).
 */
const NODE_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const dir = process.env.CPS_NODE_DIR;
const ls = (d) => { try { return fs.readdirSync(d); } catch (e) { return e.code; } };
fs.writeFileSync('seen.json', JSON.stringify({
  env: process.env,
  pid: process.pid,
  siblings: ls(path.dirname(dir)),
  processes: ls('/proc').filter((e) => /^[0-9]+$/.test(e)).length,
  tmp: ls('/tmp'),
  codeWrite: (() => {
    if (!process.argv[1]) return 'none';
    try { fs.writeFileSync(path.join(path.dirname(process.argv[1]), 'probe'), 'x'); return 'written'; } catch (e) { return e.code; }
  })(),
  ns: Object.fromEntries(['ipc', 'uts', 'pid', 'mnt', 'net'].map((n) => [n, fs.readlinkSync('/proc/self/ns/' + n)])),
}));
fs.appendFileSync(path.join(dir, 'data.txt'), 'boot\\n');
require('node:net').createServer((s) => s.end(process.env.CPS_NODE_ID)).listen(Number(process.env.CPS_PORT_FROM), process.env.CPS_NODE_ADDRESS);
`;

const hostMode = LocalCloud.hostModeUnavailable() === undefined;
const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'cps-host-'));
  dirs.push(d);
  return d;
};

const listen = (host: string, port = 0): Promise<Server> =>
  new Promise((resolve, reject) => {
    const s = createServer((c) => c.end('root')).listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
const portOf = (s: Server): number => (s.address() as { port: number }).port;

const nsOf = (node: CloudNode): string => {
  const ns = namespaceOfAddress(node.address ?? '');
  if (!ns) throw new Error(`not a host-mode address: ${node.address}`);
  return ns;
};

describe.skipIf(!hostMode)('host mode of the local cloud', () => {
  let platform: PlatformAddress;
  let nats: Server;
  const tag = `cps-t${process.pid.toString(36)}`;
  const clouds: LocalCloud[] = [];
  const hostCloud = (dir = tempDir()): LocalCloud => {
    const cloud = new LocalCloud({
      dir,
      command: () => ({ command: process.execPath, args: ['-e', NODE_SCRIPT] }),
      stopGraceMs: 1_000,
      host: { nats: { address: platform.address, port: portOf(nats) } },
    });
    clouds.push(cloud);
    return cloud;
  };

  beforeAll(async () => {
    platform = await claimPlatformAddress(tag);
    nats = await listen(platform.address);
  });
  afterAll(async () => {
    for (const c of clouds) for (const n of await c.list()) await c.destroy(n.nodeId);
    nats?.close();
    await releasePlatformAddress(tag);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const seen = async (cloudDir: string, node: CloudNode): Promise<Record<string, unknown>> => {
    const file = join(cloudDir, 'nodes', node.nodeId, 'seen.json');
    await eventually(async () => existsSync(file), Boolean);
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  };

  it('gives each node its own address in its application network, the fixed port range, its own files and processes only', async () => {
    const dir = tempDir();
    const cloud = hostCloud(dir);
    expect(cloud.mode).toBe('host');
    const marker = join(tmpdir(), `cps-host-marker-${process.pid}`);
    writeFileSync(marker, 'the host');
    dirs.push(marker);
    const a = await cloud.create(nodeSpec(freshNodeId(), { appId: 'appa' }));
    const b = await cloud.create(nodeSpec(freshNodeId(), { appId: 'appa' }));
    expect(a.address).toMatch(/^198\.18\.\d+\.2$/);
    expect(b.address).toMatch(/^198\.18\.\d+\.3$/);
    expect(a.ports).toEqual({ from: 20_000, to: 20_019 });
    const s = await seen(dir, a);
    const env = s['env'] as Record<string, string>;
    expect(env['CPS_NODE_ADDRESS']).toBe(a.address);
    expect(env['CPS_PORT_FROM']).toBe('20000');
    // its own directory only: the other node's is hidden, and so is everything else of the cloud
    expect(s['siblings']).toEqual([a.nodeId]);
    expect(s['pid']).toBe(1);
    expect(s['processes']).toBeLessThan(5);
    // a /tmp of its own (the node's directory is under the host's /tmp in this test, and mounted back)
    expect(s['tmp']).not.toContain(basename(marker));
    // namespaces of its own: none shared with the machine's (this process's)
    for (const [kind, id] of Object.entries(s['ns'] as Record<string, string>))
      expect(id, kind).not.toBe(readlinkSync(`/proc/self/ns/${kind}`));
    // node to node inside the application
    expect(
      await eventually(
        async () => connectFrom(nsOf(a), b.address as string, 20_000),
        (r) => r !== 'ECONNREFUSED',
      ),
    ).toBe(`open ${b.nodeId}`);
  });

  it('runs a program kept under /tmp (a checkout there): its code stays visible, read-only, while the rest of /tmp is private', async () => {
    const code = tempDir();
    writeFileSync(join(code, 'node.js'), NODE_SCRIPT);
    writeFileSync(join(tmpdir(), `cps-host-other-${process.pid}`), 'not for nodes');
    dirs.push(join(tmpdir(), `cps-host-other-${process.pid}`));
    const dir = tempDir();
    const cloud = new LocalCloud({
      dir,
      command: () => ({ command: process.execPath, args: [join(code, 'node.js')] }),
      stopGraceMs: 1_000,
      host: { nats: { address: platform.address, port: portOf(nats) }, code },
    });
    clouds.push(cloud);
    const a = await cloud.create(nodeSpec(freshNodeId(), { appId: 'codetmp' }));
    const s = await seen(dir, a);
    expect(s['tmp']).not.toContain(`cps-host-other-${process.pid}`);
    // the node ran from the kept code, which it cannot change
    expect(s['codeWrite']).toBe('EROFS');
  });

  it('lets nodes of one application reach each other and NATS, nothing else: not another application, not the host', async () => {
    const cloud = hostCloud();
    const a = await cloud.create(nodeSpec(freshNodeId(), { appId: 'isola' }));
    const a2 = await cloud.create(nodeSpec(freshNodeId(), { appId: 'isola' }));
    const b = await cloud.create(nodeSpec(freshNodeId(), { appId: 'isolb' }));
    const networkOf = (n: CloudNode): number => parseNodeAddress(n.address as string)?.network as number;
    expect(networkOf(a)).toBe(networkOf(a2));
    expect(networkOf(a)).not.toBe(networkOf(b));
    const up = await eventually(
      async () => connectFrom(nsOf(a2), a.address as string, 20_000),
      (r) => r !== 'ECONNREFUSED',
    );
    expect(up).toBe(`open ${a.nodeId}`);
    await eventually(
      async () => connectFrom(nsOf(b), b.address as string, 20_000),
      (r) => r.startsWith('open'),
    );
    // across applications: refused at once, both ways
    expect(await connectFrom(nsOf(b), a.address as string, 20_000)).toMatch(
      /^(EHOSTUNREACH|ENETUNREACH|ECONNREFUSED)$/,
    );
    expect(await connectFrom(nsOf(a), b.address as string, 20_000)).toMatch(
      /^(EHOSTUNREACH|ENETUNREACH|ECONNREFUSED)$/,
    );
    // NATS at the platform address, and only its port there
    expect(await connectFrom(nsOf(a), platform.address, portOf(nats))).toBe('open root');
    const other = await listen(platform.address);
    const host = await listen(uplinkRootAddress(networkOf(a)));
    try {
      expect(await connectFrom(nsOf(a), platform.address, portOf(other))).toMatch(
        /^(ECONNREFUSED|EHOSTUNREACH)$/,
      );
      expect(await connectFrom(nsOf(a), uplinkRootAddress(networkOf(a)), portOf(host))).toMatch(
        /^(ECONNREFUSED|EHOSTUNREACH)$/,
      );
      // a node's 127.0.0.1 is its own loopback, not the host's
      expect(await connectFrom(nsOf(a), '127.0.0.1', portOf(other))).toBe('ECONNREFUSED');
    } finally {
      other.close();
      host.close();
    }
    // the host reaches a node (a user opens the application's URL)
    const fromHost = await new Promise<string>((resolve) => {
      const s = connect({ host: a.address as string, port: 20_000 });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('end', () => resolve(got));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(fromHost).toBe(a.nodeId);
  });

  it('keeps a node stopped with its data and address, leaving no namespace; destroying the last node removes the network', async () => {
    const dir = tempDir();
    const cloud = hostCloud(dir);
    const a = await cloud.create(nodeSpec(freshNodeId(), { appId: 'downup' }));
    const network = parseNodeAddress(a.address as string)?.network as number;
    await seen(dir, a);
    await cloud.stop(a.nodeId);
    expect((await cloud.get(a.nodeId))?.state).toBe('stopped');
    expect(namespaces(bridgeNamespace(network))).toEqual([]);
    expect(await links(uplinkName(network))).not.toContain(uplinkName(network));
    expect(execFileSync('ip', ['route', 'show', `198.18.${network}.0/24`], { encoding: 'utf8' })).toBe('');
    const again = await cloud.start(nodeSpec(a.nodeId, { appId: 'downup' }));
    expect(again.address).toBe(a.address);
    await eventually(
      async () => connectFrom(nsOf(again), again.address as string, 20_000),
      (r) => r === `open ${a.nodeId}`,
    );
    expect(readFileSync(join(dir, 'nodes', a.nodeId, 'data.txt'), 'utf8')).toBe('boot\nboot\n');
    await cloud.destroy(a.nodeId);
    expect(namespaceExists(nsOf(a))).toBe(false);
    expect(namespaces(bridgeNamespace(network))).toEqual([]);
    expect(existsSync(join(dir, 'networks', 'downup.json'))).toBe(false);
  });

  it("keeps the bridge's address while nodes come and go: the other nodes' gateway never moves", async () => {
    const dir = tempDir();
    const cloud = hostCloud(dir);
    const a = await cloud.create(nodeSpec(freshNodeId(), { appId: 'bridgemac' }));
    const network = parseNodeAddress(a.address as string)?.network as number;
    const mac = () =>
      execFileSync('ip', ['-n', bridgeNamespace(network), '-br', 'link', 'show', 'dev', 'br0'], {
        encoding: 'utf8',
      })
        .trim()
        .split(/\s+/)[2];
    const first = mac();
    expect(first).toBe(bridgeMac(network));
    const others: CloudNode[] = [];
    for (let i = 0; i < 3; i++)
      others.push(await cloud.create(nodeSpec(freshNodeId(), { appId: 'bridgemac' })));
    await cloud.destroy(others[1]!.nodeId);
    others.push(await cloud.create(nodeSpec(freshNodeId(), { appId: 'bridgemac' })));
    expect(mac()).toBe(first);
    for (const n of [a, ...others]) await cloud.destroy(n.nodeId).catch(() => undefined);
  });

  it('sees a node whose whole namespace was killed as stopped, and starts it again at its address', async () => {
    const dir = tempDir();
    const cloud = hostCloud(dir);
    const a = await cloud.create(nodeSpec(freshNodeId(), { appId: 'killns' }));
    await seen(dir, a);
    const record = JSON.parse(readFileSync(join(dir, 'nodes', a.nodeId, 'node.json'), 'utf8')) as {
      cgroup: string;
    };
    writeFileSync(join(record.cgroup, 'cgroup.kill'), '1');
    execFileSync('ip', ['netns', 'delete', nsOf(a)]);
    await eventually(
      async () => (await cloud.get(a.nodeId))?.state,
      (s) => s === 'stopped',
    );
    expect(isAlive(Number(a.instanceId))).toBe(false);
    const again = await cloud.start(nodeSpec(a.nodeId, { appId: 'killns' }));
    expect(again.address).toBe(a.address);
    expect(
      await eventually(
        async () => connectFrom(nsOf(again), again.address as string, 20_000),
        (r) => r.startsWith('open'),
      ),
    ).toBe(`open ${a.nodeId}`);
  });
});

if (hostMode)
  cloudContract('local host mode', async () => {
    const tag = `cps-c${process.pid.toString(36)}`;
    const platform = await claimPlatformAddress(tag);
    const cloud = new LocalCloud({
      dir: tempDir(),
      command: () => ({ command: process.execPath, args: ['-e', NODE_SCRIPT] }),
      stopGraceMs: 1_000,
      host: { nats: { address: platform.address, port: 4222 } },
    });
    return {
      cloud,
      isRunning: async (node) => isAlive(Number(node.instanceId)),
      crash: async (node) => {
        process.kill(Number(node.instanceId), 'SIGKILL');
      },
      cleanup: async () => releasePlatformAddress(tag),
    };
  });
