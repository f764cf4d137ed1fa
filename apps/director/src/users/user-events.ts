import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineEvent, type EventOf } from '@cps/events';

export const TokenKind = z.enum(['session', 'api']);
export const Scope = z.enum(['read', 'write', 'admin']);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const UserRegistered = defineEvent(
  'UserRegistered',
  z.object({
    userId: IdSchema,
    username: z.string(),
    role: z.enum(['admin', 'user']),
    /** scrypt, salted per user: never the password. */
    passwordHash: z.string(),
    credit: z.number().int().min(0),
  }),
);
export const PasswordChanged = defineEvent('PasswordChanged', z.object({ passwordHash: z.string() }));
/** A bearer token: only its SHA-256 is stored, the secret was shown once. */
export const TokenCreated = defineEvent(
  'TokenCreated',
  z.object({
    tokenId: IdSchema,
    kind: TokenKind,
    name: z.string().max(64),
    hash: Sha256,
    scopes: z.array(Scope),
    expiresAt: z.string(),
  }),
);
export const TokenRevoked = defineEvent('TokenRevoked', z.object({ tokenId: IdSchema }));
export const CertificateIssued = defineEvent(
  'CertificateIssued',
  z.object({ serial: z.string(), subject: z.string(), expiresAt: z.string() }),
);
export const CertificateRevoked = defineEvent('CertificateRevoked', z.object({ serial: z.string() }));
export const CreditGranted = defineEvent(
  'CreditGranted',
  z.object({ amount: z.number().int(), by: z.string(), reason: z.string().max(200) }),
);
/** One node-hour charged: `hour` counts from the node's start (1 = the first hour). */
export const CreditCharged = defineEvent(
  'CreditCharged',
  z.object({ nodeId: IdSchema, hour: z.number().int().min(1), amount: z.number().int().min(1) }),
);

export const userEvents = [
  UserRegistered,
  PasswordChanged,
  TokenCreated,
  TokenRevoked,
  CertificateIssued,
  CertificateRevoked,
  CreditGranted,
  CreditCharged,
];

export type UserEvent =
  | EventOf<typeof UserRegistered>
  | EventOf<typeof PasswordChanged>
  | EventOf<typeof TokenCreated>
  | EventOf<typeof TokenRevoked>
  | EventOf<typeof CertificateIssued>
  | EventOf<typeof CertificateRevoked>
  | EventOf<typeof CreditGranted>
  | EventOf<typeof CreditCharged>;
