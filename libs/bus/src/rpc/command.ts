import type { z } from 'zod';
import { verb } from '../subjects.js';

/**
 * A command defined once and shared by its sender and its handler: both ends validate against
 * the same schemas. `name` is the last subject token (`<address>.<name>`).
 */
export interface CommandDefinition<
  Name extends string = string,
  Req extends z.ZodType = z.ZodType,
  Rep extends z.ZodType = z.ZodType,
> {
  readonly name: Name;
  readonly request: Req;
  readonly reply: Rep;
}

export type RequestOf<C extends CommandDefinition> = z.input<C['request']>;
export type ReplyOf<C extends CommandDefinition> = z.output<C['reply']>;

export const defineCommand = <Name extends string, Req extends z.ZodType, Rep extends z.ZodType>(
  name: Name,
  request: Req,
  reply: Rep,
): CommandDefinition<Name, Req, Rep> => ({ name: verb(name) as Name, request, reply });

/** Wire headers of cps requests and replies. */
export const Headers = {
  requestId: 'Cps-Request-Id',
  correlationId: 'Cps-Correlation-Id',
  /** Present on a reply that is an error; the value is the error code, the body an ErrorBody. */
  error: 'Cps-Error',
} as const;
