import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSecret, seal, sealingKeyFrom, unseal } from '@cps/core';
import { EventCatalog, JetStreamEventStore, KvSnapshotStore } from '@cps/events';
import { joinBus, requireEnv as env, runNodeProcess } from '@cps/platform';
import { builtinServices, serviceEvents, ServiceRegistry } from '@cps/services';
import { ManagerRuntime } from './runtime/manager-runtime.js';
import { createBusApp } from '@cps/nest-bus';
import { subjects } from '@cps/bus';

const optionalMs = (name: string): number | undefined =>
  process.env[name] ? Number(process.env[name]) : undefined;
const line =
  (level: string) =>
  (msg: string, fields?: Record<string, unknown>): void =>
    console.log(JSON.stringify({ level, msg, ...fields }));

/** The manager process of one service, started by a supervisor with its identity in its node directory. */
runNodeProcess('manager', async () => {
  const { bus, renewer } = await joinBus(`manager:${env('CPS_SERVICE_ID')}`);
  const nc = bus.connection;
  const heartbeatTimeoutMs = optionalMs('CPS_HEARTBEAT_TIMEOUT_MS');
  const types = new ServiceRegistry([...builtinServices]);
  const heartbeatGraceMs = optionalMs('CPS_HEARTBEAT_GRACE_MS');
  const readyTimeoutMs = optionalMs('CPS_READY_TIMEOUT_MS');
  // the owner's key, when the supervisor gave one: opens the service's secret settings
  const keyFile = join(env('CPS_NODE_DIR'), 'secrets.key');
  const key = existsSync(keyFile) ? sealingKeyFrom(readFileSync(keyFile, 'utf8')) : undefined;
  const context = `svc:${env('CPS_SERVICE_ID')}`;
  const manager = new ManagerRuntime({
    bus,
    store: new JetStreamEventStore(nc, { catalog: new EventCatalog(serviceEvents) }),
    snapshots: new KvSnapshotStore(nc),
    service: types.get(env('CPS_SERVICE_TYPE')),
    types,
    appId: env('CPS_APP_ID'),
    serviceId: env('CPS_SERVICE_ID'),
    ...(heartbeatTimeoutMs ? { heartbeatTimeoutMs } : {}),
    ...(heartbeatGraceMs ? { heartbeatGraceMs } : {}),
    ...(readyTimeoutMs ? { readyTimeoutMs } : {}),
    log: { info: line('info'), warn: line('warn'), error: line('error') },
    ...(key
      ? {
          secrets: {
            seal: (clear: string) => seal(key, clear, context),
            open: (sealed: string) => unseal(key, sealed, context).toString('utf8'),
            derive: (purpose: string) => deriveSecret(key, `${context}/${purpose}`),
          },
        }
      : {}),
  });
  await manager.start({ serveBus: false });
  const app = await createBusApp({
    bus,
    address: subjects.manager(env('CPS_APP_ID'), env('CPS_SERVICE_ID')),
    commands: manager.commands(),
  });
  return {
    bus,
    renewer,
    stop: async () => {
      await manager.stop();
      await app.close();
    },
  };
});
