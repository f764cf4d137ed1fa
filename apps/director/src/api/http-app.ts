import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, NestFactory, Reflector } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  LogController,
  type FastifyBodyParser,
  type FastifyError,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { ValidationError } from '@cps/core';
import type { Logger } from 'pino';
import { tooDeep } from './json-depth.js';
import { MAX_PATH_PARAM_LENGTH } from './schemas.js';
import { ProblemFilter, sendProblem } from './problem.filter.js';
import { clientErrorResponse } from './problem.js';
import { ResponseInterceptor } from './response.interceptor.js';
import { AUTHENTICATOR, RouteGuard, type Authenticator } from './route.guard.js';
import type { CpsRequest } from './request.js';
import type { HttpMetrics } from './metrics.js';

export interface HttpAppOptions {
  readonly controllers: Type[];
  /** Values the controllers inject, by token. */
  readonly providers: Provider[];
  readonly authenticator: Authenticator;
  readonly log: Logger;
  readonly metrics: HttpMetrics;
  /** Server certificate and key (PEM) and the CA bundle client certificates are checked against. */
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  /** Largest request body, bytes (default 1 MiB). */
  readonly bodyLimit?: number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

@Module({})
class HttpModule {
  static create(o: HttpAppOptions): DynamicModule {
    return {
      module: HttpModule,
      controllers: o.controllers,
      providers: [
        ...o.providers,
        { provide: AUTHENTICATOR, useValue: o.authenticator },
        {
          provide: APP_GUARD,
          useFactory: (r: Reflector, a: Authenticator) => new RouteGuard(r, a),
          inject: [Reflector, AUTHENTICATOR],
        },
        { provide: APP_FILTER, useValue: new ProblemFilter(o.log) },
        { provide: APP_INTERCEPTOR, useClass: ResponseInterceptor },
      ],
    };
  }
}

/**
 * The director's HTTPS server: NestJS on Fastify, TLS from the platform CA, client certificates
 * asked for (not required: tokens work too), request ids, JSON logs, and every error as
 * problem+json, the framework's own included (malformed JSON, bodies over the limit, unknown routes).
 * A JSON body nested deeper than `MAX_JSON_DEPTH` is refused as `validation` at its first level too
 * deep, before anything walks it.
 */
export const createHttpApp = async (o: HttpAppOptions): Promise<NestFastifyApplication> => {
  const adapter = new FastifyAdapter({
    https: { cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: true, rejectUnauthorized: false },
    bodyLimit: o.bodyLimit ?? 1024 * 1024,
    routerOptions: { maxParamLength: MAX_PATH_PARAM_LENGTH },
    // a path the router cannot take (a malformed escape, a parameter too long) is answered here
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
      void reply.header('x-request-id', String(req.id));
      sendProblem(o.log, err, req as CpsRequest, reply);
    },
    loggerInstance: o.log,
    // requests are logged once, by the onResponse hook below
    logController: new LogController({ disableRequestLogging: true }),
    // a request the HTTP parser refuses gets problem+json too, and ends its connection
    clientErrorHandler: (err: Error & { code?: string }, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.end(clientErrorResponse(err, randomUUID()));
      else socket.destroy();
    },
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(HttpModule.create(o), adapter, {
    logger: false,
    abortOnError: false,
    // JSON is parsed below; other media types only where a route or feature adds their parser
    bodyParser: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  const json = fastify.getDefaultJsonParser('error', 'error');
  const shallowJson: FastifyBodyParser<string> = (req, body, done) =>
    json(req, body, (err, value) => {
      const deep = err ? undefined : tooDeep(value);
      if (deep)
        done(new ValidationError(`invalid JSON body: ${deep.path} ${deep.message}`, [deep]), undefined);
      else done(err, value);
    });
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, shallowJson);
  fastify.addHook('onRequest', (req, reply, done) => {
    const key = req.headers['idempotency-key'];
    (req as CpsRequest).cps = {
      requestId: String(req.id),
      ...(typeof key === 'string' && REQUEST_ID.test(key) ? { idempotencyKey: key } : {}),
    };
    void reply.header('x-request-id', String(req.id));
    done();
  });
  // Node's close ends only the connections idle when it begins: a response finished later would
  // keep its connection alive, and the close waiting, for the keep-alive timeout. Responses
  // sent while closing therefore end their connection.
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close');
    done(null, payload);
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    const r = req as CpsRequest;
    o.metrics.observe(req.method, r.cps?.route?.path ?? 'unmatched', reply.statusCode, reply.elapsedTime);
    o.log.info(
      {
        requestId: r.cps?.requestId,
        method: req.method,
        route: r.cps?.route?.operationId,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        actor: r.cps?.principal ? `user:${r.cps.principal.userId}` : undefined,
      },
      'request',
    );
    done();
  });
  return app;
};
