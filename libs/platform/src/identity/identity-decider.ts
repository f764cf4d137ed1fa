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
export const EnrollmentRedeemed = defineEvent('EnrollmentRedeemed', z.object({ tokenHash: z.string() }));

export const identityEvents = [
  IdentityIssued,
  IdentityRenewed,
  IdentityRevoked,
  EnrollmentOffered,
  EnrollmentRedeemed,
];

export type IdentityEvent =
  | EventOf<typeof IdentityIssued>
  | EventOf<typeof IdentityRenewed>
  | EventOf<typeof IdentityRevoked>
  | EventOf<typeof EnrollmentOffered>
  | EventOf<typeof EnrollmentRedeemed>;

interface Credentials {
  readonly serials: readonly string[];
  readonly userKeys: readonly string[];
}

export type IdentityState =
  | { readonly status: 'unknown' }
  | {
      readonly status: 'offered';
      readonly identity: Identity;
      readonly tokenHash: string;
      readonly expiresAt: string;
    }
  | ({ readonly status: 'active'; readonly identity: Identity; readonly certExpiresAt: string } & Credentials)
  | ({ readonly status: 'revoked'; readonly identity: Identity } & Credentials);

type Issued = { serial: string; certExpiresAt: string; userKey: string };
export type IdentityCommand =
  | Command<'Issue', { identity: Identity; via: 'supervisor' | 'bootstrap' } & Issued>
  | Command<'Renew', Issued>
  | Command<'Revoke', { reason: string }>
  | Command<'Offer', { identity: Identity; tokenHash: string; expiresAt: string }>
  | Command<'Redeem', { tokenHash: string } & Issued>;

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

const redeem = (c: Extract<IdentityCommand, { type: 'Redeem' }>, s: IdentityState): IdentityEvent[] => {
  if (s.status !== 'offered' || s.tokenHash !== c.data.tokenHash)
    throw new CpsError('unauthenticated', 'unknown or used enrollment token');
  if (c.metadata.now.getTime() > Date.parse(s.expiresAt))
    throw new CpsError('unauthenticated', 'enrollment token expired');
  const { serial, certExpiresAt, userKey } = c.data;
  return [
    EnrollmentRedeemed({ tokenHash: c.data.tokenHash }),
    IdentityIssued({
      identity: s.identity as z.input<typeof IdentitySchema>,
      serial,
      certExpiresAt,
      userKey,
      via: 'enrollment',
    }),
  ];
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
      return s;
    case 'IdentityIssued': {
      const prev = s.status === 'active' ? s : { serials: [], userKeys: [] };
      return {
        status: 'active',
        identity: e.data.identity,
        certExpiresAt: e.data.certExpiresAt,
        serials: [...prev.serials, e.data.serial].slice(-20),
        userKeys: [...prev.userKeys, e.data.userKey].slice(-20),
      };
    }
    case 'IdentityRenewed':
      return s.status !== 'active'
        ? s
        : {
            ...s,
            certExpiresAt: e.data.certExpiresAt,
            serials: [...s.serials, e.data.serial].slice(-20),
            userKeys: [...s.userKeys, e.data.userKey].slice(-20),
          };
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
    }
  },
};
