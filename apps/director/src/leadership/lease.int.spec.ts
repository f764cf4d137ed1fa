import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { TestNats } from '@cps/testing';
import { ensureLeaseStream, Lease } from './lease.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('leader lease on create-only appends', () => {
  let nats: TestNats;
  let a: NatsConnection;
  let b: NatsConnection;
  beforeAll(async () => {
    nats = await TestNats.start();
    a = await nats.connect({ role: 'director', id: 'd1' });
    b = await nats.connect({ role: 'director', id: 'd2' });
    await ensureLeaseStream(a);
  });
  afterAll(async () => nats.cleanup());

  it('elects one leader that keeps the lease, and hands over within two epochs when it stops', async () => {
    const epochMs = 400;
    const changes: string[] = [];
    const one = new Lease(a, { name: 't1', holder: 'd1', epochMs, onChange: (l) => changes.push(`d1:${l}`) });
    const two = new Lease(b, { name: 't1', holder: 'd2', epochMs, onChange: (l) => changes.push(`d2:${l}`) });
    one.start();
    two.start();
    let both = 0;
    let samples = 0;
    const until = Date.now() + 10 * epochMs;
    while (Date.now() < until) {
      if (one.leading && two.leading) both++;
      samples++;
      await sleep(10);
    }
    expect(both).toBe(0);
    expect(samples).toBeGreaterThan(100);
    // exactly one became leader and stayed so
    expect(changes).toHaveLength(1);
    const leader = changes[0]!.startsWith('d1') ? one : two;
    const other = leader === one ? two : one;
    expect(leader.leading).toBe(true);

    const stoppedAt = Date.now();
    await leader.stop();
    while (!other.leading && Date.now() - stoppedAt < 5 * epochMs) await sleep(10);
    expect(other.leading).toBe(true);
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(2 * epochMs + 200);
    await other.stop();
  });
});
