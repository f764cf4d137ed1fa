export {
  agentMethod,
  allowedStates,
  defineService,
  GENERIC_AGENT_METHODS,
  GENERIC_MANAGER_METHODS,
  managerMethod,
  pluginState,
  ServiceStatuses,
  strictSettings,
  type AnyAgentMethod,
  type AnyManagerMethod,
  type MethodDefinition,
  type PluginState,
  type ServiceDefinition,
  type ServiceStatus,
} from './contract/service.js';
export type {
  AgentContext,
  ArchiveView,
  Endpoint,
  ExecResult,
  LinkView,
  NodeConfig,
  VolumeMount,
  ManagerContext,
  NodeAnswer,
  NodeView,
  ObjectView,
  PluginLogger,
  ServiceObjects,
  WorkFiles,
  WorkloadRequest,
} from './contract/context.js';
export { ServiceRegistry, type MethodInfo, type ServiceTypeInfo } from './contract/registry.js';
export { isSecret, mapSecrets, redact, REDACTED, secret, secretRegistry } from './contract/secrets.js';
export { serviceEvents, type ServiceEvent } from './aggregate/events.js';
export {
  evolveService,
  linksAtCreation,
  serviceDecider,
  withV2Fields,
  type NodeRequest,
  type ServiceCommand,
  type ServiceNode,
  type ServiceState,
} from './aggregate/decider.js';
export { serviceHistory } from './aggregate/history.js';
export { helloworldService } from './helloworld/helloworld.js';
export { genericService } from './generic-service/generic.js';
export { redisService } from './redis/redis.js';
export { mysqlService } from './mysql/mysql.js';
export { phpService } from './php/php.js';
export { storageService } from './storage/storage.js';

import { helloworldService } from './helloworld/helloworld.js';
import { genericService } from './generic-service/generic.js';
import { redisService } from './redis/redis.js';
import { mysqlService } from './mysql/mysql.js';
import { phpService } from './php/php.js';
import { storageService } from './storage/storage.js';

/** Every service type cps ships, in one explicit list. */
export const builtinServices = [
  helloworldService,
  genericService,
  redisService,
  mysqlService,
  phpService,
  storageService,
] as const;
