import type { NatsConnection } from '@nats-io/transport-node';
import { CpsError, type Identity } from '@cps/core';
import {
  issueUserCredentials,
  signTrustChain,
  type BusCredentials,
  type OperatorMaterial,
} from './operator.js';

/**
 * How bus identities are provisioned and revoked. cps uses NATS operator mode
 * ({@link OperatorModeAuthority}); another scheme (auth callout on newer servers, static config)
 * would implement this same interface.
 */
export interface BusAuthority {
  /** Credentials for `identity`; with `publicKey` the holder keeps its own private key. */
  credentialsFor(
    identity: Identity,
    o: { now: Date; ttlMs: number; publicKey?: string },
  ): Promise<BusCredentials>;
  /** Makes every server refuse these user keys, and cut off their live connections. */
  revoke(userKeys: readonly string[], at: Date): Promise<void>;
  /** The user keys revoked so far, with the time (unix seconds) of their revocation. */
  revoked(): Readonly<Record<string, number>>;
}

/**
 * Operator mode: user JWTs signed by the platform account's signing key; revocation re-signs the
 * account JWT with the revoked keys and pushes it to every server through the system account.
 */
export class OperatorModeAuthority implements BusAuthority {
  private revocations: Record<string, number> = {};

  constructor(
    private readonly material: OperatorMaterial,
    private readonly connectSystem: () => Promise<NatsConnection>,
  ) {}

  credentialsFor(
    identity: Identity,
    o: { now: Date; ttlMs: number; publicKey?: string },
  ): Promise<BusCredentials> {
    return issueUserCredentials(this.material, identity, o);
  }

  revoked(): Readonly<Record<string, number>> {
    return this.revocations;
  }

  /** Restores the revocation list (from the event history) without pushing. */
  restore(revocations: Readonly<Record<string, number>>): void {
    this.revocations = { ...revocations };
  }

  async revoke(userKeys: readonly string[], at: Date): Promise<void> {
    const t = Math.ceil(at.getTime() / 1000);
    for (const k of userKeys) this.revocations[k] = Math.max(this.revocations[k] ?? 0, t);
    await this.push();
  }

  /** Sends the current account JWT (with its revocations) to every server of the cluster. */
  async push(): Promise<void> {
    const chain = await signTrustChain(this.material, this.revocations);
    const sys = await this.connectSystem();
    try {
      const r = await sys.request(`$SYS.REQ.ACCOUNT.${chain.account}.CLAIMS.UPDATE`, chain.accountJwt, {
        timeout: 5_000,
      });
      const body = JSON.parse(r.string()) as { error?: { description?: string } };
      if (body.error)
        throw new CpsError('unavailable', `account update refused: ${body.error.description ?? '?'}`);
    } finally {
      await sys.close();
    }
  }
}
