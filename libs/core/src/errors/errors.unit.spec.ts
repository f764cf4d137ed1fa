import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConcurrencyError,
  CpsError,
  ErrorCodes,
  hasErrorCode,
  httpStatusOf,
  isCpsError,
  parseOrThrow,
} from '@cps/core';

describe('one error model', () => {
  it('maps every code to an HTTP status and retryability', () => {
    expect(httpStatusOf('validation')).toBe(400);
    expect(httpStatusOf('not_found')).toBe(404);
    expect(httpStatusOf('concurrency')).toBe(412);
    expect(new ConcurrencyError('x').retryable).toBe(true);
    expect(new CpsError('forbidden', 'x').retryable).toBe(false);
    for (const [, v] of Object.entries(ErrorCodes)) expect(v.status).toBeGreaterThanOrEqual(400);
  });

  it('is recognised by code, also for a plain object from another copy of the library', () => {
    const foreign = { [Symbol.for('cps.error')]: true, code: 'conflict' };
    expect(isCpsError(foreign)).toBe(true);
    expect(hasErrorCode(new ConcurrencyError('x'), 'concurrency')).toBe(true);
    expect(isCpsError(new Error('x'))).toBe(false);
  });

  it('travels as a body and back; a malformed body becomes internal', () => {
    const e = new CpsError('validation', 'bad', [{ path: '$.a', code: 'too_small', message: 'm' }]);
    const back = CpsError.fromBody(JSON.parse(JSON.stringify(e.toBody())));
    expect(back).toMatchObject({ code: 'validation', message: 'bad', issues: e.issues });
    expect(CpsError.fromBody({ code: 'nonsense', message: 'x' }).code).toBe('internal');
    expect(CpsError.fromBody('x').code).toBe('internal');
  });

  it('names every offending path of a zod failure', () => {
    const schema = z.object({ a: z.number(), list: z.array(z.object({ b: z.string() })) });
    try {
      parseOrThrow(schema, { a: 'x', list: [{ b: 'ok' }, { b: 3 }] });
      expect.unreachable();
    } catch (e) {
      expect(hasErrorCode(e, 'validation') && e.issues.map((i) => i.path)).toEqual(['$.a', '$.list[1].b']);
    }
  });
});
