export { connectBus, type BusConnectOptions, type TlsMaterial } from './connection.js';
export {
  subjects,
  verb,
  Kinds,
  EVENT_STREAM,
  SNAPSHOT_BUCKET,
  LOG_STREAM,
  ARCHIVE_BUCKET_PREFIX,
  DATA_BUCKET_PREFIX,
  ALL_EVENTS,
  RENEWAL_SUBJECTS,
  type Address,
  type Kind,
} from './subjects.js';
export {
  permissionsFor,
  aggregateWriterSubjects,
  bucketReaderSubjects,
  bucketWriterSubjects,
  type BusPermissions,
} from './identity/permissions.js';
export {
  createOperatorMaterial,
  credsFile,
  newUserKey,
  issueSystemCredentials,
  issueUserCredentials,
  publicKeyOfSeed,
  serverAuthConfig,
  signTrustChain,
  type BusCredentials,
  type OperatorMaterial,
  type Revocations,
  type SignedTrustChain,
} from './identity/operator.js';
export {
  defineCommand,
  Headers,
  type CommandDefinition,
  type ReplyOf,
  type RequestOf,
} from './rpc/command.js';
export {
  Bus,
  toCpsError,
  untilServed,
  type BusOptions,
  type Handler,
  type HandlerContext,
  type RequestOptions,
  type Served,
} from './rpc/bus.js';
export { OperatorModeAuthority, type BusAuthority } from './identity/authority.js';
export {
  callMethod,
  EndpointSchema,
  LinkSchema,
  MountPathSchema,
  VolumeMountSchema,
} from './protocol/common.js';
export {
  addNodes,
  getHistory,
  getLogs,
  linkCredentials,
  getNodeInfo,
  getServiceInfo,
  listNodes,
  NodeInfoSchema,
  removeNodes,
  setArchive,
  setLinks,
  shutdownService,
  startupService,
  type NodeInfo,
} from './protocol/manager.js';
export {
  agentLogs,
  archiveChunk,
  ARCHIVE_TRANSFER_CHUNK,
  checkAgentProcess,
  configureAgent,
  HeartbeatSchema,
  MAX_ARCHIVE_BYTES,
  MAX_SPOOL_BYTES,
  SPOOL_NAME_PATTERN,
  SPOOL_TRANSFER_CHUNK,
  spoolInfo,
  spoolRead,
  spoolRemove,
  spoolWrite,
  type Heartbeat,
} from './protocol/agent.js';
export { createManagerNode, createNode, destroyNode, issueNodeCertificate } from './protocol/provisioner.js';
export { renewIdentity } from './protocol/identity.js';
