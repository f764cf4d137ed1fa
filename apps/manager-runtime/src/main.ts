import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, isCpsError } from '@cps/core';
import { Bus, connectBus } from '@cps/bus';
import { EventCatalog, JetStreamEventStore, KvSnapshotStore } from '@cps/events';
import { IdentityRenewer, type BusIdentity } from '@cps/platform';
import { builtinServices, ServiceRegistry } from '@cps/services';
import { serviceEvents } from './service/events.js';
import { ManagerRuntime } from './runtime/manager-runtime.js';

/** The manager process of one service, started by a supervisor with its identity in its node directory. */
const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new CpsError('validation', `missing environment variable ${name}`);
  return v;
};

const main = async (): Promise<void> => {
  const identity = JSON.parse(
    readFileSync(join(env('CPS_NODE_DIR'), 'identity.json'), 'utf8'),
  ) as BusIdentity;
  const servers = env('CPS_NATS_URLS').split(',');
  const open = (id: BusIdentity) =>
    connectBus({
      servers,
      tls: id.tls,
      credentials: id.credentials,
      inboxPrefix: id.inboxPrefix,
      name: `manager:${env('CPS_SERVICE_ID')}`,
    });
  const nc = await open(identity);
  const bus = new Bus(nc);
  const renewer = new IdentityRenewer(
    bus,
    { ...identity, certExpiresAt: new Date(identity.certExpiresAt) },
    open,
  );
  const manager = new ManagerRuntime({
    bus,
    store: new JetStreamEventStore(nc, { catalog: new EventCatalog(serviceEvents) }),
    snapshots: new KvSnapshotStore(nc),
    service: new ServiceRegistry([...builtinServices]).get(env('CPS_SERVICE_TYPE')),
    appId: env('CPS_APP_ID'),
    serviceId: env('CPS_SERVICE_ID'),
    ...(process.env['CPS_HEARTBEAT_TIMEOUT_MS']
      ? { heartbeatTimeoutMs: Number(process.env['CPS_HEARTBEAT_TIMEOUT_MS']) }
      : {}),
    ...(process.env['CPS_READY_TIMEOUT_MS']
      ? { readyTimeoutMs: Number(process.env['CPS_READY_TIMEOUT_MS']) }
      : {}),
    log: {
      info: (msg, f) => console.log(JSON.stringify({ level: 'info', msg, ...f })),
      warn: (msg, f) => console.log(JSON.stringify({ level: 'warn', msg, ...f })),
      error: (msg, f) => console.error(JSON.stringify({ level: 'error', msg, ...f })),
    },
  });
  const shutdown = (): void => {
    renewer.stop();
    void manager
      .stop()
      .then(() => bus.close())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await manager.start();
  renewer.start();
};

main().catch((e: unknown) => {
  console.error(isCpsError(e) ? `manager failed [${e.code}]: ${e.message}` : e);
  process.exit(1);
});
