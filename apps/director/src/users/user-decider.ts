import { ConflictError, CpsError, NotFoundError, type Command, type Decider } from '@cps/core';
import type { UserEvent } from './user-events.js';

export interface TokenRecord {
  readonly tokenId: string;
  readonly kind: 'session' | 'api';
  readonly name: string;
  readonly hash: string;
  readonly scopes: readonly ('read' | 'write' | 'admin')[];
  readonly expiresAt: string;
  readonly revoked: boolean;
}

export type UserState =
  | { readonly status: 'NONE' }
  | {
      readonly status: 'ACTIVE';
      readonly userId: string;
      readonly username: string;
      readonly role: 'admin' | 'user';
      readonly passwordHash: string;
      readonly credit: number;
      readonly tokens: Readonly<Record<string, TokenRecord>>;
      readonly certificates: Readonly<Record<string, { expiresAt: string; revoked: boolean }>>;
      /** Hours already charged per node: charging is idempotent through this, not message ids. */
      readonly charged: Readonly<Record<string, number>>;
    };

type Active = Extract<UserState, { status: 'ACTIVE' }>;

export type UserCommand =
  | Command<
      'Register',
      { userId: string; username: string; role: 'admin' | 'user'; passwordHash: string; credit: number }
    >
  | Command<'ChangePassword', { passwordHash: string }>
  | Command<
      'CreateToken',
      {
        tokenId: string;
        kind: 'session' | 'api';
        name: string;
        hash: string;
        scopes: ('read' | 'write' | 'admin')[];
        expiresAt: string;
      }
    >
  | Command<'RevokeToken', { tokenId: string }>
  | Command<'RecordCertificate', { serial: string; subject: string; expiresAt: string }>
  | Command<'RevokeCertificate', { serial: string }>
  | Command<'GrantCredit', { amount: number; by: string; reason: string }>
  | Command<'Charge', { nodeId: string; hours: number }>;

/** At most this many live API tokens per user (sessions expire by themselves). */
export const MAX_API_TOKENS = 100;
/** At most this many live (neither revoked nor expired) client certificates per user. */
export const MAX_LIVE_CERTIFICATES = 20;

const liveCertificates = (s: Active, now: Date): number =>
  Object.values(s.certificates).filter((c) => !c.revoked && Date.parse(c.expiresAt) > now.getTime()).length;

const active = (s: UserState): Active => {
  if (s.status === 'NONE') throw new NotFoundError('no such user');
  return s;
};

const liveApiTokens = (s: Active, now: Date): number =>
  Object.values(s.tokens).filter(
    (t) => t.kind === 'api' && !t.revoked && Date.parse(t.expiresAt) > now.getTime(),
  ).length;

export const evolveUser = (s: UserState, e: UserEvent): UserState => {
  if (e.type === 'UserRegistered')
    return { status: 'ACTIVE', ...e.data, tokens: {}, certificates: {}, charged: {} };
  if (s.status === 'NONE') return s;
  switch (e.type) {
    case 'PasswordChanged':
      return { ...s, passwordHash: e.data.passwordHash };
    case 'TokenCreated':
      return {
        ...s,
        tokens: { ...s.tokens, [e.data.tokenId]: { ...e.data, revoked: false } },
      };
    case 'TokenRevoked': {
      const t = s.tokens[e.data.tokenId];
      return t ? { ...s, tokens: { ...s.tokens, [t.tokenId]: { ...t, revoked: true } } } : s;
    }
    case 'CertificateIssued':
      return {
        ...s,
        certificates: { ...s.certificates, [e.data.serial]: { expiresAt: e.data.expiresAt, revoked: false } },
      };
    case 'CertificateRevoked': {
      const c = s.certificates[e.data.serial];
      return c ? { ...s, certificates: { ...s.certificates, [e.data.serial]: { ...c, revoked: true } } } : s;
    }
    case 'CreditGranted':
      return { ...s, credit: Math.max(0, s.credit + e.data.amount) };
    case 'CreditCharged':
      return {
        ...s,
        credit: Math.max(0, s.credit - e.data.amount),
        charged: { ...s.charged, [e.data.nodeId]: Math.max(s.charged[e.data.nodeId] ?? 0, e.data.hour) },
      };
  }
};

/** A user: credentials (password hash, tokens, certificates) and credit. */
export const userDecider: Decider<UserCommand, UserEvent, UserState> = {
  initialState: () => ({ status: 'NONE' }),
  evolve: evolveUser,
  decide: (c, state) => {
    if (c.type === 'Register') {
      if (state.status !== 'NONE') throw new ConflictError('user exists');
      return [{ type: 'UserRegistered', data: c.data }];
    }
    const s = active(state);
    switch (c.type) {
      case 'ChangePassword':
        return [{ type: 'PasswordChanged', data: c.data }];
      case 'CreateToken':
        if (c.data.kind === 'api' && liveApiTokens(s, c.metadata.now) >= MAX_API_TOKENS)
          throw new CpsError('quota_exceeded', `at most ${MAX_API_TOKENS} API tokens`);
        if (s.tokens[c.data.tokenId]) throw new ConflictError('token id in use');
        return [{ type: 'TokenCreated', data: c.data }];
      case 'RevokeToken': {
        const t = s.tokens[c.data.tokenId];
        if (!t) throw new NotFoundError(`no token ${c.data.tokenId}`);
        return t.revoked ? [] : [{ type: 'TokenRevoked', data: c.data }];
      }
      case 'RecordCertificate':
        if (liveCertificates(s, c.metadata.now) >= MAX_LIVE_CERTIFICATES)
          throw new CpsError('quota_exceeded', `at most ${MAX_LIVE_CERTIFICATES} live certificates`);
        if (s.certificates[c.data.serial]) throw new ConflictError('certificate serial in use');
        return [{ type: 'CertificateIssued', data: c.data }];
      case 'RevokeCertificate': {
        const cert = s.certificates[c.data.serial];
        if (!cert) throw new NotFoundError(`no certificate ${c.data.serial}`);
        return cert.revoked ? [] : [{ type: 'CertificateRevoked', data: c.data }];
      }
      case 'GrantCredit':
        return [{ type: 'CreditGranted', data: c.data }];
      case 'Charge': {
        const done = s.charged[c.data.nodeId] ?? 0;
        const due = Math.max(0, c.data.hours - done);
        return due === 0
          ? []
          : [{ type: 'CreditCharged', data: { nodeId: c.data.nodeId, hour: c.data.hours, amount: due } }];
      }
      default: {
        const unknown: never = c;
        throw new CpsError('validation', `unknown command ${JSON.stringify(unknown)}`);
      }
    }
  },
};
