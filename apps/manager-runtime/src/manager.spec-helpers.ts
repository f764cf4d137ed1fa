import { Bus, connectBus } from '@cps/bus';
import { EventCatalog, JetStreamEventStore, KvSnapshotStore } from '@cps/events';
import type { TestHost } from '@cps/testing';
import { serviceEvents } from '@cps/services';
import { ManagerRuntime, type ManagerRuntimeOptions } from './runtime/manager-runtime.js';

const buses = new WeakMap<ManagerRuntime, Bus>();

/** Stops a manager of {@link startManager} and closes its connection (its handlers go with it). */
export const stopManager = async (manager: ManagerRuntime | undefined): Promise<void> => {
  if (!manager) return;
  await manager.stop();
  await buses.get(manager)?.close();
};

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
  const bus = new Bus(nc);
  const manager = new ManagerRuntime({
    ...o,
    bus,
    store: new JetStreamEventStore(nc, { catalog: new EventCatalog(serviceEvents) }),
    snapshots: new KvSnapshotStore(nc),
  });
  buses.set(manager, bus);
  await manager.start();
  return manager;
};
