import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freshNodeId, nodeSpec } from '../cloud-contract.spec-helpers.js';
import { bridgeNamespace, parseNodeAddress } from '../host/address-plan.js';
import { namespaceExists, namespaces } from '../host/kernel.js';
import {
  claimPlatformAddress,
  releasePlatformAddress,
  type PlatformAddress,
} from '../host/platform-address.js';
import { LocalCloud } from '../local/local-cloud.js';
import { isAlive } from '../local/proc.js';
import type { CloudNode } from '../types.js';
import { bootingClouds, leftovers, type BootingCloud } from './testing/booting-clouds.spec-helpers.js';
import { MACHINE_DISK, StandInMachines } from './testing/machines.spec-helpers.js';

/**
 * The node an instance boots: serves its id on its address and first port, asks `PEER` (another
 * instance's address) for its id when given one, and reports what it sees to `REPORT_TO` (the test's
 * server on the platform address, standing for NATS), keeping that connection open.
 */
const NODE_SCRIPT = `
const net = require("node:net");
const fs = require("node:fs");
const env = process.env;
const ask = (host) => new Promise((resolve) => {
  const c = net.connect({ host, port: 20000 });
  let got = "";
  c.on("data", (d) => (got += d));
  c.on("end", () => resolve(got));
  c.on("error", (e) => resolve(e.code));
});
net.createServer((s) => s.end(env.CPS_NODE_ID)).listen(Number(env.CPS_PORT_FROM), env.CPS_NODE_ADDRESS, async () => {
  const report = {
    nodeId: env.CPS_NODE_ID,
    env,
    cwd: process.cwd(),
    disk: fs.readdirSync("${MACHINE_DISK}").sort(),
    files: fs.readdirSync(env.CPS_NODE_DIR).sort(),
    pid: process.pid,
    peer: env.PEER ? await ask(env.PEER) : undefined,
  };
  const [host, port] = env.REPORT_TO.split(":");
  const c = net.connect({ host, port: Number(port) }, () => c.write(JSON.stringify(report) + "\\n"));
  c.on("error", (e) => { console.error(e); process.exit(1); });
});
`;

interface Report {
  readonly nodeId: string;
  readonly env: Record<string, string>;
  readonly cwd: string;
  readonly disk: string[];
  readonly files: string[];
  readonly pid: number;
  readonly peer?: string;
}

const READY_MS = 10_000;
const START = [process.execPath, '-e', NODE_SCRIPT];

/** Nodes' reports, one JSON line per connection, by node id. */
const reportServer = async (host: string): Promise<{ server: Server; reports: Map<string, Report> }> => {
  const reports = new Map<string, Report>();
  const server = createServer((socket) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (!text.endsWith('\n')) return;
      const r = JSON.parse(text) as Report;
      reports.set(r.nodeId, r);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, reports };
};

const hostMode = LocalCloud.hostModeUnavailable() === undefined;

describe.skipIf(!hostMode).each(['ec2', 'opennebula'] as const)(
  '%s stand-in booting its instances',
  (kind) => {
    const tag = `cps-i${process.pid.toString(36)}${kind}`;
    let platform: PlatformAddress;
    let reports: Map<string, Report>;
    let server: Server;
    let machines: StandInMachines;
    let t: BootingCloud;
    let first: CloudNode;
    let second: CloudNode;
    let network: number;
    const machineNamespaces: string[] = [];

    beforeAll(async () => {
      platform = await claimPlatformAddress(tag);
      ({ server, reports } = await reportServer(platform.address));
      const port = (server.address() as { port: number }).port;
      machines = StandInMachines.create({ name: kind, reach: { address: platform.address, port } });
      t = await bootingClouds[kind](machines, { startCommand: START, readyTimeoutMs: READY_MS });
    });
    afterAll(async () => {
      await machines?.close();
      await t?.close();
      server?.close();
      await releasePlatformAddress(tag);
    });

    const reportTo = (): string => `${platform.address}:${(server.address() as { port: number }).port}`;
    const reportOf = (node: CloudNode): Promise<Report | undefined> =>
      eventually(
        async () => reports.get(node.nodeId),
        (r) => r !== undefined,
      );

    it('boots an instance: its node runs in its namespace at the address the API reports, its files under /var/lib/cps/node, and reaches the platform address', async () => {
      const spec = nodeSpec(freshNodeId(), {
        contextualization: { env: { REPORT_TO: reportTo() }, files: { 'bus-ca.pem': 'not a CA\n' } },
      });
      first = await t.cloud.create(spec);
      expect(first.state).toBe('running');
      expect(first.address).toMatch(/^198\.18\.\d+\.\d+$/);
      expect(first.address).toBe(t.privateIp(first));
      network = parseNodeAddress(first.address as string)?.network as number;
      const machine = machines.machine(t.machineId(first));
      expect(machine?.address).toBe(first.address);
      machineNamespaces.push(machine?.namespace as string);

      const r = await reportOf(first);
      expect(r?.env['CPS_NODE_ADDRESS']).toBe(first.address);
      expect(r?.env['CPS_NODE_DIR']).toBe(`${MACHINE_DISK}/node`);
      expect(r?.cwd).toBe(`${MACHINE_DISK}/node`);
      expect(r?.files).toEqual(['bus-ca.pem']);
      expect(r?.disk).toEqual(['node', 'node.env', 'node.log']);
      // the machine's disk is a directory of the stand-in's on the host
      expect(readFileSync(join(machine?.disk as string, 'node', 'bus-ca.pem'), 'utf8')).toBe('not a CA\n');
      // the node's pid is one of its machine's PID namespace (the boot script's init is 1, and the
      // sandbox's few commands come before the node): the root namespace's are in the thousands
      expect(r?.pid).toBeLessThan(50);
    });

    it('lets a second instance reach the first at its address', async () => {
      const spec = nodeSpec(freshNodeId(), {
        contextualization: { env: { REPORT_TO: reportTo(), PEER: first.address as string }, files: {} },
      });
      second = await t.cloud.create(spec);
      machineNamespaces.push(machines.machine(t.machineId(second))?.namespace as string);
      expect(second.address).not.toBe(first.address);
      expect(parseNodeAddress(second.address as string)?.network).toBe(network);
      expect((await reportOf(second))?.peer).toBe(first.nodeId);
    });

    it('destroy terminates an instance: its processes end and its namespace is deleted', async () => {
      const machine = machines.machine(t.machineId(first));
      const pids = machines.processes(t.machineId(first));
      expect(pids.length).toBeGreaterThanOrEqual(3);
      await t.cloud.destroy(first.nodeId);
      expect(pids.filter((p) => isAlive(p))).toEqual([]);
      expect(namespaceExists(machine?.namespace as string)).toBe(false);
      expect(await t.cloud.get(first.nodeId)).toBeUndefined();
    });

    it('stopping an instance ends its processes too; the last machine takes the network with it', async () => {
      const machine = machines.machine(t.machineId(second));
      const pids = machines.processes(t.machineId(second));
      expect(pids.length).toBeGreaterThanOrEqual(3);
      expect(namespaceExists(bridgeNamespace(network))).toBe(true);
      t.stop(second);
      await eventually(
        async () => pids.filter((p) => isAlive(p)),
        (alive) => alive.length === 0,
      );
      expect((await t.cloud.get(second.nodeId))?.state).toBe('stopped');
      await eventually(
        async () => namespaceExists(bridgeNamespace(network)),
        (up) => !up,
      );
      expect(namespaceExists(machine?.namespace as string)).toBe(false);
      expect(namespaces(`${bridgeNamespace(network)}-n`)).toEqual([]);
      await t.cloud.destroy(second.nodeId);
    });

    it('leaves nothing of the machines, their network or the platform address', async () => {
      await machines.close();
      await releasePlatformAddress(tag);
      expect(await leftovers(network, [tag, machines.tag], machineNamespaces)).toEqual([]);
    });
  },
);
