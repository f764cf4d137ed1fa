import { existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimPlatformAddress,
  LocalCloud,
  releasePlatformAddress,
  type NodeIdentitySource,
  type PlatformAddress,
} from '@cps/clouds';
import { busTrustPem, EnrollingNodeIdentities, IssuedNodeIdentities } from '@cps/platform';
import { eventually } from '@cps/testing';
import { tarOf } from '../../../../libs/archives/src/extract/archives.spec-helpers.js';
import {
  bootingClouds,
  leftovers,
  type BootingCloud,
  type BootingCloudKind,
} from '../../../../libs/clouds/src/iaas/testing/booting-clouds.spec-helpers.js';
import { namespaceExists } from '../../../../libs/clouds/src/host/kernel.js';
import { StandInMachines } from '../../../../libs/clouds/src/iaas/testing/machines.spec-helpers.js';
import type { Director } from '../director.js';
import { DirectorHarness, succeeded, type Client } from '../director.spec-helpers.js';

/** run.sh: one line with its marker, the node's address and its peers (agents.json, on one line). */
const CODE = gzipSync(
  tarOf([
    {
      path: 'run.sh',
      data: 'echo "run $1: me=$MY_IP agents=$(tr -d \' \\n\' < "$AGENTS_JSON")"\n',
      mode: 0o755,
    },
  ]),
);
const KINDS = ['ec2', 'opennebula'] as const satisfies readonly BootingCloudKind[];
/** The node program a booted instance starts: the built agent runtime. */
const AGENT = [process.execPath, join(process.cwd(), 'apps', 'agent-runtime', 'dist', 'main.js')];
const RUN_LINE = / run (\S+): me=(\S+) agents=(.*)$/m;

interface Listed {
  readonly nodeId: string;
  readonly role: string;
  readonly cloud: string;
  readonly state: string;
  readonly address?: string;
}

/** A port nothing listens on at `host` now (for a server that must be reachable before it starts). */
const freePort = async (host: string): Promise<number> => {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
};

/** Identity files for nodes on this machine; a one-time enrollment token for nodes on any other cloud. */
const byCloud = (local: NodeIdentitySource, elsewhere: NodeIdentitySource): NodeIdentitySource => ({
  contextualize: (identity, o) => (o.cloud === 'local' ? local : elsewhere).contextualize(identity, o),
});

const tail = (file: string): string => {
  try {
    return readFileSync(file, 'utf8').slice(-4_000);
  } catch {
    return '';
  }
};

const hostMode = LocalCloud.hostModeUnavailable() === undefined;

/**
 * A director whose NATS and HTTPS port are on a platform address, with the local cloud (managers)
 * and the EC2 and OpenNebula stand-ins, whose instances boot for real in namespaces of their own
 * networks: those reach the platform address's NATS and HTTPS ports only. Agents there enroll with
 * a one-time token, over HTTPS at the platform address.
 */
describe.skipIf(!hostMode)('generic services on EC2 and OpenNebula instances booted for real', () => {
  const tag = `cps-g${process.pid.toString(36)}`;
  let platform: PlatformAddress;
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  const machines = new Map<BootingCloudKind, StandInMachines>();
  const clouds = new Map<BootingCloudKind, BootingCloud>();
  /** The machines' network of each cloud (numbers a network freed may be taken again), and their namespaces. */
  const networks = new Map<BootingCloudKind, number>();
  const namespaces: string[] = [];
  let cleaned = false;

  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    // a machine still running here is one a failed test left: what its node said tells why
    for (const [kind, t] of clouds)
      for (const n of await t.cloud.list()) {
        const m = machines.get(kind)?.machine(t.machineId(n));
        if (m) console.error(`${kind} ${n.nodeId}:\n${tail(m.console)}${tail(join(m.disk, 'node.log'))}`);
      }
    await h?.cleanup();
    for (const m of machines.values()) await m.close();
    for (const c of clouds.values()) await c.close();
    await releasePlatformAddress(tag);
  };

  beforeAll(async () => {
    platform = await claimPlatformAddress(tag);
    h = await DirectorHarness.start({ host: platform.address });
    const port = await freePort(platform.address);
    const reach = [
      { address: platform.address, port: h.nats.servers.nodes[0]?.port as number },
      { address: platform.address, port },
    ];
    for (const kind of KINDS) {
      const m = StandInMachines.create({ name: kind, reach });
      machines.set(kind, m);
      clouds.set(kind, await bootingClouds[kind](m, { startCommand: AGENT, readyTimeoutMs: 20_000 }));
    }
    const enrollUrl = `https://${platform.address}:${port}`;
    d = await h.startDirector('d1', {
      host: platform.address,
      port,
      clouds: [h.cloud, ...[...clouds.values()].map((c) => c.cloud)],
      nodeIdentities: (issuer) =>
        byCloud(
          new IssuedNodeIdentities(issuer, h.nats.urls, () => enrollUrl),
          new EnrollingNodeIdentities(issuer, h.nats.urls, enrollUrl, busTrustPem(h.nats.secrets)),
        ),
    });
    expect(d.url).toBe(enrollUrl);
    alice = await h.user(d, 'alice');
  });
  afterAll(cleanup);

  /** What run.sh printed on `node` for `marker`: its address and the addresses of agents.json. */
  const runOutput = async (svc: string, node: string, marker: string) => {
    const log = await eventually(
      () => alice.get(`${svc}/logs?workload=run&node=${node}`),
      (r) => RUN_LINE.exec((r.body?.text as string | undefined) ?? '')?.[1] === marker,
      20_000,
    );
    const [, , me, agents] = RUN_LINE.exec(log.body.text as string) ?? [];
    return {
      me,
      peers: (JSON.parse(agents ?? '[]') as { address: string }[]).map((a) => a.address).sort(),
    };
  };

  /**
   * The namespace of the machine a listed node of cloud `kind` runs on, whose address is the one
   * listed; the node enrolled there (the bus CA of its token is on its disk, beside the identity it made).
   */
  const namespaceOf = async (kind: BootingCloudKind, listed: Listed): Promise<string> => {
    const t = clouds.get(kind)!;
    const node = await t.cloud.get(listed.nodeId);
    const machine = node && machines.get(kind)?.machine(t.machineId(node));
    expect(machine?.address).toBe(listed.address);
    for (const file of ['bus-ca.pem', 'identity.json'])
      expect(existsSync(join(machine!.disk, 'node', file)), file).toBe(true);
    return machine!.namespace;
  };

  it.each(KINDS)(
    '%s: a generic service with 2 agents there runs; `run` sees its own address and its peer’s; removal terminates the instances',
    async (kind) => {
      const svc = await h.startedService(alice, `on-${kind}`, 'generic', 'g', kind);
      await succeeded(alice, await alice.post(`${svc}/nodes`, { nodes: { node: 1 }, cloud: kind }), 'add');
      expect((await alice.get(svc)).body).toMatchObject({ state: 'RUNNING', cloud: kind });
      const nodes = (await alice.get(`${svc}/nodes`)).body.nodes as Listed[];
      expect(nodes.map((n) => [n.role, n.cloud, n.state])).toEqual([
        ['master', kind, 'running'],
        ['node', kind, 'running'],
      ]);
      const addresses = nodes.map((n) => n.address ?? '');
      for (const a of addresses) expect(a).toMatch(/^198\.18\.\d+\.\d+$/);
      const nsOf = new Map<string, string>();
      for (const n of nodes) nsOf.set(n.nodeId, await namespaceOf(kind, n));
      namespaces.push(...nsOf.values());
      networks.set(kind, Number(addresses[0]?.split('.')[2]));

      expect((await alice.put(`${svc}/archive`, CODE)).status).toBe(200);
      // the code reaches the nodes shortly after: until then run.sh does not start there
      await eventually(
        () => alice.post(`${svc}/calls/run`, { parameters: [kind] }),
        (r) =>
          r.status === 200 &&
          (r.body.result.nodes as { started: boolean }[]).filter((n) => n.started).length === 2,
        30_000,
      );
      for (const n of nodes)
        expect(await runOutput(svc, n.nodeId, kind)).toEqual({
          me: n.address,
          peers: [...addresses].sort(),
        });

      // removing a node terminates its instance; removing the service, the other's
      const [master, other] = nodes as [Listed, Listed];
      await succeeded(alice, await alice.delete(`${svc}/nodes`, { nodeIds: [other.nodeId] }), 'remove');
      expect(namespaceExists(nsOf.get(other.nodeId)!)).toBe(false);
      expect(await clouds.get(kind)!.cloud.get(other.nodeId)).toBeUndefined();
      expect(
        ((await alice.get(`${svc}/nodes`)).body.nodes as Listed[]).map((n) => [n.nodeId, n.state]),
      ).toEqual([
        [master.nodeId, 'running'],
        [other.nodeId, 'removed'],
      ]);
      await succeeded(alice, await alice.delete(svc), 'removal');
      expect(namespaceExists(nsOf.get(master.nodeId)!)).toBe(false);
      expect(await clouds.get(kind)!.cloud.list()).toEqual([]);
    },
  );

  it('leaves nothing: no machine, namespace, network or link of the test', async () => {
    await cleanup();
    expect(networks.size).toBe(KINDS.length);
    const tags = [tag, ...[...machines.values()].map((m) => m.tag)];
    for (const n of networks.values()) expect(await leftovers(n, tags, namespaces)).toEqual([]);
  });
});
