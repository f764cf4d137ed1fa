// Servers and data the benchmarks share. Every nats-server is started through TestNats (operator
// mode, mTLS, loopback) and registered with `servers` so that the runner can stop it whatever happens.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { TestHost, TestNats } from '@cps/testing';
import { EVENT_STREAM } from '@cps/bus';
import {
  CommandHandler,
  JetStreamEventStore,
  KvSnapshotStore,
  ensureEventStream,
  ensureSnapshotBucket,
} from '@cps/events';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { now } from './stats.mjs';
import { directorFixture } from '../cases/director-http.mjs';
import { apps10kFixture } from '../cases/director-start.mjs';

const enc = new TextEncoder();

/** Every TestNats the suite started and has not begun to clean up yet. */
export const servers = new Set();
/** Clean-ups under way or done, so that every caller can wait for the same one. */
const stopping = new Map();

export const startNats = async (size) => {
  const nats = await TestNats.start({ size });
  servers.add(nats);
  return nats;
};

export const stopNats = (nats) => {
  if (!stopping.has(nats)) {
    servers.delete(nats);
    stopping.set(nats, nats.cleanup());
  }
  return stopping.get(nats);
};

/** Stops every server still running and waits for clean-ups already under way. */
export const stopAll = async () => {
  for (const nats of [...servers]) void stopNats(nats).catch(() => undefined);
  await Promise.allSettled([...stopping.values()]);
};

/** The counter aggregate of the load benchmark: every command appends one `ticked` event. */
export const tickDecider = {
  initialState: () => ({ count: 0, last: 0 }),
  decide: (command) => ({ type: 'ticked', data: { n: command.data.n, host: 'node-7', status: 'running' } }),
  evolve: (state, event) => ({ count: state.count + 1, last: event.data.n }),
};

export const tickCommand = (n) => ({
  type: 'tick',
  data: { n },
  metadata: { now: new Date(), requestId: randomUUID(), actor: 'bench' },
});

/** A stored commit as the event store writes it (one event), so that readAll can parse it. */
export const commitPayload = (aggregate, version, n) => {
  const id = randomUUID();
  return enc.encode(
    JSON.stringify({
      a: aggregate,
      v: version,
      e: [
        {
          type: 'node.reported',
          version: 1,
          data: { n, host: `node-${n % 97}`, status: 'running', load: (n % 100) / 100 },
          metadata: {
            eventId: id,
            at: new Date().toISOString(),
            actor: 'bench',
            correlationId: id,
            causationId: id,
          },
        },
      ],
    }),
  );
};

const root = process.cwd();
export const agentEntry = join(root, 'apps', 'agent-runtime', 'dist', 'main.js');
export const managerEntry = join(root, 'apps', 'manager-runtime', 'dist', 'main.js');

const testHost = (hostMode) => ({
  async create() {
    const host = await TestHost.start({
      agentEntry,
      managerEntry,
      managerEnv: { CPS_HEARTBEAT_TIMEOUT_MS: '3000', CPS_READY_TIMEOUT_MS: '60000' },
      stopGraceMs: 2_000,
      hostMode,
    });
    servers.add(host.nats);
    return { host };
  },
  dispose: async (fx) => {
    servers.delete(fx.host.nats);
    await fx.host.cleanup();
  },
});

export const fixtures = {
  none: { create: async () => ({}), dispose: async () => undefined },
  director: { create: (...a) => directorFixture.create(...a), dispose: (fx) => directorFixture.dispose(fx) },
  apps10k: { create: (...a) => apps10kFixture.create(...a), dispose: (fx) => apps10kFixture.dispose(fx) },
  /** The test host: nats-server, identity issuer, Provisioner with the local cloud (real agent processes). */
  host: testHost(false),
  /** The test host in host mode (root): nodes are namespaces, nats-server on a platform address. */
  hostmode: testHost(true),

  /** One server; a director (requester, JetStream writer) and a manager (responder) connection. */
  server: {
    async create() {
      const nats = await startNats(1);
      const director = await nats.connect({ role: 'director', id: 'd1' });
      const manager = await nats.connect({ role: 'manager', id: 'm1', appId: 'a1', serviceId: 's1' });
      return { nats, director, manager };
    },
    dispose: (fx) => stopNats(fx.nats),
  },

  /**
   * One server whose event stream holds `total` commits: fill commits over 2,000 aggregates sent
   * with raw JetStream publishes (1,000 in flight), and the 50 commits of `load.target` (one every
   * total/50 messages) appended through CommandHandler with a KV snapshot store, so that its 50th
   * event writes the aggregate's snapshot exactly as a manager would.
   */
  stream100k: {
    async create(opts, log) {
      const nats = await startNats(1);
      try {
        const nc = await nats.connect({ role: 'director', id: 'd1' });
        await ensureEventStream(nc, { replicas: 1 });
        await ensureSnapshotBucket(nc, 1);
        const total = opts.streamSize;
        const targetEvents = 50;
        const target = 'load.target';
        const js = jetstream(nc, { timeout: 30_000 });
        const store = new JetStreamEventStore(nc);
        const snapshots = new KvSnapshotStore(nc);
        const handler = new CommandHandler(store, tickDecider, {
          aggregateOf: () => target,
          snapshots,
          snapshotEvery: 50,
        });
        const aggregates = 2_000;
        const every = Math.floor(total / targetEvents);
        const window = [];
        let failure;
        let fill = 0;
        let ticks = 0;
        const t0 = now();
        for (let i = 0; i < total; i++) {
          if (i % every === Math.floor(every / 2) && ticks < targetEvents) {
            ticks++;
            await handler.handle(tickCommand(ticks));
            continue;
          }
          const k = fill % aggregates;
          const aggregate = `fill.f${k}`;
          const version = Math.floor(fill / aggregates) + 1;
          fill++;
          const p = js.publish(`cps.evt.${aggregate}`, commitPayload(aggregate, version, fill), {
            msgID: `${aggregate}:${version}`,
          });
          p.catch((e) => (failure ??= e));
          window.push(p);
          if (window.length >= 1_000) await window.shift().catch(() => undefined);
        }
        await Promise.allSettled(window);
        if (failure) throw failure;
        const fillMs = now() - t0;
        const info = await (await jetstreamManager(nc)).streams.info(EVENT_STREAM);
        if (info.state.messages !== total)
          throw new Error(`stream holds ${info.state.messages} commits, expected ${total}`);
        const snap = await snapshots.get(target);
        if (snap?.version !== targetEvents)
          throw new Error(`no snapshot at version ${targetEvents} for ${target}`);
        log(
          `filled ${total} commits in ${(fillMs / 1000).toFixed(1)} s (${Math.round(total / (fillMs / 1000))} commits/s)`,
        );
        return { nats, nc, target, targetEvents, total, lastSeq: info.state.last_seq };
      } catch (e) {
        await stopNats(nats);
        throw e;
      }
    },
    dispose: (fx) => stopNats(fx.nats),
  },

  /** Three servers (JetStream cluster), one director connection pinned to each server. */
  cluster: {
    async create() {
      const nats = await startNats(3);
      try {
        const byServer = new Map();
        for (let i = 0; i < nats.urls.length; i++) {
          const nc = await nats.connect({ role: 'director', id: `d${i + 1}` }, { servers: [nats.urls[i]] });
          byServer.set(nc.info.server_name, nc);
        }
        return { nats, byServer, any: byServer.values().next().value };
      } catch (e) {
        await stopNats(nats);
        throw e;
      }
    },
    dispose: (fx) => stopNats(fx.nats),
  },
};
