import type { NatsConnection } from '@nats-io/transport-node';
import { createCsr, generateKeyPair } from '@cps/core';
import { newUserKey, renewIdentity, subjects, type Bus } from '@cps/bus';
import type { BusIdentity } from '../trust.js';

export interface RenewerOptions {
  /** Renew when this fraction of the certificate's lifetime has passed (default 2/3). */
  readonly at?: number;
  readonly onRenewed?: (identity: BusIdentity) => void;
  readonly onError?: (e: unknown) => void;
}

/**
 * Keeps a process's bus identity fresh: at about two thirds of its lifetime it makes a new key and
 * nkey, sends a CSR to the identity issuer, connects with the new material and moves the `Bus`
 * over without dropping requests in flight.
 */
export class IdentityRenewer {
  private timer: NodeJS.Timeout | undefined;
  private issuedAt: Date;

  constructor(
    private readonly bus: Bus,
    private current: BusIdentity,
    private readonly connect: (identity: BusIdentity) => Promise<NatsConnection>,
    private readonly o: RenewerOptions = {},
  ) {
    this.issuedAt = new Date();
  }

  get identity(): BusIdentity {
    return this.current;
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  async renewNow(): Promise<BusIdentity> {
    const key = generateKeyPair();
    const user = newUserKey();
    const r = await this.bus.requestAt(
      subjects.renewal(this.current.identity),
      renewIdentity,
      {
        csr: createCsr(key, `${this.current.identity.role}:${this.current.identity.id}`),
        userKey: user.publicKey,
      },
      { timeoutMs: 10_000, retries: 2 },
    );
    const next: BusIdentity = {
      ...this.current,
      tls: { ca: this.current.tls.ca, cert: r.cert, key: key.privateKeyPem },
      credentials: { jwt: r.jwt, seed: user.seed },
      certExpiresAt: new Date(r.expiresAt),
      bus: {
        ...this.current.bus,
        jwt: r.jwt,
        publicKey: user.publicKey,
        seed: user.seed,
        expiresAt: new Date(r.expiresAt),
      },
    };
    const nc = await this.connect(next);
    await this.bus.swap(nc);
    this.current = next;
    this.issuedAt = new Date();
    this.o.onRenewed?.(next);
    return next;
  }

  private schedule(): void {
    const life = new Date(this.current.certExpiresAt).getTime() - this.issuedAt.getTime();
    const due = this.issuedAt.getTime() + life * (this.o.at ?? 2 / 3) - Date.now();
    this.timer = setTimeout(
      () => {
        this.renewNow().then(
          () => this.schedule(),
          (e: unknown) => {
            this.o.onError?.(e);
            this.timer = setTimeout(() => this.schedule(), 1_000);
          },
        );
      },
      Math.max(0, due),
    );
    this.timer.unref();
  }
}
