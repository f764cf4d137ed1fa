import {
  aggregateIds,
  CpsError,
  ForbiddenError,
  NotFoundError,
  generateKeyPairAsync,
  inspectCertificate,
  issueCertificate,
  publicKeyFromCsr,
} from '@cps/core';
import { busTrustPem } from '@cps/platform';
import type { Principal } from '../api/request.js';
import type { Aggregates, DirectorCore } from '../core/director-core.js';
import type { UserCommand, UserState } from '../users/user-decider.js';
import type { UserEvent } from '../users/user-events.js';
import type { NewCertificate } from './certificates.schemas.js';

/** At most this many live (neither revoked nor expired) client certificates per user. */
export const MAX_LIVE_CERTIFICATES = 20;

const DAY = 24 * 3600_000;

export interface CertificateEntry {
  readonly serial: string;
  readonly subject: string;
  readonly notAfter: string;
  readonly createdAt: string;
  readonly revoked: boolean;
}

export interface IssuedCertificate {
  readonly serial: string;
  readonly subject: string;
  readonly notAfter: string;
  readonly certificate: string;
  readonly privateKey?: string;
  readonly ca: string;
}

/** `O=cps\nOU=user\nCN=user:u1` (Node's form) as `CN=user:u1,OU=user,O=cps`. */
const displaySubject = (subject: string): string => subject.split('\n').reverse().join(',');

/**
 * Client certificates of users (ConPaaS's `getcerts`), issued by the platform's user CA for the
 * caller's identity only, and recorded in the user's aggregate: the director accepts a certificate
 * only while the read model knows its serial and it is neither revoked nor expired. The PEMs and
 * keys are never stored.
 */
export class Certificates {
  constructor(
    private readonly core: DirectorCore,
    /** The user aggregates, where certificates are recorded. */
    private readonly users: Aggregates<UserCommand, UserEvent, UserState>,
  ) {}

  async issue(caller: Principal, r: NewCertificate, requestId: string): Promise<IssuedCertificate> {
    const publicKeyPem = r.csr !== undefined ? publicKeyFromCsr(r.csr) : undefined;
    await this.caughtUpWithStore();
    const live = this.of(caller.userId).filter(
      (c) => !c.revoked && Date.parse(c.notAfter) > this.core.now().getTime(),
    ).length;
    if (live >= MAX_LIVE_CERTIFICATES)
      throw new CpsError(
        'quota_exceeded',
        `at most ${MAX_LIVE_CERTIFICATES} live certificates per user: revoke one first`,
      );
    const key = publicKeyPem === undefined ? await generateKeyPairAsync() : undefined;
    const userCa = this.core.secrets.userCa;
    const pem = issueCertificate(userCa, {
      identity: { role: 'user', id: caller.userId },
      usage: 'client',
      publicKeyPem: publicKeyPem ?? (key?.publicKeyPem as string),
      now: this.core.now(),
      validForMs: r.days * DAY,
    });
    const info = inspectCertificate(pem);
    const subject = displaySubject(info.subject);
    const notAfter = info.notAfter.toISOString();
    const done = await this.users.run(
      aggregateIds.user(caller.userId),
      'RecordCertificate',
      { serial: info.serial, subject, expiresAt: notAfter },
      { requestId, actor: `user:${caller.userId}` },
    );
    // a retried request (same Idempotency-Key): its certificate was answered once and is not kept
    if (done.events.length === 0)
      throw new CpsError(
        'conflict',
        'this request was handled before; its certificate is not shown again: request a new one',
      );
    await this.core.caughtUp(done.position);
    return {
      serial: info.serial,
      subject,
      notAfter,
      certificate: [pem, userCa.certPem].join(''),
      ...(key ? { privateKey: key.privateKeyPem } : {}),
      ca: busTrustPem(this.core.secrets),
    };
  }

  /** The certificates of `ref` (id or name; the caller when absent), oldest first. */
  list(caller: Principal, ref?: string): CertificateEntry[] {
    return this.of(ref === undefined ? caller.userId : this.owner(caller, ref));
  }

  async revoke(caller: Principal, serial: string, requestId: string): Promise<void> {
    let c = this.core.directory.certificates.get(serial);
    // issued on another director a moment ago: catch up once before refusing
    if (!c) {
      await this.caughtUpWithStore();
      c = this.core.directory.certificates.get(serial);
    }
    if (!c || c.userId !== caller.userId) throw new NotFoundError(`no certificate ${serial}`);
    const done = await this.users.run(
      aggregateIds.user(c.userId),
      'RevokeCertificate',
      { serial },
      { requestId, actor: `user:${caller.userId}` },
    );
    await this.core.caughtUp(done.position);
  }

  /** Whose certificates `caller` asks for: themselves, or anyone for admins. */
  private owner(caller: Principal, ref: string): string {
    const d = this.core.directory;
    const id = d.users.has(ref) ? ref : d.usernames.get(ref);
    if (id === caller.userId) return id;
    if (caller.role !== 'admin') throw new ForbiddenError('only admins list other users’ certificates');
    if (id === undefined || !d.users.has(id)) throw new NotFoundError(`no user ${ref}`);
    return id;
  }

  private of(userId: string): CertificateEntry[] {
    const out: CertificateEntry[] = [];
    for (const [serial, c] of this.core.directory.certificates)
      if (c.userId === userId)
        out.push({
          serial,
          subject: c.subject,
          notAfter: c.expiresAt,
          createdAt: c.createdAt,
          revoked: c.revoked,
        });
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.serial.localeCompare(b.serial));
  }

  private async caughtUpWithStore(): Promise<void> {
    await this.core.caughtUp(await this.core.store.head());
  }
}
