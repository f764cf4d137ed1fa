import type { z } from 'zod';
import { ValidationError, type Issue } from './cps-error.js';

const pathOf = (path: readonly PropertyKey[]): string =>
  path.length === 0
    ? '$'
    : '$' + path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');

/** One issue per offending field; an object's unknown keys are named one by one. */
export const issuesFromZod = (error: z.ZodError): Issue[] =>
  error.issues.flatMap((i): Issue[] =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: pathOf([...i.path, k]), code: i.code, message: `unknown field ${k}` }))
      : [{ path: pathOf(i.path), code: i.code, message: i.message }],
  );

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
