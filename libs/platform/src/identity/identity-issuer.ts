import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  aggregateIds,
  CpsError,
  KeyPairPool,
  inspectCertificate,
  isIssuedBy,
  issueCertificate,
  publicKeyFromCsr,
  ValidationError,
  type Identity,
} from '@cps/core';
import { renewIdentity, RENEWAL_SUBJECTS, type Bus, type BusAuthority } from '@cps/bus';
import { CommandHandler, type EventStore } from '@cps/events';
import { busTrustPem, type BusIdentity, type PlatformSecrets } from '../trust.js';
import {
  identityDecider,
  type IdentityCommand,
  type IdentityEvent,
  type IdentityState,
} from './identity-decider.js';
import {
  keyHashOf,
  REENROLL_PROOF_WINDOW_MS,
  verifyReenrollClaim,
  type ReenrollClaim,
} from './reenroll-proof.js';

export interface IssuerOptions {
  readonly secrets: PlatformSecrets;
  readonly store: EventStore;
  readonly authority: BusAuthority;
  /** Certificate and JWT lifetime per role (defaults: managers and agents 1 h, directors 30 days). */
  readonly ttlMs?: Partial<Record<'director' | 'manager' | 'agent', number>>;
  readonly clock?: () => Date;
  /**
   * Whether what the identity stands for is gone (its node removed, its service deleted): such an
   * identity does not re-enroll. Default: never.
   */
  readonly retired?: (identity: Identity) => boolean;
}

/** A re-enrollment: the node's current certificate and the claim it signed with that certificate's key. */
export interface Reenrollment extends ReenrollClaim {
  readonly cert: string;
  readonly signature: string;
}

export interface Enrolled {
  readonly identity: Identity;
  readonly cert: string;
  readonly ca: string;
  readonly jwt: string;
  readonly expiresAt: string;
}

const TTL = { director: 30 * 24 * 3600_000, manager: 3600_000, agent: 3600_000 };
const hash = (s: string): string => createHash('sha256').update(s).digest('hex');
const USER_KEY = /^U[A-Z2-7]{55}$/;
const NODE_ROLES: readonly string[] = ['manager', 'agent'];
const refused = (code: 'unauthenticated' | 'forbidden', issue: string, message: string): CpsError =>
  new CpsError(code, message, [{ path: '$.cert', code: issue, message }]);

/**
 * Issues bus identities (certificate + user JWT), renews them on request over the bus, trades
 * one-time enrollment tokens for identities, and revokes them. Every step is an event of the
 * identity's aggregate `identity.<role>.<id>`.
 */
export class IdentityIssuer {
  private readonly handler: CommandHandler<IdentityCommand, IdentityEvent, IdentityState>;
  private readonly now: () => Date;

  private readonly keys = new KeyPairPool(4);

  constructor(private readonly o: IssuerOptions) {
    this.now = o.clock ?? (() => new Date());
    this.handler = new CommandHandler(o.store, identityDecider, {});
  }

  /** Serves renewals on `cps.sys.identity.renew.<role>.<id>` (bus permissions let only that identity publish there). */
  serve(bus: Bus): void {
    bus.handleAt(RENEWAL_SUBJECTS, renewIdentity, async (d, ctx) => {
      const [, , , , role, id] = ctx.subject.split('.');
      return this.renew(
        { role: role as Identity['role'], id: id as string },
        d.csr,
        d.userKey,
        ctx.requestId,
      );
    });
  }

  /** A fresh key pair, certificate and JWT for a process a supervisor starts. */
  async issue(identity: Identity, via: 'supervisor' | 'bootstrap' = 'supervisor'): Promise<BusIdentity> {
    const now = this.now();
    const key = await this.keys.take();
    const ttlMs = this.ttl(identity);
    const cert = this.certFor(identity, key.publicKeyPem, now, ttlMs);
    const creds = await this.o.authority.credentialsFor(identity, { now, ttlMs });
    const expiresAt = new Date(now.getTime() + ttlMs);
    await this.run(
      identity,
      {
        type: 'Issue',
        data: {
          identity,
          via,
          serial: inspectCertificate(cert).serial,
          certExpiresAt: expiresAt.toISOString(),
          userKey: creds.publicKey,
        },
      },
      randomUUID(),
    );
    return {
      tls: {
        ca: busTrustPem(this.o.secrets),
        cert: cert + this.o.secrets.busCa.certPem,
        key: key.privateKeyPem,
      },
      credentials: { jwt: creds.jwt, seed: creds.seed as string },
      inboxPrefix: creds.inboxPrefix,
      identity,
      certExpiresAt: expiresAt,
      bus: creds,
    };
  }

  async renew(
    who: Pick<Identity, 'role' | 'id'>,
    csr: string,
    userKey: string,
    requestId: string = randomUUID(),
  ): Promise<{ cert: string; jwt: string; expiresAt: string }> {
    const state = await this.state(who);
    if (state.status !== 'active')
      throw new CpsError('forbidden', `${who.role}:${who.id} is ${state.status}: it cannot renew`);
    const c = await this.fromCsr(state.identity, csr, userKey);
    await this.run(
      who,
      { type: 'Renew', data: { serial: c.serial, certExpiresAt: c.expiresAt, userKey } },
      requestId,
    );
    return { cert: c.cert, jwt: c.jwt, expiresAt: c.expiresAt };
  }

  /** A one-time token (for a cloud node's user-data) that `enroll` trades for the identity. */
  async offerEnrollment(identity: Identity, ttlMs = 15 * 60_000): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = new Date(this.now().getTime() + ttlMs).toISOString();
    await this.run(
      identity,
      { type: 'Offer', data: { identity, tokenHash: hash(secret), expiresAt } },
      randomUUID(),
    );
    return `${identity.role}.${identity.id}.${secret}`;
  }

  /**
   * Redeems an enrollment token: the node keeps its private keys, sending only a CSR and a public
   * nkey. The same requester (same user key, same CSR key) asking again with the same token before it
   * expires gets fresh credentials for its keys (its first reply may have been lost); anyone else is
   * refused.
   */
  async enroll(token: string, csr: string, userKey: string): Promise<Enrolled> {
    const [role, id, secret] = token.split('.');
    if (!role || !id || !secret || !NODE_ROLES.includes(role)) {
      throw new CpsError('unauthenticated', 'unknown or used enrollment token');
    }
    const who = { role: role as Identity['role'], id };
    const state = await this.state(who);
    if (state.status !== 'offered' && state.status !== 'active')
      throw new CpsError('unauthenticated', 'unknown or used enrollment token');
    this.checkUserKey(userKey);
    const c = await this.fromCsr(state.identity, csr, userKey);
    const data = {
      tokenHash: hash(secret),
      keyHash: c.keyHash,
      serial: c.serial,
      certExpiresAt: c.expiresAt,
      userKey,
    };
    await this.run(who, { type: 'Redeem', data }, randomUUID());
    return this.enrolled(state.identity, c);
  }

  /**
   * Fresh credentials for a node whose certificate expired (while it was stopped): `r.cert` must be
   * one this platform issued to a manager or agent identity that is still active and not retired,
   * expired at most 30 days ago, and `r.signature` must be the claim signed with its key.
   */
  async reenroll(r: Reenrollment): Promise<Enrolled> {
    const presented = this.presented(r);
    const state = await this.state(presented.identity);
    if (state.status === 'active' && this.o.retired?.(state.identity))
      throw refused('forbidden', 'retired', `${presented.identity.role}:${presented.identity.id} is removed`);
    this.checkUserKey(r.userKey);
    const identity = state.status === 'active' ? state.identity : presented.identity;
    const c = await this.fromCsr(identity, r.csr, r.userKey);
    const data = {
      previousSerial: presented.serial,
      previousExpiresAt: presented.notAfter.toISOString(),
      serial: c.serial,
      certExpiresAt: c.expiresAt,
      userKey: r.userKey,
    };
    await this.run(presented.identity, { type: 'Reenroll', data }, randomUUID());
    return this.enrolled(identity, c);
  }

  /** Revokes every credential of the identity: its JWTs are refused and live connections cut off. */
  async revoke(who: Pick<Identity, 'role' | 'id'>, reason: string): Promise<void> {
    const r = await this.run(who, { type: 'Revoke', data: { reason } }, randomUUID());
    const revoked = r.find((e) => e.type === 'IdentityRevoked');
    const state = await this.state(who);
    const keys =
      revoked?.type === 'IdentityRevoked'
        ? revoked.data.userKeys
        : state.status === 'revoked'
          ? state.userKeys
          : [];
    if (keys.length > 0) await this.o.authority.revoke(keys, this.now());
  }

  /** Rebuilds the revocation list from the history (at start) and pushes it to the servers. */
  async restoreRevocations(): Promise<number> {
    const keys: string[] = [];
    for (const e of await this.o.store.readAll()) {
      if (e.type === 'IdentityRevoked') keys.push(...(e.data as { userKeys: string[] }).userKeys);
    }
    if (keys.length > 0) await this.o.authority.revoke(keys, this.now());
    return keys.length;
  }

  state(who: Pick<Identity, 'role' | 'id'>): Promise<IdentityState> {
    return this.handler.load(aggregateIds.identity(who)).then((l) => l.state);
  }

  /** The presented certificate, once it is known to be this platform's, a node's, and the claim its key's. */
  private presented(r: Reenrollment): ReturnType<typeof inspectCertificate> & { identity: Identity } {
    let info: ReturnType<typeof inspectCertificate>;
    let ours: boolean;
    try {
      info = inspectCertificate(r.cert);
      ours = isIssuedBy(r.cert, this.o.secrets.busCa.certPem);
    } catch (e) {
      throw new ValidationError(
        'malformed certificate',
        [{ path: '$.cert', code: 'malformed', message: 'not a PEM certificate' }],
        { cause: e },
      );
    }
    if (!ours || !info.identity || !NODE_ROLES.includes(info.identity.role))
      throw refused('unauthenticated', 'unknown_certificate', 'not a node certificate of this platform');
    if (!verifyReenrollClaim(r.cert, r, r.signature))
      throw refused('unauthenticated', 'bad_signature', "the claim is not signed with the certificate's key");
    const skew = Math.abs(this.now().getTime() - Date.parse(r.signedAt));
    if (!(skew <= REENROLL_PROOF_WINDOW_MS))
      throw refused('unauthenticated', 'stale_signature', 'the claim was not signed within the last minutes');
    return { ...info, identity: info.identity };
  }

  private checkUserKey(userKey: string): void {
    if (!USER_KEY.test(userKey))
      throw new ValidationError('invalid user key', [
        { path: '$.userKey', code: 'invalid', message: 'an nkey user public key' },
      ]);
  }

  private enrolled(identity: Identity, c: { cert: string; jwt: string; expiresAt: string }): Enrolled {
    return { identity, cert: c.cert, ca: busTrustPem(this.o.secrets), jwt: c.jwt, expiresAt: c.expiresAt };
  }

  /** Certificate (with its issuing CA) for the CSR's key and a JWT for the holder's nkey. */
  private async fromCsr(
    identity: Identity,
    csr: string,
    userKey: string,
  ): Promise<{ cert: string; serial: string; keyHash: string; jwt: string; expiresAt: string }> {
    const now = this.now();
    const ttlMs = this.ttl(identity);
    const publicKeyPem = publicKeyFromCsr(csr);
    const cert = this.certFor(identity, publicKeyPem, now, ttlMs);
    const creds = await this.o.authority.credentialsFor(identity, { now, ttlMs, publicKey: userKey });
    return {
      cert: cert + this.o.secrets.busCa.certPem,
      serial: inspectCertificate(cert).serial,
      keyHash: keyHashOf(publicKeyPem),
      jwt: creds.jwt,
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
    };
  }

  private ttl(i: Identity): number {
    const role = i.role as keyof typeof TTL;
    return this.o.ttlMs?.[role] ?? TTL[role] ?? TTL.agent;
  }

  private certFor(identity: Identity, publicKeyPem: string, now: Date, ttlMs: number): string {
    return issueCertificate(this.o.secrets.busCa, {
      identity,
      usage: 'client',
      publicKeyPem,
      now,
      validForMs: ttlMs,
    });
  }

  private async run(
    who: Pick<Identity, 'role' | 'id'>,
    c: Omit<IdentityCommand, 'metadata'>,
    requestId: string,
  ): Promise<readonly IdentityEvent[]> {
    const command = {
      ...c,
      metadata: { now: this.now(), requestId, actor: 'identity-issuer' },
    } as IdentityCommand;
    const r = await this.handler.handle(command, aggregateIds.identity(who));
    return r.events;
  }
}
