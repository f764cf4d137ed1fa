export { connectBus, type BusConnectOptions, type TlsMaterial } from './connection.js';
export {
  subjects,
  verb,
  Kinds,
  EVENT_STREAM,
  SNAPSHOT_BUCKET,
  LOG_STREAM,
  ARCHIVE_BUCKET_PREFIX,
  ALL_EVENTS,
  type Address,
  type Kind,
} from './subjects.js';
export {
  permissionsFor,
  aggregateWriterSubjects,
  bucketReaderSubjects,
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
