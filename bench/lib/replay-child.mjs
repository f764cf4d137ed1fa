// Child process of the replay benchmark (d): reads the whole event stream once, either through
// JetStreamEventStore.readAll() ("cps") or a raw ordered consumer in batches of 5,000 ("raw"), and
// reports time and memory. A fresh process per measurement keeps the memory figures clean.
// With `limit`, only the first `limit` commits are read.
// Started by bench/cases/replay.mjs with --expose-gc; it talks to its parent over IPC.
import { connectBus, EVENT_STREAM } from '@cps/bus';
import { JetStreamEventStore } from '@cps/events';
import { jetstream } from '@nats-io/jetstream';
import { performance } from 'node:perf_hooks';

const MB = 1024 * 1024;

const readRaw = async (nc, lastSeq) => {
  const js = jetstream(nc, { timeout: 10_000 });
  const consumer = await js.consumers.get(EVENT_STREAM);
  let seen = 0;
  let count = 0;
  try {
    while (seen < lastSeq) {
      const batch = await consumer.fetch({ max_messages: Math.min(5_000, lastSeq - seen), expires: 5_000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        if (m.data.length > 0) count++;
        seen = m.seq;
      }
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return { events: count, retained: null };
};

const readCps = async (nc, limit) => {
  const events = await new JetStreamEventStore(nc).readAll(limit ? { limit } : {});
  return { events: events.length, retained: events };
};

process.once('message', async (task) => {
  let nc;
  try {
    nc = await connectBus({
      servers: task.urls,
      tls: task.tls,
      credentials: task.credentials,
      inboxPrefix: task.inboxPrefix,
      name: `bench-replay-${task.mode}`,
      reconnect: false,
    });
    globalThis.gc();
    const before = process.memoryUsage();
    const t0 = performance.now();
    const r =
      task.mode === 'cps' ? await readCps(nc, task.limit) : await readRaw(nc, task.limit ?? task.lastSeq);
    const ms = performance.now() - t0;
    globalThis.gc();
    const after = process.memoryUsage();
    const peakRss = process.resourceUsage().maxRSS * 1024;
    process.send({
      ok: true,
      events: r.events,
      ms,
      rate: r.events / (ms / 1000),
      rssPeakMb: (peakRss - before.rss) / MB,
      heapRetainedMb: (after.heapUsed - before.heapUsed) / MB,
      kept: r.retained ? r.retained.length : 0,
    });
  } catch (e) {
    process.send({ ok: false, error: String(e?.stack ?? e) });
  } finally {
    await nc?.close().catch(() => undefined);
    process.disconnect();
  }
});
