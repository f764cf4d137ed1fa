import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { CpsError, issuesFromZod } from '@cps/core';
import type { CpsReply, CpsRequest } from './request.js';

/**
 * Holds every answer to its route's response schema (what the OpenAPI document promises; unknown
 * fields, such as internal state, are stripped) and points `202 Accepted` answers at their operation.
 */
@Injectable()
export class ResponseInterceptor implements NestInterceptor {
  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = ctx.switchToHttp().getRequest<CpsRequest>();
    const reply = ctx.switchToHttp().getResponse<CpsReply>();
    return next.handle().pipe(
      map((value: unknown) => {
        const def = req.cps.route;
        if (!def?.response || def.produces) return value;
        const r = def.response.safeParse(value);
        if (!r.success)
          throw new CpsError(
            'internal',
            `${def.operationId} answered off its schema`,
            issuesFromZod(r.error),
          );
        const operationId = (r.data as { operationId?: unknown } | null)?.operationId;
        if (def.status === 202 && typeof operationId === 'string')
          void reply.header('location', `/v1/operations/${encodeURIComponent(operationId)}`);
        return r.data;
      }),
    );
  }
}
