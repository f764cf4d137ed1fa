/** The manager runtime: one service's manager, served over the bus (started by `main.ts`). */
export { ManagerRuntime, type ManagerRuntimeOptions, type SecretSealer } from './runtime/manager-runtime.js';
