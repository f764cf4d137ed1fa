import { createHash, randomBytes, timingSafeEqual, type X509Certificate } from 'node:crypto';
import {
  aggregateIds,
  nameScopes,
  CpsError,
  ForbiddenError,
  NotFoundError,
  inspectCertificate,
  isIssuedBy,
} from '@cps/core';
import type { Principal, CpsRequest } from '../api/request.js';
import type { Authenticator } from '../api/route.guard.js';
import { Aggregates, type DirectorCore } from '../core/director-core.js';
import type { TokenView, UserView } from '../core/directory.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { RateLimits } from './rate-limits.js';
import { SignInLimits } from './sign-in-limits.js';
import { userDecider, type UserCommand, type UserState } from './user-decider.js';
import type { UserEvent } from './user-events.js';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const newId = (prefix: string): string => `${prefix}${randomBytes(6).toString('hex')}`;

/** Bearer tokens read `cps_<tokenId>_<secret>`: the id finds the record, the secret's hash is checked. */
const TOKEN = /^cps_([a-z0-9]+)_([A-Za-z0-9_-]{43})$/;
/** Catch-ups for unknown credentials a director starts per second (see `catchUp`). */
export const CATCH_UPS_PER_SECOND = 20;

export interface AccountsOptions {
  /** Who may register: anyone (`open`) or admins only (default). */
  readonly registration: 'open' | 'admin';
  readonly sessionTtlMs: number;
  readonly initialCredit: number;
  /** Failed sign-ins a source (client address and user name) may make per window (see SignInLimits). */
  readonly loginAttempts: number;
  /** Failed sign-ins per user name from all sources per window (default 10 × `loginAttempts`). */
  readonly loginAttemptsPerUser?: number;
  readonly loginWindowMs: number;
  /** The longest back-off of a source that used up its attempts (default 1 h). */
  readonly loginMaxBackoffMs?: number;
  readonly scryptN?: number;
}

/**
 * Users and their credentials: registration, password login (limited per source and per user name,
 * the counts shared by every director through KV: see SignInLimits), sessions and API tokens
 * (random 256-bit secrets of which only the SHA-256 is stored), client certificates, credit.
 */
export class Accounts implements Authenticator {
  private readonly dummy: Promise<string>;
  private readonly limits: SignInLimits;
  /** The user aggregates (`user.<userId>`): credentials, tokens, certificates, credit. */
  readonly users: Aggregates<UserCommand, UserEvent, UserState>;

  constructor(
    private readonly core: DirectorCore,
    rateLimits: RateLimits,
    private readonly o: AccountsOptions,
  ) {
    this.users = new Aggregates(core.store, userDecider, core.snapshots);
    this.dummy = hashPassword('not a password', o.scryptN);
    this.limits = new SignInLimits(rateLimits, {
      perSource: o.loginAttempts,
      perUser: o.loginAttemptsPerUser ?? 10 * o.loginAttempts,
      windowMs: o.loginWindowMs,
      maxBackoffMs: o.loginMaxBackoffMs ?? 3600_000,
    });
  }

  view(userId: string): UserView {
    const u = this.core.directory.users.get(userId);
    if (!u) throw new NotFoundError(`no user ${userId}`);
    return u;
  }

  all(): UserView[] {
    return [...this.core.directory.users.values()];
  }

  /** A user by id or name, as `caller` may see it (themselves; admins: anyone). */
  find(caller: Principal, ref: string): UserView {
    const id = this.core.directory.users.has(ref) ? ref : this.core.directory.usernames.get(ref);
    const u = id ? this.core.directory.users.get(id) : undefined;
    if (!u || (caller.role !== 'admin' && u.userId !== caller.userId))
      throw new NotFoundError(`no user ${ref}`);
    return u;
  }

  async register(
    caller: Principal | undefined,
    r: { username: string; password: string; role: 'admin' | 'user'; credit?: number | undefined },
    requestId: string,
  ): Promise<UserView> {
    const admin = caller?.role === 'admin';
    if (!admin && this.o.registration !== 'open') throw new ForbiddenError('registration is for admins only');
    if (!admin && (r.role !== 'user' || r.credit !== undefined))
      throw new ForbiddenError('only admins choose a role or credit');
    // derived from the request id: a retried registration (same Idempotency-Key) finishes the first one
    const userId =
      r.username === 'admin' && requestId === 'bootstrap-admin'
        ? 'uadmin'
        : `u${sha256(requestId).slice(0, 12)}`;
    await this.core.names.claim(nameScopes.users, r.username, userId, `${requestId}:name`);
    const passwordHash = await hashPassword(r.password, this.o.scryptN);
    const result = await this.users.run(
      aggregateIds.user(userId),
      'Register',
      { userId, username: r.username, role: r.role, passwordHash, credit: r.credit ?? this.o.initialCredit },
      { requestId, actor: caller ? `user:${caller.userId}` : 'anonymous' },
    );
    await this.core.caughtUp(result.position);
    return this.view(userId);
  }

  /**
   * Password login from `address`: a session token (shown once). The attempt is reserved with the
   * sign-in limits before the password is checked; a failure keeps counting.
   */
  async login(
    username: string,
    password: string,
    requestId: string,
    address: string,
  ): Promise<{ token: string; tokenId: string; expiresAt: string; user: UserView }> {
    const attempt = await this.limits.attempt(address, username);
    const userId = this.core.directory.usernames.get(username);
    const state = userId ? await this.users.state(aggregateIds.user(userId)) : undefined;
    const hash = state && state.status === 'ACTIVE' ? state.passwordHash : await this.dummy;
    const ok = await verifyPassword(password, hash);
    if (!ok || !userId) throw new CpsError('unauthenticated', 'wrong user name or password');
    await attempt.succeeded();
    const t = await this.createToken(
      userId,
      { kind: 'session', name: 'session', scopes: ['read', 'write'], ttlMs: this.o.sessionTtlMs },
      requestId,
      `user:${userId}`,
    );
    return { token: t.token, tokenId: t.view.tokenId, expiresAt: t.view.expiresAt, user: this.view(userId) };
  }

  async createToken(
    userId: string,
    t: { kind: 'session' | 'api'; name: string; scopes: ('read' | 'write' | 'admin')[]; ttlMs: number },
    requestId: string,
    actor: string,
  ): Promise<{ token: string; view: TokenView }> {
    const tokenId = newId('t');
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = new Date(this.core.now().getTime() + t.ttlMs).toISOString();
    const r = await this.users.run(
      aggregateIds.user(userId),
      'CreateToken',
      { tokenId, kind: t.kind, name: t.name, hash: sha256(secret), scopes: t.scopes, expiresAt },
      { requestId, actor },
    );
    await this.core.caughtUp(r.position);
    const view = this.core.directory.tokens.get(tokenId);
    if (!view) throw new CpsError('internal', 'token not projected');
    return { token: `cps_${tokenId}_${secret}`, view };
  }

  tokensOf(userId: string): TokenView[] {
    const now = this.core.now().getTime();
    return [...this.core.directory.tokens.values()].filter(
      (t) => t.userId === userId && (t.kind === 'api' || (!t.revoked && Date.parse(t.expiresAt) > now)),
    );
  }

  async revokeToken(caller: Principal, tokenId: string, requestId: string): Promise<void> {
    const t = this.core.directory.tokens.get(tokenId);
    if (!t || t.userId !== caller.userId) throw new NotFoundError(`no token ${tokenId}`);
    const r = await this.users.run(
      aggregateIds.user(t.userId),
      'RevokeToken',
      { tokenId },
      { requestId, actor: `user:${caller.userId}` },
    );
    await this.core.caughtUp(r.position);
  }

  async grantCredit(
    caller: Principal,
    userId: string,
    amount: number,
    reason: string,
    requestId: string,
  ): Promise<UserView> {
    const r = await this.users.run(
      aggregateIds.user(userId),
      'GrantCredit',
      { amount, by: caller.userId, reason },
      { requestId, actor: `user:${caller.userId}` },
    );
    await this.core.caughtUp(r.position);
    return this.view(userId);
  }

  private catchingUp?: Promise<void>;
  private nextCatchUp?: Promise<void>;
  private readonly catchUps = { second: 0, count: 0 };

  /**
   * Brings the read model up to the stream's head, for a credential it does not know yet (made on
   * another director a moment ago). Callers share catch-ups: one runs at a time, and whoever comes
   * while it runs waits for the single next one (the running one may have read the head before
   * their credential existed). At most `CATCH_UPS_PER_SECOND` start each second: past that, an
   * unknown credential is refused at once, so a flood of made-up tokens cannot make the director
   * read the stream for each of them.
   */
  private async catchUp(): Promise<void> {
    const second = Math.floor(Date.now() / 1000);
    if (this.catchUps.second !== second) Object.assign(this.catchUps, { second, count: 0 });
    if (++this.catchUps.count > CATCH_UPS_PER_SECOND) return;
    return this.sharedCatchUp();
  }

  private sharedCatchUp(): Promise<void> {
    if (!this.catchingUp) {
      this.catchingUp = (async () => this.core.caughtUp(await this.core.store.head()))().finally(() => {
        this.catchingUp = undefined;
      });
      return this.catchingUp;
    }
    this.nextCatchUp ??= this.catchingUp
      .catch(() => undefined)
      .then(() => {
        this.nextCatchUp = undefined;
        return this.sharedCatchUp();
      });
    return this.nextCatchUp;
  }

  /** Bearer token or client certificate; none at all is fine here (the route decides). */
  async authenticate(req: CpsRequest): Promise<Principal | undefined> {
    const h = req.headers.authorization;
    if (typeof h === 'string' && h.length > 0) return this.byToken(h);
    return this.byCertificate(req);
  }

  private async byToken(header: string): Promise<Principal> {
    const m = /^Bearer (.+)$/.exec(header);
    const parts = m ? TOKEN.exec(m[1] as string) : null;
    if (!parts) throw new CpsError('unauthenticated', 'malformed Authorization header');
    const [, tokenId, secret] = parts as unknown as [string, string, string];
    let t = this.core.directory.tokens.get(tokenId);
    // created on another director a moment ago: catch up once before refusing
    if (!t) {
      await this.catchUp();
      t = this.core.directory.tokens.get(tokenId);
    }
    const given = Buffer.from(sha256(secret), 'hex');
    if (!t || !timingSafeEqual(given, Buffer.from(t.hash, 'hex')))
      throw new CpsError('unauthenticated', 'unknown token');
    if (t.revoked) throw new CpsError('unauthenticated', 'token revoked');
    if (Date.parse(t.expiresAt) <= this.core.now().getTime())
      throw new CpsError('unauthenticated', 'token expired');
    const u = this.view(t.userId);
    return {
      userId: u.userId,
      username: u.username,
      role: t.scopes.includes('admin') || t.kind === 'session' ? u.role : 'user',
      via: t.kind === 'session' ? 'session' : 'token',
      tokenId,
      readOnly: t.kind === 'api' && !t.scopes.includes('write') && !t.scopes.includes('admin'),
    };
  }

  private async byCertificate(req: CpsRequest): Promise<Principal | undefined> {
    const socket = req.raw.socket as {
      getPeerX509Certificate?: () => X509Certificate | undefined;
      authorized?: boolean;
    };
    const cert = socket.getPeerX509Certificate?.();
    if (!cert) return undefined;
    const pem = cert.toString();
    if (!socket.authorized || !isIssuedBy(pem, this.core.secrets.userCa.certPem))
      throw new CpsError('unauthenticated', 'client certificate not issued by this platform');
    const info = inspectCertificate(pem);
    let c = this.core.directory.certificates.get(info.serial);
    // issued on another director a moment ago: catch up once before refusing
    if (!c) {
      await this.catchUp();
      c = this.core.directory.certificates.get(info.serial);
    }
    if (!c || c.revoked) throw new CpsError('unauthenticated', 'client certificate unknown or revoked');
    if (Date.parse(c.expiresAt) <= this.core.now().getTime())
      throw new CpsError('unauthenticated', 'client certificate expired');
    const u = this.view(c.userId);
    return { userId: u.userId, username: u.username, role: u.role, via: 'certificate' };
  }

  /** The first start: the `admin` account, with the given password or a generated one (returned once). */
  async bootstrapAdmin(password: string | undefined): Promise<{ created: boolean; password?: string }> {
    if (this.core.directory.usernames.has('admin')) return { created: false };
    const chosen = password ?? randomBytes(18).toString('base64url');
    try {
      await this.register(
        { userId: 'bootstrap', username: 'bootstrap', role: 'admin', via: 'session' },
        { username: 'admin', password: chosen, role: 'admin', credit: 1_000_000 },
        'bootstrap-admin',
      );
    } catch (e) {
      // another director created it at the same moment
      if (e instanceof CpsError && e.code === 'name_taken') return { created: false };
      throw e;
    }
    return { created: true, ...(password ? {} : { password: chosen }) };
  }
}
