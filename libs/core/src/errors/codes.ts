/**
 * The stable error codes of cps. A code never changes meaning once released; clients
 * (CLI, SDK, dashboard) branch on it. Each code carries its HTTP status and whether a
 * retry of the same request may succeed.
 */
export const ErrorCodes = {
  validation: { status: 400, retryable: false },
  unauthenticated: { status: 401, retryable: false },
  forbidden: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  conflict: { status: 409, retryable: false },
  name_taken: { status: 409, retryable: false },
  concurrency: { status: 412, retryable: true },
  payload_too_large: { status: 413, retryable: false },
  unsupported_media_type: { status: 415, retryable: false },
  quota_exceeded: { status: 429, retryable: false },
  rate_limited: { status: 429, retryable: true },
  internal: { status: 500, retryable: false },
  unavailable: { status: 503, retryable: true },
  timeout: { status: 504, retryable: true },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export const isErrorCode = (value: unknown): value is ErrorCode =>
  typeof value === 'string' && Object.hasOwn(ErrorCodes, value);

export const httpStatusOf = (code: ErrorCode): number => ErrorCodes[code].status;
