// (g) One manager process with 1,000 agents: heartbeat handling CPU and the time to detect a dead
// node. The agents are simulated (their heartbeats published over real NATS from one connection);
// the Provisioner is a stand-in that answers at once. Baseline: a bare nats.js process that
// subscribes to the same heartbeats and parses them, measured at the same time.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Bus,
  subjects,
  createNode,
  destroyNode,
  addNodes,
  getNodeInfo,
  getServiceInfo,
  listNodes,
  startupService,
} from '@cps/bus';
import { ensureEventStream, ensureLogStream, ensureSnapshotBucket } from '@cps/events';
import { managerEntry } from '../lib/fixtures.mjs';
import { until } from '../lib/processes.mjs';
import { sleep } from '../lib/stats.mjs';

const at = subjects.manager('a1', 's1');
const TICKS = Number(process.env.CPS_CLK_TCK ?? 100);
const cpuTicks = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};

const RAW_SUBSCRIBER = `
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
const id = JSON.parse(process.env.ID);
const nc = await connect({ servers: process.env.URLS.split(','), tls: id.tls, authenticator: jwtAuthenticator(id.credentials.jwt, new TextEncoder().encode(id.credentials.seed)), inboxPrefix: id.inboxPrefix });
const seen = new Map();
nc.subscribe('cps.node.a1.s1.*.heartbeat', { callback: (e, m) => { if (!e) { const h = m.json(); seen.set(h.nodeId, { at: Date.now(), ready: h.ready }); } } });
setInterval(() => { const now = Date.now(); let late = 0; for (const v of seen.values()) if (now - v.at > 3000) late++; }, 250);
`;

export default {
  id: 'heartbeats',
  letter: 'g',
  title: 'One manager, 1,000 simulated agents: heartbeat CPU and dead-node detection',
  fixture: 'server',
  figures: [
    {
      key: 'cpu',
      label: 'g. heartbeat handling, 1,000 agents',
      unit: '% core',
      target: { on: 'cps', op: '<=', value: 50 },
    },
    {
      key: 'nodes',
      label: 'g. running nodes during the measurement',
      unit: 'nodes',
      target: null,
      ratio: false,
    },
    {
      key: 'detect',
      label: 'g. dead node detected (timeout 3 s)',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 4_000 },
      ratio: false,
    },
  ],

  async prepare(fx, opts) {
    const { nats, director } = fx;
    await ensureEventStream(director);
    await ensureSnapshotBucket(director);
    await ensureLogStream(director);
    const bus = new Bus(director);
    bus.handleAt(`cps.sys.node.*.*.${createNode.name}`, createNode, (d) => ({
      nodeId: d.nodeId,
      instanceId: `sim-${d.nodeId}`,
    }));
    bus.handleAt(`cps.sys.node.*.*.${destroyNode.name}`, destroyNode, (d) => ({
      nodeId: d.nodeId,
      destroyed: true,
    }));
    await bus.flush();

    const dir = mkdtempSync(join(tmpdir(), 'cps-bench-mgr-'));
    mkdirSync(join(dir, 'work'));
    const identity = await nats.identity({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    writeFileSync(join(dir, 'identity.json'), JSON.stringify(identity), { mode: 0o600 });
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      CPS_NODE_DIR: dir,
      CPS_NATS_URLS: nats.urls.join(','),
      CPS_APP_ID: 'a1',
      CPS_SERVICE_ID: 's1',
      CPS_SERVICE_TYPE: 'helloworld',
      CPS_HEARTBEAT_TIMEOUT_MS: '3000',
      CPS_READY_TIMEOUT_MS: '120000',
    };
    const manager = spawn(process.execPath, [managerEntry], { env, stdio: 'ignore' });
    const rawId = await nats.identity({ role: 'director', id: 'rawsub' });
    const raw = spawn(process.execPath, ['--input-type=module', '-e', RAW_SUBSCRIBER], {
      env: { ...process.env, ID: JSON.stringify(rawId), URLS: nats.urls.join(',') },
      stdio: 'ignore',
    });

    const info = () => bus.request(at, getServiceInfo, {}, { timeoutMs: 5_000 });
    await until(info, () => true, 30_000, 'the manager', { every: 20 });

    // the simulator: every node the manager knows heartbeats once a second, except the dead ones
    const state = { nodes: [], dead: new Set(), stop: false };
    const refresh = async () => {
      state.nodes = (await bus.request(at, listNodes, {}, { timeoutMs: 10_000 })).nodes
        .filter((n) => n.state !== 'removed' && n.state !== 'failed')
        .map((n) => n.nodeId);
    };
    const metrics = {
      load1: 0.5,
      memTotalBytes: 24e9,
      memFreeBytes: 20e9,
      workloads: 1,
      workloadsRunning: 1,
      rssBytes: 5e7,
    };
    const simulator = (async () => {
      let tick = 0;
      while (!state.stop) {
        const t0 = Date.now();
        if (tick++ % 2 === 0) await refresh().catch(() => undefined);
        const at_ = new Date().toISOString();
        state.lastCycle = Date.now();
        for (const nodeId of state.nodes) {
          if (state.dead.has(nodeId)) continue;
          director.publish(
            `cps.node.a1.s1.${nodeId}.heartbeat`,
            JSON.stringify({ nodeId, role: 'node', at: at_, ready: true, metrics }),
          );
        }
        await sleep(Math.max(0, 1_000 - (Date.now() - t0)));
      }
    })();

    await bus.request(at, startupService, {});
    await until(info, (i) => i.state === 'RUNNING', 60_000, 'RUNNING', { every: 20 });
    const target = opts.quick ? 300 : 1_000;
    while ((await info()).nodes.node < target) {
      const missing = target - (await info()).nodes.node;
      await bus.request(at, addNodes, { nodes: { node: Math.min(100, missing) } });
      await until(info, (i) => i.state === 'RUNNING', 120_000, 'RUNNING after add_nodes', { every: 20 });
    }
    return { bus, manager, raw, dir, state, simulator, info, target };
  },

  async run(s) {
    await sleep(2_000);
    const m0 = cpuTicks(s.manager.pid);
    const r0 = cpuTicks(s.raw.pid);
    const t0 = Date.now();
    await sleep(10_000);
    const secs = (Date.now() - t0) / 1000;
    const cpu = {
      cps: ((cpuTicks(s.manager.pid) - m0) / TICKS / secs) * 100,
      raw: ((cpuTicks(s.raw.pid) - r0) / TICKS / secs) * 100,
    };

    const running = (await s.bus.request(at, listNodes, {}, { timeoutMs: 10_000 })).nodes.filter(
      (n) => n.state === 'running',
    );
    const victim = running[Math.floor(running.length / 2)].nodeId;
    s.state.dead.add(victim);
    const lastBeat = s.state.lastCycle;
    const detected = await until(
      () => s.bus.request(at, getNodeInfo, { nodeId: victim }, { timeoutMs: 5_000 }),
      (n) => n.state !== 'running',
      20_000,
      'detection',
      { every: 20 },
    );
    // measured from the victim's last heartbeat (polling adds up to ~20 ms)
    const detectMs = Date.now() - lastBeat;
    if (!detected) throw new Error('not detected');
    await until(s.info, (i) => i.state === 'RUNNING' && i.nodes.node >= s.target, 60_000, 'replacement', {
      every: 20,
    });
    return { cpu, detect: { cps: detectMs }, nodes: { cps: running.length } };
  },

  async dispose(s) {
    s.state.stop = true;
    await s.simulator.catch(() => undefined);
    for (const p of [s.manager, s.raw]) p.kill('SIGKILL');
    rmSync(s.dir, { recursive: true, force: true });
  },
};
