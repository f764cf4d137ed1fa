import { z } from 'zod';
import { defineCommand } from '../rpc/command.js';

/**
 * What the identity issuer (on the directors) serves: renewals, at `subjects.renewal(identity)`, a
 * subject only that identity may publish to.
 */

/** A renewal: the holder's new CSR and new user nkey; the identity comes from the subject. */
export const renewIdentity = defineCommand(
  'renew',
  z.object({ csr: z.string().max(16_384), userKey: z.string().regex(/^U[A-Z2-7]{55}$/) }),
  z.object({ cert: z.string(), jwt: z.string(), expiresAt: z.string() }),
);
