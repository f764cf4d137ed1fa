// (a) Bus command round trip vs raw nats.js request-reply, sequential, small payload, over mTLS.
import { Bus, defineCommand, subjects } from '@cps/bus';
import { z } from 'zod';
import { alternate, percentile, timeSequential } from '../lib/stats.mjs';

const Ping = defineCommand(
  'ping',
  z.object({ seq: z.number().int(), note: z.string() }),
  z.object({ seq: z.number().int(), ok: z.boolean() }),
);

const enc = new TextEncoder();
const NOTE = 'bench-payload-0123456789';

export default {
  id: 'rpc',
  letter: 'a',
  title: 'Bus command round trip vs raw request-reply (sequential, mTLS)',
  fixture: 'server',
  figures: [
    {
      key: 'p50',
      label: 'a. command round trip p50',
      unit: 'ms',
      target: { on: 'ratio', op: '<=', value: 1.5 },
    },
    {
      key: 'p99',
      label: 'a. command round trip p99',
      unit: 'ms',
      target: { on: 'ratio', op: '<=', value: 2.5 },
    },
  ],

  async prepare(fx, opts) {
    const address = subjects.manager('a1', 's1');
    const server = new Bus(fx.manager);
    server.handle(address, Ping, (data) => ({ seq: data.seq, ok: true }));
    const client = new Bus(fx.director);
    // The raw responder lives under the same manager address (its permissions allow it) and
    // answers a reply of the same size as the Bus handler's.
    const rawSubject = `${address}.rawping`;
    const rawSub = fx.manager.subscribe(rawSubject, {
      callback: (err, m) => {
        if (!err) m.respond(enc.encode(JSON.stringify({ seq: 0, ok: true })));
      },
    });
    await fx.manager.flush();
    const cps = (i) => client.request(address, Ping, { seq: i, note: NOTE });
    const raw = (i) =>
      fx.director.request(rawSubject, enc.encode(JSON.stringify({ seq: i, note: NOTE })), { timeout: 5_000 });
    const first = await cps(0);
    if (!first.ok) throw new Error('Bus handler did not answer');
    await timeSequential(opts.quick ? 100 : 300, cps);
    await timeSequential(opts.quick ? 100 : 300, raw);
    return { cps, raw, server, client, rawSub };
  },

  async run(state, runIndex, opts) {
    const total = opts.quick ? 500 : 2_000;
    const r = await alternate(total, 20, runIndex, (which, block, count) =>
      timeSequential(count, which === 'cps' ? state.cps : state.raw, block * 1_000),
    );
    const cps = r.cps.flat();
    const raw = r.raw.flat();
    return {
      p50: { cps: percentile(cps, 50), raw: percentile(raw, 50) },
      p99: { cps: percentile(cps, 99), raw: percentile(raw, 99) },
    };
  },

  async dispose(state) {
    state.rawSub.unsubscribe();
  },
};
