import type { Identity } from '@cps/core';
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

/**
 * Whether what a bus identity stands for is gone, by the read model: an agent's node unknown,
 * destroyed or being destroyed; a manager's service unknown or removed, or its application deleted.
 * Such an identity does not re-enroll.
 */
export const retiredIn =
  (directory: Directory) =>
  (identity: Identity): boolean => {
    if (identity.role === 'agent') {
      const node = directory.nodes.get(identity.nodeId ?? identity.id);
      return !node || node.status === 'destroying' || node.status === 'destroyed';
    }
    if (identity.role === 'manager') {
      const service = directory.services.get(identity.serviceId ?? identity.id);
      return !service || service.removed || directory.apps.get(service.appId)?.deleted !== false;
    }
    return false;
  };
