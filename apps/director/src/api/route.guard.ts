import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { z } from 'zod';
import { CpsError, ForbiddenError, issuesFromZod, ValidationError, type Issue } from '@cps/core';
import type { RouteDefinition } from './route.js';
import { ROUTE_METADATA } from './route.decorator.js';
import type { CpsRequest, Principal } from './request.js';

/** Finds who calls from a request's credentials; throws `unauthenticated` for bad ones. */
export interface Authenticator {
  authenticate(req: CpsRequest): Promise<Principal | undefined>;
}

export const AUTHENTICATOR = Symbol('Authenticator');

const parse = (schema: z.ZodType, value: unknown, prefix: string): { data?: unknown; issues: Issue[] } => {
  const r = schema.safeParse(value);
  if (r.success) return { data: r.data, issues: [] };
  return {
    issues: issuesFromZod(r.error).map((i) => ({ ...i, path: i.path.replace(/^\$/, prefix) })),
  };
};

const isEmptyObject = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

/**
 * Runs before every handler: authenticates, checks the route's access level and the media type of
 * a body (the route's `consumes`, JSON by default: any other is `unsupported_media_type`), and
 * validates params, query and body against the route's schemas (every problem reported, with its
 * path: `$…` for the body, `query…` and `path…` for the others). A route without a body schema
 * takes no body, or an empty JSON object; anything else is `unexpected_body`. Nothing reaches a
 * handler unchecked.
 */
@Injectable()
export class RouteGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: Authenticator,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const def = this.reflector.get<RouteDefinition | undefined>(ROUTE_METADATA, ctx.getHandler());
    if (!def) throw new CpsError('internal', 'a handler without a route definition');
    const req = ctx.switchToHttp().getRequest<CpsRequest>();
    req.cps.route = def;
    const principal = await this.auth.authenticate(req);
    if (principal) req.cps.principal = principal;
    if (def.auth !== 'none' && !principal) throw new CpsError('unauthenticated', 'sign in first');
    if (def.auth === 'admin' && principal?.role !== 'admin') throw new ForbiddenError('admins only');
    if (principal?.readOnly && def.method !== 'GET' && def.auth !== 'none')
      throw new ForbiddenError('this token has the read scope only');

    if (req.body !== undefined) {
      const accepted = def.consumes ?? ['application/json'];
      if (!req.mediaType || !accepted.includes(req.mediaType))
        throw new CpsError('unsupported_media_type', `send the body as ${accepted.join(' or ')}`, [
          {
            path: '$',
            code: 'unsupported_media_type',
            message: `${req.mediaType ?? 'no media type'}: send ${accepted.join(' or ')}`,
          },
        ]);
    }
    const params = parse(def.params, req.params ?? {}, 'path');
    const query = parse(def.query, req.query ?? {}, 'query');
    const body = def.body
      ? parse(def.body, req.body, '$')
      : req.body === undefined || isEmptyObject(req.body)
        ? { data: undefined, issues: [] }
        : { issues: [{ path: '$', code: 'unexpected_body', message: 'this route takes no body' }] };
    const issues = [...params.issues, ...query.issues, ...body.issues];
    if (issues.length > 0)
      throw new ValidationError(
        `invalid request: ${issues
          .slice(0, 5)
          .map((i) => `${i.path} ${i.message}`)
          .join('; ')}`,
        issues,
      );
    req.cps.input = { params: params.data, query: query.data, body: body.data };
    return true;
  }
}
