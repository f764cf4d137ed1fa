// (i, j) A director process started on a stream holding 10,000 applications (100,000 events, one
// commit each): time from process start until it serves HTTPS, without and with a snapshot of its
// read model, and its resident memory with all of it projected; next to a process started by hand
// that only reads the same stream raw.
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { subjects } from '@cps/bus';
import { aggregateIds } from '@cps/core';
import { ensureEventStream } from '@cps/events';
import { startNats, stopNats } from '../lib/fixtures.mjs';

const CHILD = fileURLToPath(new URL('../lib/director-child.mjs', import.meta.url));
const enc = new TextEncoder();
const APPS = 10_000;
const PER_APP = 10;

const commit = (aggregate, version, type, data) => {
  const id = randomUUID();
  return enc.encode(
    JSON.stringify({
      a: aggregate,
      v: version,
      e: [
        {
          type,
          version: 1,
          data,
          metadata: {
            eventId: id,
            at: new Date().toISOString(),
            actor: 'bench',
            correlationId: id,
            causationId: id,
          },
        },
      ],
    }),
  );
};

const inChild = (task, timeoutMs = 120_000) =>
  new Promise((resolve, reject) => {
    const child = fork(CHILD, [], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`director child (${task.mode}) did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('message', (m) => {
      clearTimeout(timer);
      child.send('stop');
      child.once('exit', () => (m.ok ? resolve(m) : reject(new Error(m.error))));
    });
    child.send(task);
  });

export default {
  id: 'directorstart',
  letter: 'i',
  title: 'director start with 100k events / 10k applications: time to serve, resident memory',
  fixture: 'apps10k',
  figures: [
    {
      key: 'start',
      label: 'i. process start to serving, 100k events',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 2000 },
    },
    {
      key: 'warm',
      label: 'i. start from a read-model snapshot, 100k events',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 2000 },
    },
    {
      key: 'rss',
      label: 'j. resident memory, 10k applications',
      unit: 'MB',
      target: { on: 'cps', op: '<=', value: 200 },
    },
  ],

  async prepare(fx) {
    const identity = await fx.nats.identity({ role: 'director', id: 'bench' });
    // the parent's own connection, to remove the read-model snapshot before a cold start
    const nc = await fx.nats.connect({ role: 'director', id: 'bench-parent' });
    snapshots = await new Objm(nc).create('cps_projections');
    return {
      urls: fx.nats.urls,
      identity: JSON.parse(JSON.stringify(identity)),
      secrets: fx.nats.secrets,
      lastSeq: fx.lastSeq,
    };
  },

  // cold: no snapshot (the director replays all 100k commits; it saves a snapshot once measured);
  // warm: the next start, from that snapshot; raw: the stream read by hand
  async run(s, runIndex) {
    const r = {};
    const cold = async () => {
      await snapshots.delete('directory').catch(() => undefined);
      r.cps = await inChild({ ...s, mode: 'cps', snapshotAfter: true });
      if (r.cps.restored) throw new Error('the cold start found a snapshot');
    };
    const raw = async () => (r.raw = await inChild({ ...s, mode: 'raw' }));
    for (const step of runIndex % 2 === 0 ? [cold, raw] : [raw, cold]) await step();
    r.warm = await inChild({ ...s, mode: 'cps' });
    for (const which of ['cps', 'warm'])
      if (r[which].apps !== APPS)
        throw new Error(`the director (${which}) projected ${r[which].apps} applications, expected ${APPS}`);
    if (!r.warm.restored) throw new Error('the warm start did not find the snapshot');
    return {
      start: { cps: r.cps.ms, raw: r.raw.ms },
      warm: { cps: r.warm.ms, raw: r.raw.ms },
      rss: { cps: r.cps.rssMb, raw: r.raw.rssMb },
    };
  },
};

let snapshots;

/** One server whose event stream holds 10,000 applications of one user, 10 events each. */
export const apps10kFixture = {
  async create(_opts, log) {
    const nats = await startNats(1);
    const nc = await nats.connect({ role: 'director', id: 'filler' });
    await ensureEventStream(nc, { replicas: 1 });
    const js = jetstream(nc, { timeout: 30_000 });
    const pending = new Set();
    const send = async (subject, payload) => {
      const p = js.publish(subject, payload).finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= 1_000) await Promise.race(pending);
    };
    const user = aggregateIds.user('ubench');
    await send(
      subjects.events(user),
      commit(user, 1, 'UserRegistered', {
        userId: 'ubench',
        username: 'bench',
        role: 'user',
        passwordHash: 'scrypt$x',
        credit: 50,
      }),
    );
    for (let i = 0; i < APPS; i++) {
      const appId = `a${i.toString(16).padStart(12, '0')}`;
      const agg = aggregateIds.app(appId);
      await send(
        subjects.events(agg),
        commit(agg, 1, 'ApplicationCreated', { appId, owner: 'ubench', name: `app-${i}`, description: '' }),
      );
      for (let v = 2; v <= PER_APP; v++)
        await send(
          subjects.events(agg),
          commit(agg, v, 'ApplicationDescribed', { description: `version ${v} of application ${i}` }),
        );
    }
    await Promise.all(pending);
    const lastSeq = APPS * PER_APP + 1;
    log(`apps10k: ${lastSeq} commits written`);
    await nc.close();
    return { nats, lastSeq };
  },
  dispose: (fx) => stopNats(fx.nats),
};
