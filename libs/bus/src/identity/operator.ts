import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  fromPublic,
  fromSeed,
  type KeyPair,
} from '@nats-io/jwt';
import type { Identity } from '@cps/core';
import { subjects } from '../subjects.js';
import { permissionsFor, type BusPermissions } from './permissions.js';

/**
 * The NATS operator-mode trust chain of one platform: the operator (the platform), the system
 * account and the one platform account whose signing key issues every user JWT. Seeds are secrets:
 * store them sealed (see bootstrap), never in events.
 */
export interface OperatorMaterial {
  readonly operatorSeed: string;
  readonly systemAccountSeed: string;
  readonly accountSeed: string;
  readonly accountSigningSeed: string;
}

/** Revoked user public keys with the time (unix seconds) before which their JWTs are void. */
export type Revocations = Readonly<Record<string, number>>;

export interface SignedTrustChain {
  readonly operatorJwt: string;
  readonly systemAccountJwt: string;
  readonly systemAccount: string;
  readonly accountJwt: string;
  readonly account: string;
}

/** A user's bus credentials: a JWT and (when the key was made here) the nkey seed. */
export interface BusCredentials {
  readonly identity: Identity;
  readonly jwt: string;
  readonly publicKey: string;
  readonly seed?: string;
  readonly inboxPrefix: string;
  readonly expiresAt: Date;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const seedOf = (kp: KeyPair): string => dec.decode(kp.getSeed());
const kp = (seed: string): KeyPair => fromSeed(enc.encode(seed));

const UNLIMITED = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
};
const JETSTREAM_UNLIMITED = {
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
  max_ack_pending: -1,
  mem_max_stream_bytes: -1,
  disk_max_stream_bytes: -1,
  max_bytes_required: false,
};

export const createOperatorMaterial = (): OperatorMaterial => ({
  operatorSeed: seedOf(createOperator()),
  systemAccountSeed: seedOf(createAccount()),
  accountSeed: seedOf(createAccount()),
  accountSigningSeed: seedOf(createAccount()),
});

export const publicKeyOfSeed = (seed: string): string => kp(seed).getPublicKey();

/**
 * Signs the operator and account JWTs. Limits are set to -1 explicitly: an absent limit means 0
 * on nats-server 2.9 and nobody could connect.
 */
export const signTrustChain = async (
  m: OperatorMaterial,
  revocations: Revocations = {},
): Promise<SignedTrustChain> => {
  const operator = kp(m.operatorSeed);
  const sys = kp(m.systemAccountSeed);
  const acc = kp(m.accountSeed);
  const signing = kp(m.accountSigningSeed);
  const operatorJwt = await encodeOperator('cps', operator, { system_account: sys.getPublicKey() });
  const systemAccountJwt = await encodeAccount('SYS', sys, { limits: UNLIMITED }, { signer: operator });
  const accountJwt = await encodeAccount(
    'CPS',
    acc,
    {
      limits: { ...UNLIMITED, ...JETSTREAM_UNLIMITED },
      signing_keys: [signing.getPublicKey()],
      revocations: { ...revocations },
    },
    { signer: operator },
  );
  return {
    operatorJwt,
    systemAccountJwt,
    systemAccount: sys.getPublicKey(),
    accountJwt,
    account: acc.getPublicKey(),
  };
};

const toJwtPermissions = (p: BusPermissions) => ({
  pub: { allow: [...p.pub.allow], deny: [...p.pub.deny] },
  sub: { allow: [...p.sub.allow], deny: [...p.sub.deny] },
});

/**
 * Issues a user JWT for `identity` with its least-privilege permissions, signed by the account's
 * signing key. With `publicKey` the caller keeps its own nkey (enrollment, renewal); without, a
 * fresh key is made and its seed returned.
 */
export const issueUserCredentials = async (
  m: OperatorMaterial,
  identity: Identity,
  opts: { now: Date; ttlMs: number; publicKey?: string; permissions?: BusPermissions },
): Promise<BusCredentials> => {
  const user = opts.publicKey ? fromPublic(opts.publicKey) : createUser();
  const expiresAt = new Date(opts.now.getTime() + opts.ttlMs);
  const perms = opts.permissions ?? permissionsFor(identity);
  const jwt = await encodeUser(
    `${identity.role}:${identity.id}`,
    user,
    kp(m.accountSeed),
    toJwtPermissions(perms),
    {
      signer: kp(m.accountSigningSeed),
      exp: Math.floor(expiresAt.getTime() / 1000),
    },
  );
  return {
    identity,
    jwt,
    publicKey: user.getPublicKey(),
    ...(opts.publicKey ? {} : { seed: seedOf(user) }),
    inboxPrefix: subjects.inbox(identity),
    expiresAt,
  };
};

/** Credentials of the system account (for pushing account updates): guard them like the operator key. */
export const issueSystemCredentials = async (
  m: OperatorMaterial,
  now: Date,
  ttlMs: number,
): Promise<{ jwt: string; seed: string }> => {
  const user = createUser();
  const jwt = await encodeUser(
    'sys',
    user,
    kp(m.systemAccountSeed),
    {},
    { exp: Math.floor((now.getTime() + ttlMs) / 1000) },
  );
  return { jwt, seed: seedOf(user) };
};

export const credsFile = (jwt: string, seed: string): string => dec.decode(fmtCreds(jwt, kp(seed)));

/** The `operator`/`resolver` part of a nats-server configuration for this trust chain. */
export const serverAuthConfig = (
  chain: SignedTrustChain,
  resolverDir: string,
  o: { preloadAccount?: boolean } = {},
): string =>
  [
    `operator: "${chain.operatorJwt}"`,
    `system_account: "${chain.systemAccount}"`,
    `resolver: { type: full, dir: ${JSON.stringify(resolverDir)}, allow_delete: false, interval: "2m" }`,
    `resolver_preload: {`,
    `  ${chain.systemAccount}: "${chain.systemAccountJwt}"`,
    ...(o.preloadAccount === false ? [] : [`  ${chain.account}: "${chain.accountJwt}"`]),
    `}`,
  ].join('\n');

/** A new user nkey pair; the seed never leaves the process that made it. */
export const newUserKey = (): { publicKey: string; seed: string } => {
  const u = createUser();
  return { publicKey: u.getPublicKey(), seed: seedOf(u) };
};
