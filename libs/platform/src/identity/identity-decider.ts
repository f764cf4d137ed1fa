import { z } from 'zod';
import {
  ConflictError,
  CpsError,
  ForbiddenError,
  IdSchema,
  type Command,
  type Decider,
  type Identity,
} from '@cps/core';
import { defineEvent, type EventOf } from '@cps/events';

/** Issued identities, enrollment offers and revocations: one aggregate per bus identity. */
export const IdentitySchema = z.object({
  role: z.enum(['director', 'manager', 'agent']),
  id: IdSchema,
  userId: IdSchema.optional(),
  appId: IdSchema.optional(),
  serviceId: IdSchema.optional(),
  nodeId: IdSchema.optional(),
});

const Credential = { serial: z.string(), certExpiresAt: z.string(), userKey: z.string() };

export const IdentityIssued = defineEvent(
  'IdentityIssued',
  z.object({
    identity: IdentitySchema,
    ...Credential,
    via: z.enum(['supervisor', 'enrollment', 'bootstrap']),
  }),
);
export const IdentityRenewed = defineEvent('IdentityRenewed', z.object(Credential));
export const IdentityRevoked = defineEvent(
  'IdentityRevoked',
  z.object({ serials: z.array(z.string()), userKeys: z.array(z.string()), reason: z.string().max(500) }),
);
export const EnrollmentOffered = defineEvent(
  'EnrollmentOffered',
  z.object({ identity: IdentitySchema, tokenHash: z.string(), expiresAt: z.string() }),
);
/**
 * The token traded, and by whom: the requester's user key and the SHA-256 of its certificate key (both
 * absent in histories older than idempotent enrollment, which then allow no repeat).
 */
export const EnrollmentRedeemed = defineEvent(
  'EnrollmentRedeemed',
  z.object({ tokenHash: z.string(), userKey: z.string().optional(), keyHash: z.string().optional() }),
);
/** The same requester asked again with the same token (its reply was lost): a fresh certificate for its keys. */
export const EnrollmentRepeated = defineEvent(
  'EnrollmentRepeated',
  z.object({ tokenHash: z.string(), ...Credential }),
);
/** A node proved it holds the key of `previousSerial` (expired, not too long ago) and got fresh credentials. */
export const IdentityReenrolled = defineEvent(
  'IdentityReenrolled',
  z.object({ previousSerial: z.string(), ...Credential }),
);

export const identityEvents = [
  IdentityIssued,
  IdentityRenewed,
  IdentityRevoked,
  EnrollmentOffered,
  EnrollmentRedeemed,
  EnrollmentRepeated,
  IdentityReenrolled,
];

export type IdentityEvent =
  | EventOf<typeof IdentityIssued>
  | EventOf<typeof IdentityRenewed>
  | EventOf<typeof IdentityRevoked>
  | EventOf<typeof EnrollmentOffered>
  | EventOf<typeof EnrollmentRedeemed>
  | EventOf<typeof EnrollmentRepeated>
  | EventOf<typeof IdentityReenrolled>;

interface Credentials {
  readonly serials: readonly string[];
  readonly userKeys: readonly string[];
}

/** A redeemed token: until it expires, its requester (same user key, same certificate key) may ask again. */
interface Enrollment {
  readonly tokenHash: string;
  readonly expiresAt: string;
  readonly userKey?: string;
  readonly keyHash?: string;
}

/** How long after its certificate expired an identity may still re-enroll (30 days). */
export const REENROLL_WITHIN_MS = 30 * 24 * 3600_000;

/** `redeemed` lasts within one commit only: its `IdentityIssued` follows. */
export type IdentityState =
  | { readonly status: 'unknown' }
  | {
      readonly status: 'offered';
      readonly identity: Identity;
      readonly tokenHash: string;
      readonly expiresAt: string;
    }
  | { readonly status: 'redeemed'; readonly identity: Identity; readonly enrollment: Enrollment }
  | ({
      readonly status: 'active';
      readonly identity: Identity;
      readonly certExpiresAt: string;
      readonly enrollment?: Enrollment;
    } & Credentials)
  | ({ readonly status: 'revoked'; readonly identity: Identity } & Credentials);

type Issued = { serial: string; certExpiresAt: string; userKey: string };
export type IdentityCommand =
  | Command<'Issue', { identity: Identity; via: 'supervisor' | 'bootstrap' } & Issued>
  | Command<'Renew', Issued>
  | Command<'Revoke', { reason: string }>
  | Command<'Offer', { identity: Identity; tokenHash: string; expiresAt: string }>
  | Command<'Redeem', { tokenHash: string; keyHash: string } & Issued>
  | Command<'Reenroll', { previousSerial: string; previousExpiresAt: string } & Issued>;

const usedToken = (): CpsError => new CpsError('unauthenticated', 'unknown or used enrollment token');
const expiredToken = (): CpsError => new CpsError('unauthenticated', 'enrollment token expired');

const issue = (c: Extract<IdentityCommand, { type: 'Issue' }>, s: IdentityState): IdentityEvent => {
  if (s.status === 'revoked')
    throw new ForbiddenError(`identity ${c.data.identity.role}:${c.data.identity.id} is revoked`);
  const { identity, serial, certExpiresAt, userKey, via } = c.data;
  return IdentityIssued({
    identity: identity as z.input<typeof IdentitySchema>,
    serial,
    certExpiresAt,
    userKey,
    via,
  });
};

const renew = (c: Extract<IdentityCommand, { type: 'Renew' }>, s: IdentityState): IdentityEvent => {
  if (s.status !== 'active')
    throw new ForbiddenError(`only an active identity renews (this one is ${s.status})`);
  return IdentityRenewed(c.data);
};

const revoke = (c: Extract<IdentityCommand, { type: 'Revoke' }>, s: IdentityState): IdentityEvent[] => {
  if (s.status === 'unknown' || s.status === 'revoked') return [];
  const creds =
    s.status === 'active'
      ? { serials: [...s.serials], userKeys: [...s.userKeys] }
      : { serials: [], userKeys: [] };
  return [IdentityRevoked({ ...creds, reason: c.data.reason })];
};

const offer = (c: Extract<IdentityCommand, { type: 'Offer' }>, s: IdentityState): IdentityEvent => {
  if (s.status !== 'unknown') throw new ConflictError(`identity already ${s.status}`);
  const { identity, tokenHash, expiresAt } = c.data;
  return EnrollmentOffered({
    identity: identity as z.input<typeof IdentitySchema>,
    tokenHash,
    expiresAt,
  });
};

const repeat = (c: Extract<IdentityCommand, { type: 'Redeem' }>, e: Enrollment): IdentityEvent[] => {
  if (e.userKey !== c.data.userKey || e.keyHash !== c.data.keyHash) throw usedToken();
  if (c.metadata.now.getTime() > Date.parse(e.expiresAt)) throw expiredToken();
  const { tokenHash, serial, certExpiresAt, userKey } = c.data;
  return [EnrollmentRepeated({ tokenHash, serial, certExpiresAt, userKey })];
};

const redeem = (c: Extract<IdentityCommand, { type: 'Redeem' }>, s: IdentityState): IdentityEvent[] => {
  if (s.status === 'active' && s.enrollment?.tokenHash === c.data.tokenHash) return repeat(c, s.enrollment);
  if (s.status !== 'offered' || s.tokenHash !== c.data.tokenHash) throw usedToken();
  if (c.metadata.now.getTime() > Date.parse(s.expiresAt)) throw expiredToken();
  const { tokenHash, keyHash, serial, certExpiresAt, userKey } = c.data;
  return [
    EnrollmentRedeemed({ tokenHash, userKey, keyHash }),
    IdentityIssued({
      identity: s.identity as z.input<typeof IdentitySchema>,
      serial,
      certExpiresAt,
      userKey,
      via: 'enrollment',
    }),
  ];
};

const reenroll = (c: Extract<IdentityCommand, { type: 'Reenroll' }>, s: IdentityState): IdentityEvent[] => {
  const refuse = (code: 'unauthenticated' | 'forbidden', issue: string, message: string): CpsError =>
    new CpsError(code, message, [{ path: '$.cert', code: issue, message }]);
  if (s.status === 'revoked')
    throw refuse('forbidden', 'revoked', `identity ${s.identity.role}:${s.identity.id} is revoked`);
  if (s.status !== 'active' || !s.serials.includes(c.data.previousSerial))
    throw refuse('unauthenticated', 'unknown_certificate', 'not a certificate this identity holds');
  if (c.metadata.now.getTime() - Date.parse(c.data.previousExpiresAt) > REENROLL_WITHIN_MS)
    throw refuse(
      'forbidden',
      'expired_too_long',
      `the certificate expired more than ${REENROLL_WITHIN_MS / (24 * 3600_000)} days ago: the node needs a new enrollment`,
    );
  const { previousSerial, serial, certExpiresAt, userKey } = c.data;
  return [IdentityReenrolled({ previousSerial, serial, certExpiresAt, userKey })];
};

/** An active identity with one more credential (renewed, repeated, re-enrolled). */
const withCredential = (s: IdentityState, c: Issued): IdentityState =>
  s.status !== 'active'
    ? s
    : {
        ...s,
        certExpiresAt: c.certExpiresAt,
        serials: [...s.serials, c.serial].slice(-20),
        userKeys: [...s.userKeys, c.userKey].slice(-20),
      };

const evolve = (s: IdentityState, e: IdentityEvent): IdentityState => {
  switch (e.type) {
    case 'EnrollmentOffered':
      return {
        status: 'offered',
        identity: e.data.identity,
        tokenHash: e.data.tokenHash,
        expiresAt: e.data.expiresAt,
      };
    case 'EnrollmentRedeemed':
      return s.status !== 'offered'
        ? s
        : {
            status: 'redeemed',
            identity: s.identity,
            enrollment: {
              tokenHash: s.tokenHash,
              expiresAt: s.expiresAt,
              ...(e.data.userKey ? { userKey: e.data.userKey } : {}),
              ...(e.data.keyHash ? { keyHash: e.data.keyHash } : {}),
            },
          };
    case 'IdentityIssued': {
      const prev = s.status === 'active' ? s : { serials: [], userKeys: [] };
      return {
        status: 'active',
        identity: e.data.identity,
        certExpiresAt: e.data.certExpiresAt,
        serials: [...prev.serials, e.data.serial].slice(-20),
        userKeys: [...prev.userKeys, e.data.userKey].slice(-20),
        ...(s.status === 'redeemed' ? { enrollment: s.enrollment } : {}),
      };
    }
    case 'IdentityRenewed':
    case 'EnrollmentRepeated':
    case 'IdentityReenrolled':
      return withCredential(s, e.data);
    case 'IdentityRevoked':
      return s.status === 'unknown'
        ? s
        : { status: 'revoked', identity: s.identity, serials: e.data.serials, userKeys: e.data.userKeys };
  }
};

export const identityDecider: Decider<IdentityCommand, IdentityEvent, IdentityState> = {
  initialState: () => ({ status: 'unknown' }),
  evolve,
  decide: (c, s) => {
    switch (c.type) {
      case 'Issue':
        return issue(c, s);
      case 'Renew':
        return renew(c, s);
      case 'Revoke':
        return revoke(c, s);
      case 'Offer':
        return offer(c, s);
      case 'Redeem':
        return redeem(c, s);
      case 'Reenroll':
        return reenroll(c, s);
    }
  },
};
