import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { headers } from '@nats-io/transport-node';
import { CpsError, hasErrorCode, type ErrorBody } from '@cps/core';
import { type Bus, defineCommand, Headers, subjects } from '@cps/bus';
import { TestNats } from '@cps/testing';

const addNodes = defineCommand(
  'add_nodes',
  z.object({
    nodes: z.record(z.string(), z.number().int().min(1).max(100)),
    cloud: z.string().max(64).default('local'),
  }),
  z.object({ operationId: z.string() }),
);
const mgr = subjects.manager('a1', 's1');

describe('typed request/reply', () => {
  let nats: TestNats;
  let director: Bus;
  let calls = 0;
  beforeAll(async () => {
    nats = await TestNats.start();
    const server = await nats.bus({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    server.handle(mgr, addNodes, async (d, ctx) => {
      calls++;
      if (d.cloud === 'boom') throw new Error('secret internal detail');
      if (d.cloud === 'busy') throw new CpsError('conflict', 'service is ADAPTING');
      await new Promise((r) => setTimeout(r, 20));
      return { operationId: `op-${ctx.requestId}` };
    });
    await server.flush();
    director = await nats.bus({ role: 'director', id: 'd1' });
  });
  afterAll(async () => nats.cleanup());

  const raw = async (payload: string | Uint8Array): Promise<ErrorBody & { operationId?: string }> => {
    const r = await director.connection.request(`${mgr}.add_nodes`, payload, { timeout: 2_000 });
    return JSON.parse(r.string()) as ErrorBody;
  };

  it('round-trips a valid command, defaults applied', async () => {
    const r = await director.request(mgr, addNodes, { nodes: { node: 2 } }, { requestId: 'req-1' });
    expect(r).toEqual({ operationId: 'op-req-1' });
  });

  it('answers malformed JSON with a validation error at $', async () => {
    expect(await raw('{not json')).toMatchObject({
      code: 'validation',
      issues: [{ path: '$', code: 'invalid_json' }],
    });
  });

  it('answers schema violations with the offending paths', async () => {
    const body = await raw(JSON.stringify({ nodes: { node: 0, web: 'x' }, cloud: 7 }));
    expect(body.code).toBe('validation');
    expect(body.issues?.map((i) => i.path).sort()).toEqual(['$.cloud', '$.nodes.node', '$.nodes.web']);
    expect(await raw('')).toMatchObject({ code: 'validation', issues: [{ path: '$' }] });
    expect(await raw('[]')).toMatchObject({ code: 'validation' });
  });

  it('validates on the sending side too, before anything is sent', async () => {
    const before = calls;
    await expect(director.request(mgr, addNodes, { nodes: { node: -1 } })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.nodes.node',
    );
    expect(calls).toBe(before);
  });

  it('refuses a payload over max_payload at the client and keeps serving', async () => {
    const huge = 'x'.repeat(2 * 1024 * 1024);
    await expect(director.request(mgr, addNodes, { nodes: { node: 1 }, cloud: huge })).rejects.toThrow();
    await expect(director.connection.request(`${mgr}.add_nodes`, huge, { timeout: 1_000 })).rejects.toThrow(
      /payload/i,
    );
    const big = JSON.stringify({ nodes: { node: 1 }, cloud: 'y'.repeat(900_000) });
    expect(await raw(big)).toMatchObject({ code: 'validation', issues: [{ path: '$.cloud' }] });
    await expect(director.request(mgr, addNodes, { nodes: { a: 1 } })).resolves.toHaveProperty('operationId');
  });

  it('carries stable error codes; hides internal details', async () => {
    await expect(director.request(mgr, addNodes, { nodes: { a: 1 }, cloud: 'busy' })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'conflict') && e.message === 'service is ADAPTING',
    );
    await expect(director.request(mgr, addNodes, { nodes: { a: 1 }, cloud: 'boom' })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'internal') && !e.message.includes('secret'),
    );
  });

  it('answers a repeated request id from its cache without running the handler again', async () => {
    const before = calls;
    const a = await director.request(mgr, addNodes, { nodes: { n: 3 } }, { requestId: 'same' });
    const b = await director.request(mgr, addNodes, { nodes: { n: 3 } }, { requestId: 'same' });
    expect(b).toEqual(a);
    expect(calls).toBe(before + 1);
    const h = headers();
    h.set(Headers.requestId, 'same');
    const r = await director.connection.request(`${mgr}.add_nodes`, JSON.stringify({ nodes: { n: 3 } }), {
      timeout: 1_000,
      headers: h,
    });
    expect(r.json()).toEqual(a);
    expect(calls).toBe(before + 1);
  });

  it('reports unknown subjects as unavailable, quickly', async () => {
    const t0 = Date.now();
    await expect(
      director.request(subjects.manager('a1', 'nobody'), addNodes, { nodes: { a: 1 } }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'unavailable'));
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('closes at once when the server is gone, instead of waiting to drain', async () => {
    const own = await TestNats.start();
    try {
      const bus = await own.bus({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
      bus.handle(mgr, addNodes, async () => ({ operationId: 'x' }));
      await bus.flush();
      await own.servers.kill(0);
      const t0 = Date.now();
      await bus.close();
      // two bounded drains (subscriptions, connection) of 1 s each, then closed
      expect(Date.now() - t0).toBeLessThan(2_500);
      expect(bus.connection.isClosed()).toBe(true);
    } finally {
      await own.cleanup();
    }
  });
});
