import { z } from 'zod';

/** The wire shapes every feature of the API shares; each feature's own are in its `*.schemas.ts`. */

/** A user's own name for an application or service: letters, digits, spaces, `.`, `_`, `-`. */
export const NameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9._-])?$/, 'letters, digits, space . _ -; 1-64');
/** The longest path parameter of any route, characters (decoded): the router refuses longer ones. */
export const MAX_PATH_PARAM_LENGTH = 128;
/** `{app}`, `{svc}` in paths: the id, or the caller's name for it. */
export const RefSchema = z.string().min(1).max(MAX_PATH_PARAM_LENGTH);
/** A time on the wire. */
export const TimeSchema = z.string().describe('ISO-8601 time');

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string().describe('stable error code'),
    detail: z.string(),
    issues: z
      .array(z.object({ path: z.string(), code: z.string(), message: z.string() }))
      .optional()
      .describe('one entry per offending field (the first 100; `detail` says how many there were)'),
    requestId: z.string(),
  })
  .meta({ id: 'Problem' });

/** `{ <key>: item[] }`: a list answered whole. */
export const listOf = <T extends z.ZodType>(key: string, item: T) => z.object({ [key]: z.array(item) });
