// (f) add_nodes of 3 nodes until all are RUNNING on the local cloud, vs starting the same agent
// processes by hand (identities issued beforehand, each configured at its first heartbeat as its
// manager would, timed until each sends a ready heartbeat).
// (m) the same in host mode (root): each node a namespace of its own on the application's bridge,
// vs the same agents started by hand in namespaces made with `ip` (a namespace, a veth to the
// bridge, an address and a default route each, then `ip netns exec`).
import { chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  subjects,
  addNodes,
  configureAgent,
  getServiceInfo,
  listNodes,
  removeNodes,
  startupService,
} from '@cps/bus';
import { LocalCloud, workloadUser } from '@cps/clouds';
import { agentEntry } from '../lib/fixtures.mjs';
import { signalPid, until } from '../lib/processes.mjs';
import { median, now, sleep } from '../lib/stats.mjs';

const at = subjects.manager('a1', 's1');
const MANAGER = 'mgr-bench';

/** A namespace made by hand for a raw agent, on the network's bridge, then the agent run in it. */
const byHand = (network, p) =>
  [
    `ip netns add ${p.ns}`,
    `ip link add ${p.peer} netns cps-b${network} type veth peer name eth0 netns ${p.ns}`,
    `ip -n cps-b${network} link set ${p.peer} master br0 up`,
    `ip -n ${p.ns} link set lo up`,
    `ip -n ${p.ns} address add ${p.address}/24 dev eth0`,
    `ip -n ${p.ns} link set eth0 up`,
    `ip -n ${p.ns} route add default via 198.18.${network}.1`,
    `exec ip netns exec ${p.ns} "$@"`,
  ].join(' && ');

const tryIp = (args) => {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
  } catch {}
};

const nodesCase = ({ id, letter, fixture, hostMode }) => ({
  id,
  letter,
  title: hostMode
    ? 'add_nodes of 3 nodes to RUNNING on local in host mode vs the same agents started by hand in namespaces'
    : 'add_nodes of 3 nodes to RUNNING on local vs the same agents started by hand',
  fixture,
  unavailable: hostMode ? () => LocalCloud.hostModeUnavailable() : undefined,
  figures: [
    {
      key: 'add3',
      label: `${letter}. add_nodes(3) to all RUNNING${hostMode ? ', host mode' : ''}`,
      unit: 'ms',
      target: { on: 'ratio', op: '<=', value: 1.5 },
    },
  ],

  async prepare({ host }) {
    const bus = host.bus;
    await host.provisioner.create(
      {
        nodeId: MANAGER,
        kind: 'manager',
        appId: 'a1',
        serviceId: 's1',
        serviceType: 'helloworld',
        cloud: 'local',
      },
      'bench-manager',
    );
    const info = () => bus.request(at, getServiceInfo, {}, { timeoutMs: 2_000 });
    await until(info, () => true, 30_000, 'the manager', { every: 10 });
    await bus.request(at, startupService, {});
    await until(info, (i) => i.state === 'RUNNING', 60_000, 'RUNNING', { every: 10 });
    // the raw agents' configuration comes, as it must, from an identity of their service's manager
    const asManager = await host.nats.bus({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    // host mode: the raw agents join the application's network, beside the manager's node
    const manager = (await host.cloud.list()).find((n) => n.nodeId === MANAGER);
    const network = hostMode ? Number(manager.address.split('.')[2]) : undefined;
    return { host, bus, asManager, info, rawDir: join(host.dir, 'raw'), network };
  },

  async run(state, runIndex) {
    const cps = async () => {
      // from a settled service: a removal of the last round (or a replaced node) may still be adapting
      await until(state.info, (i) => i.state === 'RUNNING', 60_000, 'RUNNING before add_nodes', {
        every: 10,
      });
      const before = new Set((await state.bus.request(at, listNodes, {})).nodes.map((n) => n.nodeId));
      const t0 = now();
      await state.bus.request(at, addNodes, { nodes: { node: 3 } });
      await until(state.info, (i) => i.state === 'RUNNING', 60_000, 'RUNNING after add_nodes', { every: 10 });
      const ms = now() - t0;
      const added = (await state.bus.request(at, listNodes, {})).nodes
        .filter((n) => !before.has(n.nodeId))
        .map((n) => n.nodeId);
      if (added.length !== 3) throw new Error(`expected 3 new nodes, got ${added.length}`);
      await state.bus.request(at, removeNodes, { nodeIds: added });
      await until(state.info, (i) => i.state === 'RUNNING', 60_000, 'RUNNING after remove_nodes', {
        every: 10,
      });
      return ms;
    };
    const raw = async () => {
      const ids = [0, 1, 2].map((i) => `raw${runIndex}x${i}${Date.now().toString(36)}`);
      const prepared = await Promise.all(
        ids.map(async (id, i) => {
          const dir = join(state.rawDir, id);
          mkdirSync(join(dir, 'work'), { recursive: true, mode: 0o700 });
          // as the local cloud does: the work directory is the workload user's
          const user = workloadUser();
          if (user && process.getuid?.() === 0) chownSync(join(dir, 'work'), user.uid, user.gid);
          const identity = await state.host.issuer.issue({
            role: 'agent',
            id,
            appId: 'a1',
            serviceId: 's1',
            nodeId: id,
          });
          writeFileSync(join(dir, 'identity.json'), JSON.stringify(identity), { mode: 0o600 });
          const address = hostMode ? `198.18.${state.network}.${200 + i}` : '127.0.0.1';
          const env = {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            CPS_NODE_DIR: dir,
            CPS_NODE_ID: id,
            CPS_NODE_ADDRESS: address,
            CPS_PORT_FROM: String(30_000 + i * 10),
            CPS_PORT_TO: String(30_009 + i * 10),
            CPS_NATS_URLS: state.host.nats.urls.join(','),
            CPS_APP_ID: 'a1',
            CPS_SERVICE_ID: 's1',
            CPS_SERVICE_TYPE: 'helloworld',
            CPS_NODE_ROLE: 'node',
          };
          return { id, dir, env, address, ns: `cps-raw${i}`, peer: `r${i}` };
        }),
      );
      const ready = new Set();
      const configured = new Set();
      // by hand, as the manager does: an agent's first heartbeat is answered with its configuration
      const sub = state.bus.connection.subscribe('cps.node.a1.s1.*.heartbeat', {
        callback: (err, m) => {
          if (err) return;
          const id = m.subject.split('.')[4];
          if (m.json().ready) ready.add(id);
          else if (!configured.has(id) && ids.includes(id)) {
            configured.add(id);
            void state.asManager
              .request(subjects.agent('a1', 's1', id), configureAgent, { settings: {}, nodes: [], links: {} })
              .catch(() => configured.delete(id));
          }
        },
      });
      await state.bus.connection.flush();
      const t0 = now();
      const children = prepared.map((p) =>
        hostMode
          ? spawn('/bin/sh', ['-c', byHand(state.network, p), 'raw', process.execPath, agentEntry], {
              cwd: p.dir,
              env: p.env,
              stdio: 'ignore',
              detached: true,
            })
          : spawn(process.execPath, [agentEntry], {
              cwd: p.dir,
              env: p.env,
              stdio: 'ignore',
              detached: true,
            }),
      );
      await until(
        async () => ids.every((id) => ready.has(id)),
        (v) => v,
        60_000,
        'raw agents ready',
        { every: 10 },
      );
      const ms = now() - t0;
      sub.unsubscribe();
      for (const c of children) signalPid(-c.pid, 'SIGTERM');
      await sleep(300);
      for (const p of prepared) {
        if (hostMode) {
          tryIp(['-n', `cps-b${state.network}`, 'link', 'delete', p.peer]);
          tryIp(['netns', 'delete', p.ns]);
        }
        rmSync(p.dir, { recursive: true, force: true });
      }
      return ms;
    };
    const samples = { cps: [], raw: [] };
    for (let i = 0; i < 3; i++) {
      for (const which of (runIndex + i) % 2 === 0 ? ['cps', 'raw'] : ['raw', 'cps'])
        samples[which].push(await (which === 'cps' ? cps() : raw()));
    }
    return { add3: { cps: median(samples.cps), raw: median(samples.raw) } };
  },
});

export default nodesCase({ id: 'nodes', letter: 'f', fixture: 'host', hostMode: false });
export const nodesHost = nodesCase({ id: 'nodeshost', letter: 'm', fixture: 'hostmode', hostMode: true });
