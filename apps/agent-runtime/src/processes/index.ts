export {
  ProcessSupervisor,
  type LogsOptions,
  type ProcessSupervisorOptions,
  type StopOptions,
} from './process-supervisor.js';
export {
  DEFAULT_LOG_LIMIT_BYTES,
  backoffDelayMs,
  resolveSpec,
  wantsRestart,
  type BackoffPolicy,
  type RestartPolicy,
  type WorkloadEvent,
  type WorkloadEventListener,
  type WorkloadExit,
  type WorkloadSpec,
  type WorkloadState,
  type WorkloadStatus,
} from './workload.js';
export {
  MetricsSampler,
  sampleMetrics,
  type MetricsSample,
  type MetricsSamplerOptions,
  type NodeMetrics,
  type ProcessMetrics,
  type Usage,
} from './metrics.js';
export {
  nodeCpuPercent,
  parseCpuTimes,
  parseLoadavg,
  parseMeminfo,
  parsePageSize,
  parseProcStat,
  parseStatmRss,
  processCpuPercent,
  type CpuTimes,
  type MemInfo,
  type ProcStat,
} from './proc-parsers.js';
