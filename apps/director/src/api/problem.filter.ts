import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Logger } from 'pino';
import { problemOf, PROBLEM_CONTENT_TYPE, toCpsErrorHttp } from './problem.js';
import type { CpsReply, CpsRequest } from './request.js';

/** Every error, from a handler or the framework, leaves as problem+json with its stable code. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<CpsRequest>();
    const reply = http.getResponse<CpsReply>();
    sendProblem(this.log, exception, req, reply);
  }
}

export const sendProblem = (log: Logger, exception: unknown, req: CpsRequest, reply: CpsReply): void => {
  const e = toCpsErrorHttp(exception);
  const requestId = req.cps?.requestId ?? String(req.id);
  if (e.code === 'internal') log.error({ err: exception, requestId }, 'request failed');
  const problem = problemOf(e, requestId);
  if (e.code === 'unauthenticated') void reply.header('www-authenticate', 'Bearer realm="cps"');
  const retryAfterMs = (e as { retryAfterMs?: unknown }).retryAfterMs;
  if (typeof retryAfterMs === 'number')
    void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  void reply.status(problem.status).header('content-type', PROBLEM_CONTENT_TYPE).send(problem);
};
