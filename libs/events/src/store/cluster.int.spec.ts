import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { EVENT_STREAM } from '@cps/bus';
import { ensureEventStream, JetStreamEventStore } from '@cps/events';
import { eventStoreContract, eventually, TestNats } from '@cps/testing';
import type { NatsConnection } from '@nats-io/transport-node';

const meta = () => ({ actor: 't', correlationId: 'c', causationId: randomUUID() });

let shared: Promise<TestNats> | undefined;
const cluster = (): Promise<TestNats> => (shared ??= TestNats.start({ size: 3 }));

const streamLeader = async (nc: NatsConnection): Promise<string> => {
  const r = await nc.request(`$JS.API.STREAM.INFO.${EVENT_STREAM}`, undefined, { timeout: 5_000 });
  return (JSON.parse(r.string()) as { cluster: { leader: string } }).cluster.leader;
};

eventStoreContract('JetStream, 3-server cluster, R3 stream', async () => {
  const nats = await cluster();
  const [u1, u2] = nats.urls;
  const a = await nats.connect({ role: 'director', id: 'd1' }, { servers: [u1 as string] });
  const b = await nats.connect({ role: 'director', id: 'd2' }, { servers: [u2 as string] });
  await ensureEventStream(a, { replicas: 3 });
  return {
    store: new JetStreamEventStore(a),
    other: new JetStreamEventStore(b),
    cleanup: () => Promise.resolve(),
  };
});

describe('R3 cluster faults', () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await cluster();
    await ensureEventStream(await nats.connect({ role: 'director', id: 'setup' }), { replicas: 3 });
  });
  afterAll(async () => nats.cleanup());

  it('never lets two racing writers both win (message id guard on 2.9.10)', async () => {
    const [u1, u2, u3] = nats.urls as [string, string, string];
    const s1 = new JetStreamEventStore(await nats.connect({ role: 'director', id: 'r1' }, { servers: [u2] }));
    const s2 = new JetStreamEventStore(await nats.connect({ role: 'director', id: 'r2' }, { servers: [u3] }));
    const s0 = new JetStreamEventStore(await nats.connect({ role: 'director', id: 'r0' }, { servers: [u1] }));
    let doubleWins = 0;
    for (let i = 0; i < 200; i++) {
      const agg = `race.r${i}`;
      await s0.append(agg, [{ type: 'x', data: {} }], { expectedVersion: 0, metadata: meta() });
      await Promise.all(
        [s1, s2].map((s) =>
          eventually(
            () => s.readAggregate(agg),
            (r) => r.version >= 1,
          ),
        ),
      );
      const rs = await Promise.allSettled([
        s1.append(agg, [{ type: 'x', data: { w: 1 } }], { expectedVersion: 1, metadata: meta() }),
        s2.append(agg, [{ type: 'x', data: { w: 2 } }], { expectedVersion: 1, metadata: meta() }),
      ]);
      const won = rs.filter((r) => r.status === 'fulfilled').length;
      if (won !== 1) doubleWins++;
      for (const r of rs)
        if (r.status === 'rejected') expect(hasErrorCode(r.reason, 'concurrency')).toBe(true);
      expect(
        (
          await eventually(
            () => s0.readAggregate(agg),
            (r) => r.events.length >= 2,
          )
        ).events,
      ).toHaveLength(2);
    }
    expect(doubleWins).toBe(0);
  });

  it('loses and duplicates nothing when the stream leader is killed during appends; the writer resumes', async () => {
    const nc = await nats.connect({ role: 'director', id: 'w1' });
    const store = new JetStreamEventStore(nc, { appendDeadlineMs: 40_000, requestTimeoutMs: 1_000 });
    const acked: number[] = [];
    const versions = new Map<string, number>();
    let stopped = false;
    let n = 0;
    const run = (async () => {
      while (!stopped) {
        const agg = `kill.k${n % 4}`;
        const r = await store.append(agg, [{ type: 'tick', data: { n } }], {
          expectedVersion: versions.get(agg) ?? 0,
          metadata: meta(),
        });
        versions.set(agg, r.version);
        acked.push(n++);
      }
    })();
    await new Promise((r) => setTimeout(r, 700));
    const leader = await streamLeader(nc);
    const index = nats.servers.nodes.findIndex((x) => x.name === leader);
    await nats.servers.kill(index);
    const atKill = acked.length;
    const deadline = Date.now() + 30_000;
    while (acked.length < atKill + 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    stopped = true;
    await run;
    expect(acked.length).toBeGreaterThan(atKill + 100);
    await nats.servers.restart(index);

    const all = await eventually(
      () => store.readAll(),
      (evs) => evs.filter((e) => e.aggregate.startsWith('kill.')).length >= acked.length,
    );
    const ns = all.filter((e) => e.aggregate.startsWith('kill.')).map((e) => (e.data as { n: number }).n);
    expect(new Set(ns).size).toBe(ns.length);
    expect(ns).toEqual(acked);
  });
});
