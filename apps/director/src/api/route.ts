import { z } from 'zod';

/** Who may call a route: anyone, any signed-in user, or admins only. */
export type RouteAuth = 'none' | 'user' | 'admin';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * One HTTP route, defined once: the controller is bound to it (`@Route`), its inputs are validated
 * with these schemas before the handler runs, and the OpenAPI document is generated from it. Paths
 * use OpenAPI's `{name}` form.
 */
export interface RouteDefinition<
  P extends z.ZodObject = z.ZodObject,
  Q extends z.ZodObject = z.ZodObject,
  B extends z.ZodType | undefined = z.ZodType | undefined,
  R extends z.ZodType | undefined = z.ZodType | undefined,
> {
  readonly operationId: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  readonly auth: RouteAuth;
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  /** The success status and its body (undefined: no body, e.g. 204). */
  readonly status: 200 | 201 | 202 | 204;
  readonly response: R;
  /** A response that is not JSON (e.g. `text/event-stream`): documented, not validated. */
  readonly produces?: string;
  /**
   * The media types the body may come as (default: JSON alone); any other is refused with
   * `unsupported_media_type`. JSON is validated with `body`; another type reaches the handler as its
   * parser hands it over (`application/octet-stream`: the stream).
   */
  readonly consumes?: readonly string[];
  /** Error codes this route may answer besides the common ones (see `COMMON_ERRORS`). */
  readonly errors: readonly string[];
}

const empty = z.object({});

/** Declares a route; omitted parts default to "none" (empty params/query, no body). */
export const defineRoute = <
  P extends z.ZodObject = typeof empty,
  Q extends z.ZodObject = typeof empty,
  B extends z.ZodType | undefined = undefined,
  R extends z.ZodType | undefined = undefined,
>(r: {
  operationId: string;
  method: HttpMethod;
  path: string;
  summary: string;
  tag: string;
  auth?: RouteAuth;
  params?: P;
  query?: Q;
  body?: B;
  status?: 200 | 201 | 202 | 204;
  response?: R;
  produces?: string;
  consumes?: readonly string[];
  errors?: readonly string[];
}): RouteDefinition<P, Q, B, R> => ({
  ...r,
  auth: r.auth ?? 'user',
  params: (r.params ?? empty) as P,
  query: (r.query ?? empty) as Q,
  body: r.body as B,
  status: r.status ?? (r.method === 'POST' ? 201 : 200),
  response: r.response as R,
  errors: r.errors ?? [],
});

/** What a handler receives: the parsed inputs of its route. */
export interface RouteInput<D extends RouteDefinition> {
  readonly params: z.output<D['params']>;
  readonly query: z.output<D['query']>;
  readonly body: D['body'] extends z.ZodType ? z.output<D['body']> : undefined;
}

/** A handler's result: the route's response (input form: defaults may be left out). */
export type RouteOutput<D extends RouteDefinition> = D['response'] extends z.ZodType
  ? z.input<D['response']>
  : void;
