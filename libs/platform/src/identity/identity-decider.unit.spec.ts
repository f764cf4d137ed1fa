import { describe, it } from 'vitest';
import { DeciderSpecification, hasErrorCode, type Identity } from '@cps/core';
import { identityDecider, type IdentityCommand, type IdentityEvent } from '@cps/platform';

const agent: Identity = { role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1', nodeId: 'n1' };
const spec = DeciderSpecification(identityDecider);
const now = new Date('2026-11-24T10:00:00Z');
const cmd = (type: IdentityCommand['type'], data: object): IdentityCommand =>
  ({ type, data, metadata: { now, requestId: 'r', actor: 't' } }) as IdentityCommand;
const ev = (type: IdentityEvent['type'], data: object): IdentityEvent =>
  ({ type, version: 1, data }) as unknown as IdentityEvent;
const cred = { serial: 'aa', certExpiresAt: '2026-11-24T11:00:00Z', userKey: 'UKEY1' };
const issued = ev('IdentityIssued', { identity: agent, ...cred, via: 'supervisor' });
const offered = ev('EnrollmentOffered', {
  identity: agent,
  tokenHash: 'h',
  expiresAt: '2026-11-24T10:15:00.000Z',
});

describe('identity decider', () => {
  it('issues, then renews an active identity', () => {
    spec
      .given([])
      .when(cmd('Issue', { identity: agent, via: 'supervisor', ...cred }))
      .then([issued]);
    spec
      .given([issued])
      .when(cmd('Renew', { ...cred, serial: 'bb', userKey: 'UKEY2' }))
      .then([ev('IdentityRenewed', { ...cred, serial: 'bb', userKey: 'UKEY2' })]);
  });

  it('revokes every credential it issued, once', () => {
    const renewed = ev('IdentityRenewed', { ...cred, serial: 'bb', userKey: 'UKEY2' });
    spec
      .given([issued, renewed])
      .when(cmd('Revoke', { reason: 'x' }))
      .then([ev('IdentityRevoked', { serials: ['aa', 'bb'], userKeys: ['UKEY1', 'UKEY2'], reason: 'x' })]);
    spec
      .given([issued, ev('IdentityRevoked', { serials: ['aa'], userKeys: ['UKEY1'], reason: 'x' })])
      .when(cmd('Revoke', { reason: 'again' }))
      .then([]);
  });

  it('refuses renewing or re-issuing a revoked identity', () => {
    const revoked = ev('IdentityRevoked', { serials: ['aa'], userKeys: ['UKEY1'], reason: 'x' });
    spec
      .given([issued, revoked])
      .when(cmd('Renew', cred))
      .thenThrows((e) => hasErrorCode(e, 'forbidden'));
    spec
      .given([issued, revoked])
      .when(cmd('Issue', { identity: agent, via: 'supervisor', ...cred }))
      .thenThrows((e) => hasErrorCode(e, 'forbidden'));
  });

  it('redeems an enrollment token once, before it expires', () => {
    spec
      .given([offered])
      .when(cmd('Redeem', { tokenHash: 'h', ...cred }))
      .then([
        ev('EnrollmentRedeemed', { tokenHash: 'h' }),
        { ...issued, data: { ...(issued.data as object), via: 'enrollment' } } as IdentityEvent,
      ]);
    spec
      .given([
        offered,
        ev('EnrollmentRedeemed', { tokenHash: 'h' }),
        { ...issued, data: { ...(issued.data as object), via: 'enrollment' } } as IdentityEvent,
      ])
      .when(cmd('Redeem', { tokenHash: 'h', ...cred }))
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
    spec
      .given([offered])
      .when(cmd('Redeem', { tokenHash: 'other', ...cred }))
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
    const late = {
      ...cmd('Redeem', { tokenHash: 'h', ...cred }),
      metadata: { now: new Date('2026-11-24T10:16:00Z'), requestId: 'r', actor: 't' },
    } as IdentityCommand;
    spec
      .given([offered])
      .when(late)
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
  });

  it('refuses to offer enrollment for an identity that exists', () => {
    spec
      .given([issued])
      .when(cmd('Offer', { identity: agent, tokenHash: 'h', expiresAt: 'x' }))
      .thenThrows((e) => hasErrorCode(e, 'conflict'));
  });
});
