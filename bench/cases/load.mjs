// (c) Loading one 50-event aggregate from a 100k-commit stream: readAggregate (no snapshot) vs a
// raw filtered ordered consumer; CommandHandler.load with a KV snapshot vs a raw last_by_subj get.
import { EVENT_STREAM } from '@cps/bus';
import { CommandHandler, JetStreamEventStore, KvSnapshotStore } from '@cps/events';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { tickDecider } from '../lib/fixtures.mjs';
import { now, percentile } from '../lib/stats.mjs';

export default {
  id: 'load',
  letter: 'c',
  title: 'Load one 50-event aggregate from a 100k-commit stream',
  fixture: 'stream100k',
  figures: [
    {
      key: 'fullP50',
      label: 'c. load aggregate, no snapshot, p50',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 15 },
    },
    { key: 'fullP99', label: 'c. load aggregate, no snapshot, p99', unit: 'ms', target: null },
    {
      key: 'snapP50',
      label: 'c. load aggregate, with snapshot, p50',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 2 },
    },
    { key: 'snapP99', label: 'c. load aggregate, with snapshot, p99', unit: 'ms', target: null },
  ],

  async prepare(fx, opts) {
    // Warm-up (JIT, server caches) on a connection of its own.
    const nc = await fx.nats.connect({ role: 'director', id: 'loadwarm' });
    const state = await makeOps(fx, nc);
    for (let i = 0; i < 3; i++) await iteration(state, i);
    await cleanLeftovers(state);
    await nc.close();
    return { fx, opts };
  },

  async run({ fx }, runIndex, opts) {
    // A fresh director connection per run, so each run starts from the same state.
    const nc = await fx.nats.connect({ role: 'director', id: `load${runIndex}` });
    const state = await makeOps(fx, nc);
    try {
      await iteration(state, 0);
      const samples = { full: [], rawFull: [], snap: [], rawSnap: [] };
      const count = opts.quick ? 10 : 40;
      for (let i = 0; i < count; i++) {
        const t = await iteration(state, runIndex + i);
        for (const k of Object.keys(samples)) samples[k].push(t[k]);
      }
      return {
        fullP50: { cps: percentile(samples.full, 50), raw: percentile(samples.rawFull, 50) },
        fullP99: { cps: percentile(samples.full, 99), raw: percentile(samples.rawFull, 99) },
        snapP50: { cps: percentile(samples.snap, 50), raw: percentile(samples.rawSnap, 50) },
        snapP99: { cps: percentile(samples.snap, 99), raw: percentile(samples.rawSnap, 99) },
      };
    } finally {
      await cleanLeftovers(state);
      await nc.close();
    }
  },
};

/** The four timed operations, all on connection `nc`. */
const makeOps = async (fx, nc) => {
  const { target, targetEvents } = fx;
  const subject = `cps.evt.${target}`;
  const store = new JetStreamEventStore(nc);
  const snapshots = new KvSnapshotStore(nc);
  const js = jetstream(nc, { timeout: 10_000 });
  const jsm = await jetstreamManager(nc);
  const leftovers = [];
  const ops = {
    // cps, no snapshot: every event of the aggregate through the store.
    async full() {
      const r = await store.readAggregate(target);
      if (r.events.length !== targetEvents)
        throw new Error(`readAggregate returned ${r.events.length} events`);
    },
    // raw: a filtered ordered consumer, fetch everything it has pending.
    async rawFull() {
      const c = await js.consumers.get(EVENT_STREAM, { filter_subjects: subject });
      const pending = (await c.info(true)).num_pending;
      let got = 0;
      for await (const m of await c.fetch({ max_messages: pending, expires: 5_000 }))
        if (m.data.length > 0) got++;
      if (got !== targetEvents) throw new Error(`raw filtered read returned ${got} messages`);
      leftovers.push(c);
    },
    // cps, with snapshot: a process that has just started (fresh store and handler, so nothing
    // is known in memory) loads the aggregate: snapshot, then whatever came after it.
    async snap() {
      const handler = new CommandHandler(new JetStreamEventStore(nc), tickDecider, {
        aggregateOf: () => target,
        snapshots,
      });
      const loaded = await handler.load(target);
      if (loaded.version !== targetEvents || loaded.state.count !== targetEvents)
        throw new Error(`load returned version ${loaded.version}`);
    },
    // raw: the aggregate's last message by subject (direct get).
    async rawSnap() {
      const m = await jsm.direct.getMessage(EVENT_STREAM, { last_by_subj: subject });
      if (!m || m.seq <= 0) throw new Error('direct get returned nothing');
    },
  };
  return { ops, leftovers };
};

/** One timing of each operation, in an order that rotates with `i`. */
const iteration = async (state, i) => {
  const names = ['full', 'rawFull', 'snap', 'rawSnap'];
  const order = names.map((_, j) => names[(i + j) % names.length]);
  const out = {};
  for (const name of order) {
    const t0 = now();
    await state.ops[name]();
    out[name] = now() - t0;
  }
  return out;
};

/** Deletes the raw baseline's ordered consumers (outside the timed part). */
const cleanLeftovers = async (state) => {
  const all = state.leftovers.splice(0);
  await Promise.allSettled(all.map((c) => c.delete()));
};
