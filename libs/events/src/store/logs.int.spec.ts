import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { LOG_STREAM, subjects } from '@cps/bus';
import { ensureEventStream, ensureLogStream } from '@cps/events';
import { TestNats } from '@cps/testing';

describe('logs live in a size-limited stream, apart from events', () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await TestNats.start();
    const nc = await nats.connect({ role: 'director', id: 'd1' });
    await ensureEventStream(nc);
    await ensureLogStream(nc, { maxBytes: 64 * 1024 });
  });
  afterAll(async () => nats.cleanup());

  it('keeps the newest lines within the byte limit; the event stream is untouched', async () => {
    const m = await nats.connect({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    const js = jetstream(m);
    const line = 'x'.repeat(1_000);
    for (let i = 0; i < 300; i++) await js.publish(subjects.logs('a1', 's1', 'n1'), `${i} ${line}`);
    const jsm = await jetstreamManager(await nats.connect({ role: 'director', id: 'd2' }));
    const logs = await jsm.streams.info(LOG_STREAM);
    expect(logs.state.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(logs.state.last_seq).toBe(300);
    expect(logs.state.first_seq).toBeGreaterThan(200);
    expect((await jsm.streams.info('CPS_EVENTS')).state.messages).toBe(0);
    await expect(js.publish(subjects.logs('a1', 's2', 'n9'), 'not mine', { timeout: 1_000 })).rejects.toThrow(
      /permission/i,
    );
  });
});
