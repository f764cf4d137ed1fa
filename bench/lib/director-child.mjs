// Child process of the director start benchmark (i, j): either starts a director on the given NATS
// ("cps": time from process start until it serves, and its memory with the history projected) or
// reads the same stream with a raw ordered consumer ("raw": the same clock, a process started by hand
// that only reads). It talks to its parent over IPC and stays alive until told to stop.
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { connectBus, EVENT_STREAM, OperatorModeAuthority } from '@cps/bus';
import { jetstream } from '@nats-io/jetstream';

const MB = 1024 * 1024;

process.once('message', async (task) => {
  try {
    let info;
    if (task.mode === 'cps') {
      const { Director } = await import('@cps/director');
      const director = await Director.start({
        directorId: 'bench',
        natsUrls: task.urls,
        identity: task.identity,
        secrets: task.secrets,
        authority: new OperatorModeAuthority(task.secrets.operator, () =>
          Promise.reject(new Error('no revocations here')),
        ),
        clouds: [],
        port: 0,
        adminPassword: 'bench-admin-password',
        accounts: { scryptN: 2 ** 10 },
        log: pino({ level: 'silent' }),
      });
      info = {
        ms: performance.now(),
        apps: director.core.directory.apps.size,
        restored: director.restoredFrom !== undefined,
      };
      globalThis.gc?.();
      const rssMb = process.memoryUsage().rss / MB;
      // measured: now leave a snapshot for the next (warm) start
      if (task.snapshotAfter) await director.snapshotReadModel();
      process.send({ ok: true, ...info, rssMb });
      process.once('message', () => void director.stop().finally(() => process.exit(0)));
    } else {
      const nc = await connectBus({
        servers: task.urls,
        tls: task.identity.tls,
        credentials: task.identity.credentials,
        inboxPrefix: task.identity.inboxPrefix,
        reconnect: false,
      });
      const consumer = await jetstream(nc, { timeout: 10_000 }).consumers.get(EVENT_STREAM);
      let seen = 0;
      while (seen < task.lastSeq) {
        const batch = await consumer.fetch({
          max_messages: Math.min(5_000, task.lastSeq - seen),
          expires: 5_000,
        });
        let got = 0;
        for await (const m of batch) {
          got++;
          seen = m.seq;
        }
        if (got === 0) break;
      }
      await consumer.delete().catch(() => undefined);
      info = { ms: performance.now(), read: seen };
      globalThis.gc?.();
      process.send({ ok: true, ...info, rssMb: process.memoryUsage().rss / MB });
      process.once('message', () => void nc.close().finally(() => process.exit(0)));
    }
  } catch (e) {
    process.send({ ok: false, error: String(e?.stack ?? e) });
    process.exit(1);
  }
});
