import {
  applyDecorators,
  createParamDecorator,
  HttpCode,
  RequestMapping,
  RequestMethod,
  SetMetadata,
  type ExecutionContext,
} from '@nestjs/common';
import type { RouteDefinition } from './route.js';
import type { CpsRequest } from './request.js';

export const ROUTE_METADATA = 'cps:route';

/** `{app}` (OpenAPI) to `:app` (the router's form). */
export const routerPath = (path: string): string => path.replace(/\{([a-zA-Z]+)\}/g, ':$1');

/**
 * Binds a controller method to a route definition: the path and method, the success status, and
 * the metadata the guard validates inputs and checks access with.
 */
export const Route = (def: RouteDefinition): MethodDecorator =>
  applyDecorators(
    RequestMapping({ path: routerPath(def.path), method: RequestMethod[def.method] }),
    HttpCode(def.status),
    SetMetadata(ROUTE_METADATA, def),
  );

/** The route's parsed inputs (`params`, `query`, `body`), validated by the guard. */
export const Input = createParamDecorator(
  (_: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<CpsRequest>().cps.input,
);

/** Who calls (undefined on `auth: 'none'` routes when nobody signed in). */
export const Caller = createParamDecorator(
  (_: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<CpsRequest>().cps.principal,
);

/** The address the request comes from (the peer of the connection). */
export const ClientAddress = createParamDecorator(
  (_: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<CpsRequest>().ip,
);

/** The request's context: id, idempotency key, principal. */
export const Req = createParamDecorator(
  (_: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<CpsRequest>().cps,
);
