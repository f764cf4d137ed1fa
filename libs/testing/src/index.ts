export { TestNats, type TestNatsOptions } from './nats.js';
export { pooledKeys, testKeyPool } from './keys.js';
