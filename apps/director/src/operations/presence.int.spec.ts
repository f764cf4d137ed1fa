import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { eventually, TestNats } from '@cps/testing';
import { abandoned, Presence } from './presence.js';

describe('director presence in KV', () => {
  let nats: TestNats;
  let a: NatsConnection;
  let b: NatsConnection;
  beforeAll(async () => {
    nats = await TestNats.start();
    a = await nats.connect({ role: 'director', id: 'd1' });
    b = await nats.connect({ role: 'director', id: 'd2' });
    await Presence.ensure(a, 1, 1_000);
  });
  afterAll(async () => nats.cleanup());

  it('tells live processes from gone ones: stopped at once, dead within the TTL', async () => {
    const one = new Presence(a, 'd1.aaaa', 300);
    const two = new Presence(b, 'd2.bbbb', 300);
    await one.start();
    await two.start();
    // beating keeps a key past the TTL
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await two.alive('d1.aaaa')).toBe(true);
    expect(await one.alive('d2.bbbb')).toBe(true);
    expect(await two.alive('d1.other')).toBe(false);
    expect(await abandoned(two, 'd1.aaaa')).toBe(false);
    expect(await abandoned(two, undefined)).toBe(true);

    // a stop is seen at once
    await one.stop();
    expect(await two.alive('d1.aaaa')).toBe(false);

    // a process that dies (its connection gone, nothing deleted) is gone once the TTL has passed
    const c = await nats.connect({ role: 'director', id: 'd3' });
    const three = new Presence(c, 'd3.cccc', 300);
    await three.start();
    expect(await two.alive('d3.cccc')).toBe(true);
    await c.close();
    const gone = await eventually(
      () => two.alive('d3.cccc'),
      (alive) => !alive,
      5_000,
    );
    expect(gone).toBe(false);
    await two.stop();
    await three.stop();
  });
});
