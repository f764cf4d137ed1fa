export { TestNats, type TestNatsOptions } from './nats.js';
export { pooledKeys, testKeyPool } from './keys.js';
export { eventStoreContract, type StoreUnderTest } from './event-store-contract.js';
export { ViolationLog, trySubscribe } from './permissions.js';
export { eventually, EventuallyTimeoutError } from './eventually.js';
export { TestHost, type TestHostOptions } from './host.js';
export { sourceCommand, spawnSource } from './source-process.js';
export { ServiceHarness, type ServiceHarnessOptions } from './service-harness.js';
export { connectFrom } from './namespaces.js';
