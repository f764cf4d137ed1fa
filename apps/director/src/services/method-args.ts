import type { z } from 'zod';
import { issuesFromZod, ValidationError, type Issue } from '@cps/core';

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields of `input` its parsed form lost: those its schema does not name, at their paths. */
const dropped = (input: unknown, output: unknown, path: string): Issue[] => {
  if (Array.isArray(input) && Array.isArray(output))
    return input.flatMap((v, i) => dropped(v, output[i], `${path}[${i}]`));
  if (!isRecord(input) || !isRecord(output)) return [];
  return Object.entries(input).flatMap(([k, v]) =>
    Object.hasOwn(output, k)
      ? dropped(v, output[k], `${path}.${k}`)
      : [{ path: `${path}.${k}`, code: 'unrecognized_keys', message: `unknown field ${k}` }],
  );
};

/**
 * The arguments of a service method call, parsed by the method's schema. Fields the schema does not
 * name are refused, at any depth, as the route's own strict schemas refuse them (a plugin's objects
 * would drop them silently); an object the schema leaves open (a record, a catch-all) keeps its
 * fields. Every problem is a `validation` issue at its path.
 */
export const parseMethodArgs = <S extends z.ZodType>(
  method: string,
  schema: S,
  args: unknown,
): z.output<S> => {
  const r = schema.safeParse(args);
  const issues = r.success ? dropped(args, r.data, '$') : issuesFromZod(r.error);
  if (issues.length > 0)
    throw new ValidationError(
      `invalid arguments for ${method}: ${issues
        .slice(0, 5)
        .map((i) => `${i.path} ${i.message}`)
        .join('; ')}`,
      issues,
    );
  return r.data as z.output<S>;
};
