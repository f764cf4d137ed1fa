// (d) Full replay of the 100k-commit stream: JetStreamEventStore.readAll() vs a raw ordered
// consumer reading batches of 5,000, both on the director identity exactly as cps issues it. Each
// measurement runs in a fresh child process (own connection, clean memory figures).
//
// History: the first version of this benchmark found that identities issued with NATS's response
// permission (`allow_responses`) receive JetStream deliveries slower and slower on nats-server
// 2.9.10 (a 20k replay at ~5.8k events/s). cps now grants explicit reply-inbox permissions instead.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('../lib/replay-child.mjs', import.meta.url));

export default {
  id: 'replay',
  letter: 'd',
  title: 'Replay the whole 100k-commit stream',
  fixture: 'stream100k',
  figures: [
    {
      key: 'rate',
      label: 'd. full replay (director as issued)',
      unit: 'events/s',
      target: { on: 'cps', op: '>=', value: 150_000 },
    },
    { key: 'rssPeakMb', label: 'd. full replay, peak RSS growth', unit: 'MB', target: null, ratio: false },
    { key: 'heapRetainedMb', label: 'd. full replay, heap retained', unit: 'MB', target: null, ratio: false },
  ],

  async prepare(fx) {
    const issued = await fx.nats.identity({ role: 'director', id: 'replay' });
    return {
      urls: fx.nats.urls,
      tls: { ca: issued.tls.ca, cert: issued.tls.cert, key: issued.tls.key },
      inboxPrefix: issued.inboxPrefix,
      lastSeq: fx.lastSeq,
      credentials: { jwt: issued.credentials.jwt, seed: issued.credentials.seed },
      expected: fx.total,
    };
  },

  async run(state, runIndex) {
    const order = runIndex % 2 === 0 ? ['cps', 'raw'] : ['raw', 'cps'];
    const full = {};
    for (const mode of order) full[mode] = await replayInChild({ ...state, mode });
    return {
      rate: { cps: full.cps.rate, raw: full.raw.rate },
      rssPeakMb: { cps: full.cps.rssPeakMb, raw: full.raw.rssPeakMb },
      heapRetainedMb: { cps: full.cps.heapRetainedMb, raw: full.raw.heapRetainedMb },
    };
  },
};

const replayInChild = (task, timeoutMs = 120_000) =>
  new Promise((resolve, reject) => {
    const child = fork(CHILD, [], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`replay child (${task.mode}) did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', (m) => (result = m));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!result?.ok)
        reject(
          new Error(`replay child (${task.mode}) failed (exit ${code}): ${result?.error ?? 'no result'}`),
        );
      else if (result.events !== task.expected)
        reject(new Error(`${task.mode} replay read ${result.events} events, expected ${task.expected}`));
      else resolve(result);
    });
    child.send(task);
  });
