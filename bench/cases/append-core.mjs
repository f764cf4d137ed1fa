// Shared by (b) and (e): JetStreamEventStore.append vs a raw JetStream publish with the same
// headers (Nats-Msg-Id `<aggregate>:<version>` + Nats-Expected-Last-Subject-Sequence).
import { EVENT_STREAM } from '@cps/bus';
import { JetStreamEventStore, ensureEventStream } from '@cps/events';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { commitPayload } from '../lib/fixtures.mjs';
import { alternate, now, percentile, sleep, timeSequential, timeInFlight } from '../lib/stats.mjs';

const event = (n) => ({
  type: 'node.reported',
  data: { n, host: `node-${n % 97}`, status: 'running', load: (n % 100) / 100 },
});
const metadata = { actor: 'bench', correlationId: 'bench-correlation', causationId: 'bench-causation' };

/** Deletes the event stream if it exists and creates it again with `replicas`. */
export const recreateStream = async (nc, replicas) => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(EVENT_STREAM).catch(() => undefined);
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureEventStream(nc, { replicas });
      const info = await jsm.streams.info(EVENT_STREAM);
      if (info.config.num_replicas !== replicas)
        throw new Error(`stream has ${info.config.num_replicas} replicas`);
      return info;
    } catch (e) {
      // A clustered stream that was just deleted can take a moment to disappear everywhere.
      if (attempt >= 20) throw e;
      await sleep(250);
    }
  }
};

/** One writer per aggregate through the store: each call appends the next version. */
const storeWriter = (store, aggregate) => {
  let version = 0;
  return async (n) => {
    const r = await store.append(aggregate, [event(n)], { expectedVersion: version, metadata });
    version = r.version;
  };
};

/** The same append by hand: a commit of the same shape, msgID and subject-sequence expectation. */
const rawWriter = (js, aggregate) => {
  let version = 0;
  let lastSeq = 0;
  return async (n) => {
    const v = version + 1;
    const ack = await js.publish(`cps.evt.${aggregate}`, commitPayload(aggregate, v, n), {
      msgID: `${aggregate}:${v}`,
      expect: { lastSubjectSequence: lastSeq },
      timeout: 5_000,
    });
    if (ack.duplicate) throw new Error(`raw append ${aggregate}:${v} was a duplicate`);
    version = v;
    lastSeq = ack.seq;
  };
};

/**
 * Measures sequential and `slots`-in-flight appends, cps and raw alternating block by block, on
 * connection `nc` against the stream as it is. `tag` keeps aggregate names unique per run.
 */
export const measureAppends = async (nc, tag, runIndex, o) => {
  const store = new JetStreamEventStore(nc);
  const js = jetstream(nc, { timeout: 5_000 });
  const writers = {
    cps: storeWriter(store, `seq.${tag}`),
    raw: rawWriter(js, `rawseq.${tag}`),
  };
  // Warm-up on separate aggregates (first append of an aggregate differs from the next ones).
  const warm = { cps: storeWriter(store, `warm.${tag}`), raw: rawWriter(js, `rawwarm.${tag}`) };
  await timeSequential(o.warmup, warm.cps);
  await timeSequential(o.warmup, warm.raw);

  const seq = await alternate(o.sequential, 8, runIndex, async (which, block, count) => {
    const t0 = now();
    const latencies = await timeSequential(count, writers[which], block * 10_000);
    return { ms: now() - t0, count, latencies };
  });

  const slots = {
    cps: Array.from({ length: o.slots }, (_, s) => storeWriter(store, `par.${tag}.s${s}`)),
    raw: Array.from({ length: o.slots }, (_, s) => rawWriter(js, `rawpar.${tag}.s${s}`)),
  };
  const par = await alternate(o.inFlight, 4, runIndex, async (which, block, count) => {
    const ms = await timeInFlight(count, o.slots, (slot, n) => slots[which][slot](block * 100_000 + n));
    return { ms, count };
  });

  const rate = (blocks) =>
    blocks.reduce((a, b) => a + b.count, 0) / (blocks.reduce((a, b) => a + b.ms, 0) / 1000);
  return {
    seqRate: { cps: rate(seq.cps), raw: rate(seq.raw) },
    seqP50: {
      cps: percentile(
        seq.cps.flatMap((b) => b.latencies),
        50,
      ),
      raw: percentile(
        seq.raw.flatMap((b) => b.latencies),
        50,
      ),
    },
    parRate: { cps: rate(par.cps), raw: rate(par.raw) },
  };
};
