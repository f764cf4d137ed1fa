export { ErrorCodes, isErrorCode, httpStatusOf, type ErrorCode } from './errors/codes.js';
export {
  CpsError,
  ValidationError,
  NotFoundError,
  ConflictError,
  ConcurrencyError,
  ForbiddenError,
  UnavailableError,
  RateLimitedError,
  isCpsError,
  hasErrorCode,
  type Issue,
  type ErrorBody,
} from './errors/cps-error.js';
export { issuesFromZod, parseOrThrow } from './errors/zod.js';
export {
  fold,
  toArray,
  type Command,
  type CommandMetadata,
  type Decider,
  type Message,
} from './decider/decider.js';
export { DeciderSpecification } from './decider/specification.js';
export {
  ID_PATTERN,
  IdSchema,
  Roles,
  TRUST_DOMAIN,
  identityFromUri,
  identityToUri,
  type Identity,
  type Role,
} from './pki/identity.js';
export {
  createCsr,
  createIssuingCa,
  createRootCa,
  generateKeyPair,
  generateKeyPairAsync,
  KeyPairPool,
  inspectCertificate,
  isIssuedBy,
  issueCertificate,
  publicKeyFromCsr,
  type CertUsage,
  type CertificateAuthority,
  type CertificateInfo,
  type IssueOptions,
  type KeyPair,
} from './pki/pki.js';
export {
  isSealed,
  newSealingKeyMaterial,
  seal,
  sealingKeyFrom,
  deriveSecret,
  unseal,
  type SealingKey,
} from './crypto/sealed.js';
export { sameJson } from './json.js';
export {
  aggregateIds,
  formatAggregateId,
  nameScopes,
  parseAggregateId,
  tryParseAggregateId,
  type AggregateId,
  type AggregateType,
} from './ids/aggregate-ids.js';
export { serial, serialByKey, type Serial } from './concurrency/serial.js';
