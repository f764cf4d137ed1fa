import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureEventStream, JetStreamEventStore } from '@cps/events';
import { TestNats } from '@cps/testing';

const meta = () => ({ actor: 't', correlationId: 'c', causationId: randomUUID() });

/** Appends to a few aggregates until `stop()`; records every acknowledged append. */
const writer = (store: JetStreamEventStore, aggregates: string[]) => {
  const acked: { aggregate: string; version: number; position: number; n: number }[] = [];
  const versions = new Map(aggregates.map((a) => [a, 0]));
  let stopped = false;
  let n = 0;
  const done = (async () => {
    while (!stopped) {
      const aggregate = aggregates[n % aggregates.length] as string;
      const v = versions.get(aggregate) as number;
      const r = await store.append(aggregate, [{ type: 'tick', data: { n } }], {
        expectedVersion: v,
        metadata: meta(),
      });
      versions.set(aggregate, r.version);
      acked.push({ aggregate, version: r.version, position: r.position, n });
      n++;
    }
  })();
  return { acked, stop: async () => ((stopped = true), await done) };
};

const checkNothingLost = async (
  store: JetStreamEventStore,
  acked: { aggregate: string; version: number; n: number }[],
) => {
  const all = await store.readAll();
  const ns = all.map((e) => (e.data as { n: number }).n);
  expect(new Set(ns).size).toBe(ns.length);
  expect(ns).toEqual([...ns].sort((a, b) => a - b));
  const stored = new Set(ns);
  expect(acked.filter((a) => !stored.has(a.n))).toEqual([]);
  for (const aggregate of new Set(acked.map((a) => a.aggregate))) {
    const read = await store.readAggregate(aggregate);
    expect(read.events.map((e) => e.aggregateVersion)).toEqual(read.events.map((_, i) => i + 1));
  }
};

describe('durability: kill -9 of a single nats-server during appends', () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await TestNats.start();
  });
  afterAll(async () => nats.cleanup());

  it('keeps every acknowledged event, in order, none duplicated; the writer resumes by itself', async () => {
    const nc = await nats.connect({ role: 'director', id: 'd1' });
    await ensureEventStream(nc);
    const store = new JetStreamEventStore(nc, { appendDeadlineMs: 30_000, requestTimeoutMs: 1_000 });
    const w = writer(store, ['acct.k1', 'acct.k2', 'acct.k3']);
    await new Promise((r) => setTimeout(r, 700));
    await nats.servers.kill(0);
    const atKill = w.acked.length;
    await new Promise((r) => setTimeout(r, 500));
    await nats.servers.restart(0);
    const deadline = Date.now() + 20_000;
    while (w.acked.length < atKill + 200 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await w.stop();
    expect(atKill).toBeGreaterThan(50);
    expect(w.acked.length).toBeGreaterThan(atKill + 100);
    await checkNothingLost(store, w.acked);
  });
});
