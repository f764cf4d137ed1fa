import { CpsError, httpStatusOf, isCpsError, isErrorCode, type ErrorCode, type Issue } from '@cps/core';
import { MAX_PATH_PARAM_LENGTH } from './schemas.js';

/** The body of every error answer (`application/problem+json`, RFC 9457, plus cps's code and issues). */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  readonly issues?: readonly Issue[];
  readonly requestId: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const TITLES: Record<ErrorCode, string> = {
  validation: 'Invalid request',
  unauthenticated: 'Not signed in',
  forbidden: 'Not allowed',
  not_found: 'Not found',
  conflict: 'Conflict',
  name_taken: 'Name taken',
  concurrency: 'Changed concurrently',
  payload_too_large: 'Too large',
  unsupported_media_type: 'Unsupported media type',
  quota_exceeded: 'Quota exceeded',
  rate_limited: 'Too many requests',
  internal: 'Internal error',
  unavailable: 'Unavailable',
  timeout: 'Timed out',
};

/** Errors of the HTTP layer itself (fastify's parsers and router), by their fastify code. */
const FRAMEWORK: Record<string, { code: ErrorCode; issue?: Issue }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'payload_too_large',
    issue: { path: '$', code: 'too_large', message: 'request body too large' },
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    issue: { path: '$', code: 'unsupported_media_type', message: 'send application/json' },
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'validation',
    issue: { path: '$', code: 'empty_body', message: 'empty JSON body' },
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'validation' },
  FST_ERR_BAD_URL: {
    code: 'validation',
    issue: { path: 'path', code: 'invalid_escape', message: 'a malformed %-escape in the path' },
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    code: 'validation',
    issue: {
      path: 'path',
      code: 'too_big',
      message: `a path parameter longer than ${MAX_PATH_PARAM_LENGTH} characters`,
    },
  },
};

/** Any thrown value as a CpsError: framework errors by code, the rest as `internal` (details hidden). */
export const toCpsErrorHttp = (e: unknown): CpsError => {
  if (isCpsError(e)) return e;
  const err = e as { code?: string; statusCode?: number; message?: string; status?: number };
  const known = err.code ? FRAMEWORK[err.code] : undefined;
  if (known) return new CpsError(known.code, err.message ?? known.code, known.issue ? [known.issue] : []);
  const status = err.statusCode ?? err.status;
  if (err instanceof SyntaxError || (status === 400 && /JSON/i.test(err.message ?? '')))
    return new CpsError('validation', 'malformed JSON body', [
      { path: '$', code: 'invalid_json', message: err.message ?? 'malformed JSON' },
    ]);
  if (status === 404) return new CpsError('not_found', 'no such route');
  if (status === 405) return new CpsError('not_found', 'no such route');
  if (status === 413) return new CpsError('payload_too_large', 'request body too large');
  if (status === 415)
    return new CpsError('unsupported_media_type', 'unsupported media type', [
      { path: '$', code: 'unsupported_media_type', message: 'send application/json' },
    ]);
  if (typeof status === 'number' && status >= 400 && status < 500)
    return new CpsError('validation', err.message ?? 'bad request');
  return new CpsError('internal', 'internal error', [], { cause: e });
};

/** The most issues a problem lists (the first ones): its size stays bounded whatever was sent. */
export const MAX_PROBLEM_ISSUES = 100;

export const problemOf = (e: CpsError, requestId: string): Problem => ({
  type: `urn:cps:error:${e.code}`,
  title: TITLES[e.code],
  status: httpStatusOf(e.code),
  code: isErrorCode(e.code) ? e.code : 'internal',
  detail:
    e.code === 'internal'
      ? 'internal error'
      : e.issues.length > MAX_PROBLEM_ISSUES
        ? `${e.message} (${e.issues.length} issues, the first ${MAX_PROBLEM_ISSUES} listed)`
        : e.message,
  ...(e.issues.length > 0 ? { issues: e.issues.slice(0, MAX_PROBLEM_ISSUES) } : {}),
  requestId,
});

/**
 * The answer to a request too malformed for the framework to route (the HTTP parser refused it):
 * a whole HTTP response, problem+json like every other error, after which the connection ends.
 */
export const clientErrorResponse = (err: { code?: string }, requestId: string): string => {
  const [status, reason, code, detail]: [number, string, ErrorCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'payload_too_large', 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'timeout', 'the request did not arrive in time']
        : [400, 'Bad Request', 'validation', 'malformed HTTP request'];
  const body = JSON.stringify({
    ...problemOf(new CpsError(code, detail), requestId),
    status,
    issues: [{ path: '$', code: 'malformed_http', message: err.code ?? 'unknown' }],
  } satisfies Problem);
  return [
    `HTTP/1.1 ${status} ${reason}`,
    `content-type: ${PROBLEM_CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${requestId}`,
    'connection: close',
    '',
    body,
  ].join('\r\n');
};
