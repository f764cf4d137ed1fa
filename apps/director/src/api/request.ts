import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RouteDefinition } from './route.js';

/** An authenticated caller. */
export interface Principal {
  readonly userId: string;
  readonly username: string;
  readonly role: 'admin' | 'user';
  /** How the caller proved who it is. */
  readonly via: 'session' | 'token' | 'certificate';
  /** The token id (sessions and API tokens), for `DELETE /v1/sessions/current`. */
  readonly tokenId?: string;
  /** An API token without the `write` scope: only reading routes (GET). */
  readonly readOnly?: boolean;
}

/** What the director attaches to each request. */
export interface RequestContext {
  readonly requestId: string;
  /** `Idempotency-Key` when the client sent one: commands use it as their request id. */
  readonly idempotencyKey?: string;
  principal?: Principal;
  route?: RouteDefinition;
  input?: { params: unknown; query: unknown; body: unknown };
}

export type CpsRequest = FastifyRequest & { cps: RequestContext };
export type CpsReply = FastifyReply;

/** The actor recorded on events: `user:<id>`, or `anonymous`. */
export const actorOf = (c: RequestContext): string =>
  c.principal ? `user:${c.principal.userId}` : 'anonymous';

/** The command request id: the client's idempotency key (scoped to the caller) or the request id. */
export const commandIdOf = (c: RequestContext, what: string): string =>
  c.idempotencyKey ? `${actorOf(c)}:${what}:${c.idempotencyKey}` : `${what}:${c.requestId}`;
