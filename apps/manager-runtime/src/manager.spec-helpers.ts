import { Bus, connectBus } from '@cps/bus';
import { EventCatalog, JetStreamEventStore, KvSnapshotStore } from '@cps/events';
import type { TestHost } from '@cps/testing';
import { serviceEvents } from './service/events.js';
import { ManagerRuntime, type ManagerRuntimeOptions } from './runtime/manager-runtime.js';

/** A manager in this test process, with an identity from the host's issuer, as a supervisor would start it. */
export const startManager = async (
  host: TestHost,
  o: Omit<ManagerRuntimeOptions, 'bus' | 'store' | 'snapshots'>,
): Promise<ManagerRuntime> => {
  const id = await host.issuer.issue({
    role: 'manager',
    id: o.serviceId,
    appId: o.appId,
    serviceId: o.serviceId,
  });
  const nc = await connectBus({
    servers: host.nats.urls,
    tls: id.tls,
    credentials: id.credentials,
    inboxPrefix: id.inboxPrefix,
  });
  const manager = new ManagerRuntime({
    ...o,
    bus: new Bus(nc),
    store: new JetStreamEventStore(nc, { catalog: new EventCatalog(serviceEvents) }),
    snapshots: new KvSnapshotStore(nc),
  });
  await manager.start();
  return manager;
};
