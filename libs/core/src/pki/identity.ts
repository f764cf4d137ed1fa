import { z } from 'zod';

/** Ids that appear in subjects, SANs and JWT names: one NATS token, lowercase. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const IdSchema = z.string().regex(ID_PATTERN, 'must match ' + ID_PATTERN.source);

export const Roles = {
  director: 'director',
  manager: 'manager',
  agent: 'agent',
  user: 'user',
  server: 'server',
  admin: 'admin',
} as const;
export type Role = (typeof Roles)[keyof typeof Roles];

/**
 * Who a certificate or a bus credential speaks for. Carried in the certificate as a SPIFFE-style
 * URI SAN (`spiffe://cps/<role>/<id>[/user/..][/app/..][/svc/..][/node/..]`) and in the subject DN.
 */
export interface Identity {
  readonly role: Role;
  readonly id: string;
  readonly userId?: string;
  readonly appId?: string;
  readonly serviceId?: string;
  readonly nodeId?: string;
}

export const TRUST_DOMAIN = 'cps';
const ORDER = [
  ['user', 'userId'],
  ['app', 'appId'],
  ['svc', 'serviceId'],
  ['node', 'nodeId'],
] as const;

export const identityToUri = (i: Identity): string => {
  const parts = [`spiffe://${TRUST_DOMAIN}`, i.role, i.id];
  for (const [k, f] of ORDER) {
    const v = i[f];
    if (v !== undefined) parts.push(k, v);
  }
  return parts.join('/');
};

export const identityFromUri = (uri: string): Identity | undefined => {
  const prefix = `spiffe://${TRUST_DOMAIN}/`;
  if (!uri.startsWith(prefix)) return undefined;
  const [role, id, ...rest] = uri.slice(prefix.length).split('/');
  if (!role || !id || !Object.hasOwn(Roles, role) || rest.length % 2 !== 0) return undefined;
  const out: Record<string, string> = { role, id };
  for (let k = 0; k < rest.length; k += 2) {
    const field = ORDER.find(([key]) => key === rest[k])?.[1];
    if (!field) return undefined;
    out[field] = rest[k + 1] as string;
  }
  return out as unknown as Identity;
};
