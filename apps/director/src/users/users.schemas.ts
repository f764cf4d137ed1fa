import { z } from 'zod';
import { NameSchema, TimeSchema } from '../api/schemas.js';

export const UsernameSchema = z
  .string()
  .min(2)
  .max(32)
  .regex(/^[a-z][a-z0-9_-]*$/, 'lowercase letters, digits, _ and -, starting with a letter');
export const PasswordSchema = z.string().min(8).max(256);
export const UserSchema = z
  .object({
    userId: z.string(),
    username: z.string(),
    role: z.enum(['admin', 'user']),
    credit: z.number().int(),
    createdAt: TimeSchema,
  })
  .meta({ id: 'User' });

export const LoginSchema = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(256),
});
export const SessionSchema = z
  .object({ token: z.string(), tokenId: z.string(), expiresAt: TimeSchema, user: UserSchema })
  .meta({ id: 'Session' });

export const RegisterSchema = z.strictObject({
  username: UsernameSchema,
  password: PasswordSchema,
  role: z.enum(['admin', 'user']).default('user'),
  credit: z.number().int().min(0).max(1_000_000).optional(),
});
export const CreditSchema = z.strictObject({
  amount: z
    .number()
    .int()
    .min(-1_000_000)
    .max(1_000_000)
    .refine((n) => n !== 0, 'not zero'),
  reason: z.string().max(200).default(''),
});

export const TokenSchema = z
  .object({
    tokenId: z.string(),
    kind: z.enum(['session', 'api']),
    name: z.string(),
    scopes: z.array(z.enum(['read', 'write', 'admin'])),
    createdAt: TimeSchema,
    expiresAt: TimeSchema,
    revoked: z.boolean(),
  })
  .meta({ id: 'Token' });
export const NewTokenSchema = z.strictObject({
  name: NameSchema,
  scopes: z
    .array(z.enum(['read', 'write', 'admin']))
    .min(1)
    .max(3)
    .default(['read', 'write']),
  ttlDays: z.number().int().min(1).max(3650).default(90),
});
export const CreatedTokenSchema = TokenSchema.extend({
  token: z.string().describe('the secret: shown once, never stored'),
}).meta({ id: 'CreatedToken' });
