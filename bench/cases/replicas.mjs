// (e) Append on an R3 stream vs an R1 stream in one 3-server cluster. Both streams carry the
// subjects `cps.evt.>`, so they cannot coexist: each run deletes and recreates the event stream
// with one replica count, measures, then does the same with the other (order alternating per run).
// The writer is connected to the server that leads the stream (for R1: the server holding it).
import { EVENT_STREAM } from '@cps/bus';
import { jetstreamManager } from '@nats-io/jetstream';
import { measureAppends, recreateStream } from './append-core.mjs';
import { sleep } from '../lib/stats.mjs';

export default {
  id: 'replicas',
  letter: 'e',
  title: 'Append on R3 vs R1 in a 3-server cluster (client on the stream leader)',
  fixture: 'cluster',
  figures: [
    { key: 'r1Seq', label: 'e. append R1, sequential', unit: 'events/s', target: null },
    { key: 'r3Seq', label: 'e. append R3, sequential', unit: 'events/s', target: null },
    { key: 'r3SeqP50', label: 'e. append R3, sequential p50', unit: 'ms', target: null },
    { key: 'seqRatio', label: 'e. R3/R1, sequential', unit: 'x', target: { note: 'reference: raw ~0.4x' } },
    { key: 'r1Par', label: 'e. append R1, 100 in flight', unit: 'events/s', target: null },
    { key: 'r3Par', label: 'e. append R3, 100 in flight', unit: 'events/s', target: null },
    {
      key: 'parRatio',
      label: 'e. R3/R1, 100 in flight',
      unit: 'x',
      target: { note: 'reference: raw ~0.65x' },
    },
  ],

  async prepare(fx) {
    return { fx, jsm: await jetstreamManager(fx.any) };
  },

  async run(state, runIndex, opts) {
    const out = {};
    for (const replicas of runIndex % 2 === 0 ? [1, 3] : [3, 1]) {
      await recreateStream(state.fx.any, replicas);
      const leader = await waitForLeader(state.jsm, replicas);
      const nc = state.fx.byServer.get(leader);
      if (!nc) throw new Error(`no connection to stream leader ${leader}`);
      out[replicas] = await measureAppends(nc, `r${runIndex}x${replicas}`, runIndex, {
        warmup: opts.quick ? 100 : 200,
        sequential: opts.quick ? 500 : 2_000,
        slots: 100,
        inFlight: opts.quick ? 3_000 : 10_000,
      });
    }
    const r1 = out[1];
    const r3 = out[3];
    return {
      r1Seq: r1.seqRate,
      r3Seq: r3.seqRate,
      r3SeqP50: r3.seqP50,
      seqRatio: { cps: r3.seqRate.cps / r1.seqRate.cps, raw: r3.seqRate.raw / r1.seqRate.raw },
      r1Par: r1.parRate,
      r3Par: r3.parRate,
      parRatio: { cps: r3.parRate.cps / r1.parRate.cps, raw: r3.parRate.raw / r1.parRate.raw },
    };
  },

  async dispose(state) {
    await state.jsm.streams.delete(EVENT_STREAM).catch(() => undefined);
  },
};

/** The stream leader's server name, once it is elected and (R3) every replica is current. */
const waitForLeader = async (jsm, replicas, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await jsm.streams.info(EVENT_STREAM).catch(() => undefined);
    const c = info?.cluster;
    const peers = c?.replicas ?? [];
    if (c?.leader && (replicas === 1 || (peers.length === replicas - 1 && peers.every((p) => p.current))))
      return c.leader;
    if (Date.now() > deadline) throw new Error(`stream ${EVENT_STREAM} (R${replicas}) has no settled leader`);
    await sleep(100);
  }
};
