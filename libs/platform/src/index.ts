export { findNatsServer } from './nats-server/binary.js';
export { renderServerConfig, type ServerConfigOptions, type ServerTlsFiles } from './nats-server/config.js';
export { freePort } from './nats-server/ports.js';
export { AddressInUseError, NatsServerProcess, type NatsServerStartOptions } from './nats-server/process.js';
export {
  writeClusterConfig,
  type ClusterConfigOptions,
  type ClusterServer,
  type WrittenServer,
} from './nats-server/cluster-config.js';
export { NatsServers, type NatsNodeSpec, type StartServersOptions } from './nats-server/cluster.js';
export {
  busTrustPem,
  createPlatformSecrets,
  freshKeys,
  issueBusIdentity,
  issueServerCert,
  servicesCertifier,
  SERVICE_CERT_TTL_MS,
  type BusIdentity,
  type KeySource,
  type PlatformSecrets,
} from './trust.js';
export {
  defaultHome,
  exportJoinBundle,
  joinPlatform,
  PlatformHome,
  type PlatformNetwork,
  type PlatformInfo,
} from './home/platform-home.js';
export { loadMasterKey } from './home/master-key.js';
export { checkHealth, type PlatformHealth } from './launcher/health.js';
export {
  down,
  isRunning,
  platformProcesses,
  readyInfo,
  runSupervisor,
  supervisorPid,
  up,
} from './launcher/launcher.js';
export { RestartBackoff, type RestartBackoffOptions } from './launcher/backoff.js';
export {
  identityDecider,
  identityEvents,
  IdentitySchema,
  REENROLL_WITHIN_MS,
  type IdentityCommand,
  type IdentityEvent,
  type IdentityState,
} from './identity/identity-decider.js';
export {
  IdentityIssuer,
  type Enrolled,
  type IssuerOptions,
  type Reenrollment,
} from './identity/identity-issuer.js';
export {
  REENROLL_PROOF_WINDOW_MS,
  signReenrollClaim,
  type ReenrollClaim,
} from './identity/reenroll-proof.js';
export { IdentityRenewer, type RenewerOptions } from './identity/renewer.js';
export { EnrollingNodeIdentities, IssuedNodeIdentities } from './identity/node-identities.js';
export {
  ENROLL_PATH,
  enrollNode,
  EnrollRequestSchema,
  handleEnrollment,
  type EnrollNodeOptions,
  type EnrollRequest,
} from './enrollment/enrollment.js';
export {
  EnrollReplySchema,
  type EnrollReply,
  type EnrollTransport,
  type ExchangeOptions,
} from './enrollment/exchange.js';
export {
  handleReenrollment,
  REENROLL_PATH,
  reenrollNode,
  ReenrollRequestSchema,
  type ReenrollNodeOptions,
  type ReenrollRequest,
} from './enrollment/reenrollment.js';
export { joinBus, requireEnv, runNodeProcess } from './node/node-process.js';
