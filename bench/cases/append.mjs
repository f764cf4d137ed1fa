// (b) EventStore.append vs raw JetStream publish with the same headers, one server (R1).
import { measureAppends, recreateStream } from './append-core.mjs';

export default {
  id: 'append',
  letter: 'b',
  title: 'EventStore.append vs raw JetStream publish (msgID + expected last subject sequence), R1',
  fixture: 'server',
  figures: [
    {
      key: 'seqRate',
      label: 'b. append, sequential',
      unit: 'events/s',
      target: { on: 'ratio', op: '>=', value: 0.8 },
    },
    { key: 'seqP50', label: 'b. append, sequential p50', unit: 'ms', target: null },
    {
      key: 'parRate',
      label: 'b. append, 100 in flight',
      unit: 'events/s',
      target: { on: 'ratio', op: '>=', value: 0.8 },
    },
  ],

  async prepare(fx) {
    return { nc: fx.director };
  },

  async run(state, runIndex, opts) {
    // A fresh stream per run, so that every run starts from the same state.
    await recreateStream(state.nc, 1);
    return measureAppends(state.nc, `r${runIndex}`, runIndex, {
      warmup: opts.quick ? 100 : 200,
      sequential: opts.quick ? 500 : 2_000,
      slots: 100,
      inFlight: opts.quick ? 3_000 : 10_000,
    });
  },
};
