import { connect, jwtAuthenticator, type NatsConnection } from '@nats-io/transport-node';

/** PEM material for mutual TLS: every bus connection presents a client certificate. */
export interface TlsMaterial {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface BusConnectOptions {
  readonly servers: string | readonly string[];
  readonly tls: TlsMaterial;
  /** The user JWT and nkey seed (operator mode). */
  readonly credentials: { readonly jwt: string; readonly seed: string };
  /** Replies come back below this prefix; an identity may only subscribe under its own. */
  readonly inboxPrefix: string;
  readonly name?: string;
  readonly timeoutMs?: number;
  /** Keep trying to reconnect forever (processes of the platform) or give up (tests, CLI). */
  readonly reconnect?: boolean;
}

/** Opens an mTLS, JWT-authenticated NATS connection. The only `connect` call of cps. */
export const connectBus = async (o: BusConnectOptions): Promise<NatsConnection> =>
  connect({
    servers: typeof o.servers === 'string' ? o.servers : [...o.servers],
    tls: { ca: o.tls.ca, cert: o.tls.cert, key: o.tls.key },
    authenticator: jwtAuthenticator(o.credentials.jwt, new TextEncoder().encode(o.credentials.seed)),
    inboxPrefix: o.inboxPrefix,
    ...(o.name ? { name: o.name } : {}),
    timeout: o.timeoutMs ?? 5_000,
    reconnect: o.reconnect ?? true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitterTLS: 100,
    ignoreClusterUpdates: false,
  });
