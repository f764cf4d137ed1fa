import { createHash, randomBytes } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { CpsError, seal, sealingKeyFrom, unseal, type SealingKey } from '@cps/core';
import { toCpsError } from '@cps/bus';
import type { PlatformSecrets } from '@cps/platform';

export const USER_KEYS_BUCKET = 'cps_user_keys';

/**
 * One secret key per user, kept outside the event stream (KV `cps_user_keys`, itself sealed under a
 * key derived from the platform's secrets). Secret fields of a user's services are sealed with it
 * before they reach any event; erasing the key makes every one of them unreadable for good
 * (crypto-shredding), with no event to rewrite.
 */
export class UserKeys {
  private kv: Promise<KV> | undefined;
  private readonly wrap: SealingKey;

  constructor(
    private readonly nc: NatsConnection,
    secrets: PlatformSecrets,
  ) {
    const material = createHash('sha256')
      .update('cps-user-keys\u0000')
      .update(secrets.operator.accountSeed)
      .digest('base64');
    this.wrap = sealingKeyFrom(material);
  }

  static async ensure(nc: NatsConnection, replicas = 1): Promise<void> {
    await new Kvm(nc).create(USER_KEYS_BUCKET, { history: 1, replicas });
  }

  /** The key material (base64) of `userId`, created on first use. */
  async material(userId: string): Promise<string> {
    const kv = await this.bucket();
    for (let attempt = 0; attempt < 3; attempt++) {
      const e = await kv.get(userId).catch((err: unknown) => {
        throw toCpsError(err, USER_KEYS_BUCKET);
      });
      if (e && e.operation === 'PUT')
        return unseal(this.wrap, e.string(), `user-key:${userId}`).toString('utf8');
      if (e && e.operation !== 'PUT')
        throw new CpsError('not_found', `the secrets of user ${userId} were erased`);
      const fresh = randomBytes(32).toString('base64');
      try {
        await kv.create(userId, seal(this.wrap, fresh, `user-key:${userId}`));
        return fresh;
      } catch {
        // another director created it first: read theirs
      }
    }
    throw new CpsError('unavailable', `could not read the key of user ${userId}`);
  }

  async key(userId: string): Promise<SealingKey> {
    return sealingKeyFrom(await this.material(userId));
  }

  /** Erases the key: every secret sealed with it is gone. */
  async erase(userId: string): Promise<void> {
    await (await this.bucket()).delete(userId);
  }

  private bucket(): Promise<KV> {
    this.kv ??= new Kvm(this.nc).open(USER_KEYS_BUCKET);
    return this.kv;
  }
}

/** The sealing context of a service's secret fields (managers open them with the same). */
export const serviceSecretContext = (serviceId: string): string => `svc:${serviceId}`;
