import type { z } from 'zod';
import { ValidationError, type Issue } from './cps-error.js';

const pathOf = (path: readonly PropertyKey[]): string =>
  path.length === 0
    ? '$'
    : '$' + path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');

export const issuesFromZod = (error: z.ZodError): Issue[] =>
  error.issues.map((i) => ({ path: pathOf(i.path), code: i.code, message: i.message }));

/** Parses `input` with `schema` or throws a {@link ValidationError} naming every offending path. */
export const parseOrThrow = <S extends z.ZodType>(schema: S, input: unknown, what = 'input'): z.output<S> => {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issues = issuesFromZod(r.error);
    throw new ValidationError(
      `invalid ${what}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return r.data;
};
