import { ErrorCodes, isErrorCode, type ErrorCode } from './codes.js';

/** One problem with one input field: `path` is the JSON path of the offending value. */
export interface Issue {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

/** The wire shape of an error, identical in bus reply headers/bodies and HTTP problem+json. */
export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly issues?: readonly Issue[];
}

const CPS_ERROR = Symbol.for('cps.error');

/**
 * The one error type of cps. Recognise it with {@link isCpsError} (works across package
 * copies and realms), branch on `code`, never on the class.
 */
export class CpsError extends Error {
  readonly [CPS_ERROR] = true;
  override readonly name: string = 'CpsError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues: readonly Issue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get retryable(): boolean {
    return ErrorCodes[this.code].retryable;
  }

  toBody(): ErrorBody {
    return this.issues.length > 0
      ? { code: this.code, message: this.message, issues: this.issues }
      : { code: this.code, message: this.message };
  }

  static fromBody(body: unknown): CpsError {
    if (typeof body === 'object' && body !== null) {
      const b = body as Partial<ErrorBody>;
      if (isErrorCode(b.code) && typeof b.message === 'string') {
        return new CpsError(b.code, b.message, Array.isArray(b.issues) ? b.issues : []);
      }
    }
    return new CpsError('internal', 'malformed error body');
  }
}

export const isCpsError = (e: unknown): e is CpsError =>
  typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[CPS_ERROR] === true;

export const hasErrorCode = (e: unknown, code: ErrorCode): e is CpsError => isCpsError(e) && e.code === code;

export class ValidationError extends CpsError {
  override readonly name = 'ValidationError';
  constructor(message: string, issues: readonly Issue[] = [], options?: { cause?: unknown }) {
    super('validation', message, issues, options);
  }
}

export class NotFoundError extends CpsError {
  override readonly name = 'NotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('not_found', message, [], options);
  }
}

export class ConflictError extends CpsError {
  override readonly name = 'ConflictError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('conflict', message, [], options);
  }
}

/** Optimistic concurrency lost: the aggregate moved on since it was read. Retryable. */
export class ConcurrencyError extends CpsError {
  override readonly name = 'ConcurrencyError';
  constructor(
    message: string,
    readonly expected?: bigint | number,
    readonly actual?: bigint | number,
    options?: { cause?: unknown },
  ) {
    super('concurrency', message, [], options);
  }
}

export class ForbiddenError extends CpsError {
  override readonly name = 'ForbiddenError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('forbidden', message, [], options);
  }
}

export class UnavailableError extends CpsError {
  override readonly name = 'UnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, [], options);
  }
}

/** Too many attempts: `retryAfterMs` says when the caller may try again (HTTP `Retry-After`). */
export class RateLimitedError extends CpsError {
  override readonly name = 'RateLimitedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super('rate_limited', message, [], options);
  }
}
