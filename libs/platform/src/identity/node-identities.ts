import type { Identity } from '@cps/core';
import type { IdentityIssuer } from './identity-issuer.js';

/**
 * Contextualization for nodes a supervisor starts on a trusted cloud (the local one): a freshly
 * issued identity in `identity.json` (0600 in the node's private directory, unreadable by its
 * workloads), the bus URLs and, when `enrollUrl` names one, the director a node whose identity
 * expired while it was stopped re-enrolls at (`CPS_ENROLL_URL`). Cloud nodes elsewhere get an
 * enrollment token instead.
 */
export class IssuedNodeIdentities {
  constructor(
    private readonly issuer: IdentityIssuer,
    private readonly natsUrls: readonly string[],
    private readonly enrollUrl: () => string | undefined = () => undefined,
  ) {}

  async contextualize(
    identity: Identity,
  ): Promise<{ env: Record<string, string>; files: Record<string, string> }> {
    const issued = await this.issuer.issue(identity, 'supervisor');
    const url = this.enrollUrl();
    return {
      env: { CPS_NATS_URLS: this.natsUrls.join(','), ...(url ? { CPS_ENROLL_URL: url } : {}) },
      files: { 'identity.json': JSON.stringify(issued) },
    };
  }
}

/**
 * Contextualization for nodes on clouds that are not this machine (EC2, OpenNebula), whose user-data
 * anyone on the instance can read: no private key, only a one-time enrollment token (valid `ttlMs`,
 * default 15 minutes), the director's enrollment URL and the CA bundle (`bus-ca.pem`) its HTTPS
 * certificate chains to. The node makes its own keys and trades the token (see `enrollNode`).
 */
export class EnrollingNodeIdentities {
  constructor(
    private readonly issuer: IdentityIssuer,
    private readonly natsUrls: readonly string[],
    private readonly enrollUrl: string,
    private readonly caPem: string,
    private readonly ttlMs?: number,
  ) {}

  async contextualize(
    identity: Identity,
  ): Promise<{ env: Record<string, string>; files: Record<string, string> }> {
    const token = await this.issuer.offerEnrollment(identity, this.ttlMs);
    return {
      env: {
        CPS_NATS_URLS: this.natsUrls.join(','),
        CPS_ENROLL_URL: this.enrollUrl,
        CPS_ENROLL_TOKEN: token,
      },
      files: { 'bus-ca.pem': this.caPem },
    };
  }
}
