import type { Identity } from '@cps/core';
import type { IdentityIssuer } from './identity-issuer.js';

/**
 * Contextualization for nodes a supervisor starts on a trusted cloud (the local one): a freshly
 * issued identity in `identity.json` (0600 in the node's private directory, unreadable by its
 * workloads) and the bus URLs. Cloud nodes elsewhere get an enrollment token instead.
 */
export class IssuedNodeIdentities {
  constructor(
    private readonly issuer: IdentityIssuer,
    private readonly natsUrls: readonly string[],
  ) {}

  async contextualize(
    identity: Identity,
  ): Promise<{ env: Record<string, string>; files: Record<string, string> }> {
    const issued = await this.issuer.issue(identity, 'supervisor');
    return {
      env: { CPS_NATS_URLS: this.natsUrls.join(',') },
      files: { 'identity.json': JSON.stringify(issued) },
    };
  }
}
