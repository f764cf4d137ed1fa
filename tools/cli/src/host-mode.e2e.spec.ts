import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeNamespace, LocalCloud, namespaceOfAddress } from '@cps/clouds';
import { PlatformHome } from '@cps/platform';
import { cliPlatform, connectFrom, eventually } from '@cps/testing';

const exec = promisify(execFile);

/** The generic service's run.sh: says where it runs and who its peers are. */
const RUN_SH = `#!/bin/sh
echo "me $MY_IP role $MY_ROLE master $MASTER_IP"
echo "peers $(cat agents.json)"
`;

interface Listed {
  nodeId: string;
  role: string;
  state: string;
  address: string;
}

/** A node's network namespace, from its host-mode address. */
const namespaceOf = (address: string): string => {
  const ns = namespaceOfAddress(address);
  if (!ns) throw new Error(`not a host-mode address: ${address}`);
  return ns;
};

/** A TCP server inside the namespace `ns` on host:port, until killed. */
const serveIn = (ns: string, host: string, port: number) =>
  execFile('ip', [
    'netns',
    'exec',
    ns,
    process.execPath,
    '-e',
    `require('node:net').createServer((s) => s.end('hi')).listen(${port}, ${JSON.stringify(host)});`,
  ]);

/**
 * Host mode as a user meets it, as root: `cps up` says it runs in host mode, every node of the
 * sample-like applications has an address of its own in 198.18.0.0/15, nodes of one application
 * reach each other, nodes of another application and the director's HTTPS port are refused, a
 * node whose whole namespace is killed is replaced, and `cps down` leaves no namespace or link.
 */
describe.skipIf(LocalCloud.hostModeUnavailable() !== undefined)('host mode through the cps command', () => {
  const platform = cliPlatform('cps-hostmode-');
  const { root, cps, home } = platform;
  const servers: ReturnType<typeof serveIn>[] = [];

  const nodesOf = async (app: string): Promise<Listed[]> =>
    (
      JSON.parse((await cps('--json', 'service', 'nodes', 'work', '--app', app)).stdout) as {
        nodes: Listed[];
      }
    ).nodes;
  const running = (app: string, n = 2) =>
    eventually(
      () => nodesOf(app).catch((): Listed[] => []),
      (ns) => ns.length === n && ns.every((x) => x.state === 'running'),
      90_000,
    );
  const deploy = async (app: string): Promise<void> => {
    const dir = join(root, app);
    mkdirSync(join(dir, 'code'), { recursive: true });
    writeFileSync(join(dir, 'code', 'run.sh'), RUN_SH, { mode: 0o755 });
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify({
        Application: app,
        Services: [
          {
            ServiceName: 'work',
            Type: 'generic',
            Archive: 'code',
            Start: 1,
            StartupInstances: { master: 1, node: 1 },
          },
        ],
      }),
    );
    expect((await cps('deploy', join(dir, 'manifest.json'))).stdout).toMatch(/deployed: /);
  };
  /**
   * What of the platform's is left in the kernel: links tagged with its home's or its cloud's tag (the
   * platform address, the uplinks), and namespaces of the networks it used whose bridge is its own
   * or gone (other platforms of parallel tests may hold other networks, or these numbers later).
   */
  const leftovers = async (networks: readonly string[]): Promise<string[]> => {
    const tags = [
      PlatformHome.open(home, platform.env).tag,
      new LocalCloud({ dir: join(home, 'cloud'), command: () => ({ command: 'none', args: [] }) }).tag,
    ];
    const aliasOf = async (ns: string | undefined, link: string) =>
      exec('ip', [...(ns ? ['-n', ns] : []), '-j', 'link', 'show', link], { encoding: 'utf8' })
        .then((r) => (JSON.parse(r.stdout) as { ifalias?: string }[])[0]?.ifalias)
        .catch(() => undefined);
    const links = JSON.parse((await exec('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })).stdout) as {
      ifname: string;
      ifalias?: string;
    }[];
    const out = links.filter((l) => l.ifalias !== undefined && tags.includes(l.ifalias)).map((l) => l.ifname);
    const namespaces = (await exec('ip', ['netns', 'list'], { encoding: 'utf8' })).stdout
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '');
    for (const n of networks) {
      const bridge = bridgeNamespace(Number(n));
      const mine = namespaces.includes(bridge) ? tags.includes((await aliasOf(bridge, 'br0')) ?? '') : true;
      if (mine) out.push(...namespaces.filter((x) => x === bridge || x.startsWith(`${bridge}-n`)));
    }
    return out;
  };

  beforeAll(() => platform.init());
  afterAll(async () => {
    for (const s of servers) s.kill();
    await platform.cleanup();
  });

  it('cps up runs in host mode and says so', async () => {
    const up = (await cps('up')).stdout;
    expect(up).toMatch(/local cloud: host mode/);
    expect((await cps('status')).stdout).toMatch(/local cloud: host mode/);
    const clouds = JSON.parse((await cps('--json', 'cloud', 'list')).stdout) as { clouds: unknown[] };
    expect(clouds.clouds).toEqual([{ name: 'local', kind: 'local', mode: 'host', default: true }]);
    expect((await cps('cloud', 'list')).stdout).toMatch(/local\s+local\s+host/);
  });

  it('gives every node an address of its own; a workload sees its address and its peers', async () => {
    await deploy('one');
    await deploy('two');
    const one = await running('one');
    const two = await running('two');
    const addresses = [...one, ...two].map((n) => n.address);
    for (const a of addresses) expect(a).toMatch(/^198\.18\.\d{1,3}\.\d{1,3}$/);
    expect(new Set(addresses).size).toBe(4);
    const master = one.find((n) => n.role === 'master') as Listed;
    const peer = one.find((n) => n.role !== 'master') as Listed;
    const log = await eventually(
      async () => {
        await cps('service', 'call', 'work', 'run', '--app', 'one').catch(() => undefined);
        return (
          await cps('service', 'log', 'work', '--app', 'one', '--node', master.nodeId, '--workload', 'run')
        ).stdout;
      },
      (t) => t.includes('peers') && t.includes(peer.address),
      60_000,
    );
    expect(log).toContain(`me ${master.address} role master master ${master.address}`);
  });

  it('lets nodes of one application reach each other and NATS; refuses another application and the director', async () => {
    const [a1, a2] = await nodesOf('one');
    const [b1] = await nodesOf('two');
    if (!a1 || !a2 || !b1) throw new Error('nodes missing');
    servers.push(serveIn(namespaceOf(a2.address), a2.address, 20_019));
    expect(
      await eventually(
        () => connectFrom(namespaceOf(a1.address), a2.address, 20_019),
        (r) => r.startsWith('open'),
      ),
    ).toBe('open hi');
    // another application's node: no route, refused at once
    expect(await connectFrom(namespaceOf(b1.address), a2.address, 20_019)).toMatch(
      /^(EHOSTUNREACH|ENETUNREACH|ECONNREFUSED)$/,
    );
    const p = PlatformHome.open(home, platform.env);
    const network = p.network();
    if (network.mode !== 'host' || !network.address) throw new Error('not in host mode');
    // NATS at the platform address: open; the director's port there, or at 127.0.0.1: refused
    expect(await connectFrom(namespaceOf(a1.address), network.address, p.info().natsPort)).toMatch(
      /^open INFO /,
    );
    const directorPort = p.info().directorPort as number;
    expect(await connectFrom(namespaceOf(a1.address), network.address, directorPort)).toMatch(
      /^(ECONNREFUSED|EHOSTUNREACH)$/,
    );
    expect(await connectFrom(namespaceOf(a1.address), '127.0.0.1', directorPort)).toBe('ECONNREFUSED');
  });

  it('replaces a node whose whole namespace was killed, like a killed agent', async () => {
    const victim = (await nodesOf('one')).find((n) => n.role !== 'master') as Listed;
    const ns = namespaceOf(victim.address);
    const pids = (await exec('ip', ['netns', 'pids', ns], { encoding: 'utf8' })).stdout
      .split('\n')
      .filter(Boolean)
      .map(Number);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await exec('ip', ['netns', 'delete', ns]);
    const t0 = Date.now();
    const healed = await eventually(
      () => nodesOf('one').catch((): Listed[] => []),
      (n) =>
        n.length === 2 && n.every((x) => x.state === 'running') && !n.some((x) => x.nodeId === victim.nodeId),
      90_000,
    );
    console.log(`namespace killed: replaced in ${Date.now() - t0} ms`);
    expect(healed.map((n) => n.nodeId)).not.toContain(victim.nodeId);
  });

  it('cps down leaves no namespace, bridge or link of its own; cps up brings the nodes back at their addresses', async () => {
    const addresses = (await nodesOf('one')).map((n) => n.address).sort();
    const networks = [
      ...new Set(
        [...addresses, ...(await nodesOf('two')).map((n) => n.address)].map((a) => a.split('.')[2] ?? ''),
      ),
    ];
    await cps('down');
    expect(await leftovers(networks)).toEqual([]);
    await cps('up');
    const back = await running('one');
    expect(back.map((n) => n.address).sort()).toEqual(addresses);
  });
});
