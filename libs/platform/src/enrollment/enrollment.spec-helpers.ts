import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import { CpsError, httpStatusOf, isCpsError, ValidationError, type Identity } from '@cps/core';
import { OperatorModeAuthority } from '@cps/bus';
import { EventCatalog, ensureEventStream, JetStreamEventStore } from '@cps/events';
import {
  ENROLL_PATH,
  handleEnrollment,
  handleReenrollment,
  IdentityIssuer,
  identityEvents,
  issueServerCert,
  REENROLL_PATH,
  type IssuerOptions,
} from '@cps/platform';
import { TestNats } from '@cps/testing';

/** A real nats-server and an identity issuer on its event stream, as a director hosts them. */
/** An agent identity of node `n` of service s1 in application a1. */
export const agent = (n: string): Identity => ({
  role: 'agent',
  id: n,
  appId: 'a1',
  serviceId: 's1',
  nodeId: n,
});

export const startIssuer = async (
  o: Partial<IssuerOptions> = {},
): Promise<{ nats: TestNats; nc: NatsConnection; issuer: IdentityIssuer }> => {
  const nats = await TestNats.start();
  const nc = await nats.connect({ role: 'director', id: 'd1' });
  await ensureEventStream(nc);
  const issuer = new IdentityIssuer({
    secrets: nats.secrets,
    store: new JetStreamEventStore(nc, { catalog: new EventCatalog(identityEvents) }),
    authority: new OperatorModeAuthority(nats.secrets.operator, () => nats.system()),
    ...o,
  });
  return { nats, nc, issuer };
};

/** An HTTPS certificate (with its key) of the platform's bus CA for 127.0.0.1, as a director's. */
export const directorCert = (nats: TestNats): { cert: string; key: string } => {
  const key = nats.keys.next();
  return {
    cert: issueServerCert(nats.secrets, 'director', new Date(), key) + nats.secrets.busCa.certPem,
    key: key.privateKeyPem,
  };
};

/** A stand-in for the director's node routes: the real HTTP mapping (and its body limits) is the director's. */
export interface EnrollServer {
  readonly url: string;
  hits: number;
  readonly server: Server;
}

export interface EnrollServerOptions {
  readonly cert: string;
  readonly key: string;
  readonly issuer: Pick<IdentityIssuer, 'enroll' | 'reenroll'>;
  /** Answers every request instead of the routes. */
  readonly misbehave?: (res: ServerResponse) => void;
  /**
   * Called once a route has done its work, with the request's number (from 1): true when it answered
   * itself (the reply lost after the token was redeemed, say).
   */
  readonly afterSuccess?: (res: ServerResponse, hit: number) => boolean;
}

const routes: Record<string, (issuer: EnrollServerOptions['issuer'], body: unknown) => Promise<unknown>> = {
  [ENROLL_PATH]: handleEnrollment,
  [REENROLL_PATH]: handleReenrollment,
};

const answer = (res: ServerResponse, e: unknown): void => {
  const err = isCpsError(e) ? e : new CpsError('internal', 'internal error');
  const status = httpStatusOf(err.code);
  res.writeHead(status, { 'content-type': 'application/problem+json' });
  res.end(
    JSON.stringify({
      type: 'about:blank',
      title: err.code,
      status,
      code: err.code,
      detail: err.message,
      issues: err.issues,
    }),
  );
};

/** Serves `POST /v1/nodes/enroll` and `POST /v1/nodes/reenroll` over HTTPS on 127.0.0.1. */
export const serveEnrollment = async (o: EnrollServerOptions): Promise<EnrollServer> => {
  const s: { hits: number } = { hits: 0 };
  const server = createServer({ cert: o.cert, key: o.key }, (req, res) => {
    const hit = ++s.hits;
    if (o.misbehave) return o.misbehave(res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = async (): Promise<unknown> => {
        const route = req.method === 'POST' ? routes[req.url ?? ''] : undefined;
        if (!route) throw new CpsError('not_found', 'no such route');
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          throw new ValidationError('the body is not JSON');
        }
        return route(o.issuer, body);
      };
      reply().then(
        (r) => {
          if (o.afterSuccess?.(res, hit)) return;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(r));
        },
        (e: unknown) => answer(res, e),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(s, { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
};

export const closeServers = async (servers: readonly (EnrollServer | undefined)[]): Promise<void> => {
  const open = servers.filter((s) => s !== undefined);
  for (const s of open) s.server.closeAllConnections();
  await Promise.all(open.map((s) => new Promise((r) => s.server.close(r))));
};

/** Runs `fn` with `env` added to the process environment, as it was afterwards. */
export const withEnv = async <T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> => {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
};
