export { AgentRuntime, type AgentRuntimeOptions } from './runtime/agent-runtime.js';
export {
  ProcessSupervisor,
  MetricsSampler,
  type WorkloadSpec,
  type WorkloadStatus,
} from './processes/index.js';
