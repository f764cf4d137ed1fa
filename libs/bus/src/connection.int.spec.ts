import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNats } from '@cps/testing';

describe('smoke', () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await TestNats.start();
  });
  afterAll(async () => nats.cleanup());

  it('connects a director with mTLS + JWT and reaches JetStream', async () => {
    const nc = await nats.connect({ role: 'director', id: 'd1' });
    const r = await nc.request('$JS.API.INFO', '', { timeout: 2000 });
    expect(JSON.parse(r.string())).toHaveProperty('type', 'io.nats.jetstream.api.v1.account_info_response');
  });
});
