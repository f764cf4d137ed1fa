import type { NodeIdentitySource } from '@cps/clouds';
import type { Directory } from '../core/directory.js';
import type { UserKeys } from '../users/user-keys.js';

/**
 * What a node gets to join the bus, as `base` gives it, and for a manager its owner's key too (in its
 * private node directory, `secrets.key`), to open its service's secrets.
 */
export const withOwnerKeys = (
  base: NodeIdentitySource,
  directory: Directory,
  userKeys: UserKeys,
): NodeIdentitySource => ({
  contextualize: async (identity, c) => {
    const given = await base.contextualize(identity, c);
    const owner = identity.appId ? directory.apps.get(identity.appId)?.owner : undefined;
    if (identity.role !== 'manager' || !owner) return given;
    return { ...given, files: { ...given.files, 'secrets.key': await userKeys.material(owner) } };
  },
});
