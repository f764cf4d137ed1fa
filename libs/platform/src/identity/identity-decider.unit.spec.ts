import { describe, expect, it } from 'vitest';
import { DeciderSpecification, hasErrorCode, isCpsError, type Identity } from '@cps/core';
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
const redeemed = ev('EnrollmentRedeemed', { tokenHash: 'h', userKey: 'UKEY1', keyHash: 'K1' });
const enrolled = { ...issued, data: { ...(issued.data as object), via: 'enrollment' } } as IdentityEvent;
const revokedAa = ev('IdentityRevoked', { serials: ['aa'], userKeys: ['UKEY1'], reason: 'x' });

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
      .when(cmd('Redeem', { tokenHash: 'h', keyHash: 'K1', ...cred }))
      .then([redeemed, enrolled]);
    spec
      .given([offered])
      .when(cmd('Redeem', { tokenHash: 'other', keyHash: 'K1', ...cred }))
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
    const late = {
      ...cmd('Redeem', { tokenHash: 'h', keyHash: 'K1', ...cred }),
      metadata: { now: new Date('2026-11-24T10:16:00Z'), requestId: 'r', actor: 't' },
    } as IdentityCommand;
    spec
      .given([offered])
      .when(late)
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
  });

  it('gives the identity again to the requester that redeemed the token, and to nobody else', () => {
    const again = { tokenHash: 'h', keyHash: 'K1', ...cred, serial: 'bb' };
    spec
      .given([offered, redeemed, enrolled])
      .when(cmd('Redeem', again))
      .then([
        ev('EnrollmentRepeated', {
          tokenHash: 'h',
          serial: 'bb',
          certExpiresAt: cred.certExpiresAt,
          userKey: 'UKEY1',
        }),
      ]);
    for (const other of [
      { ...again, userKey: 'UKEY2' },
      { ...again, keyHash: 'K2' },
      { ...again, tokenHash: 'other' },
    ])
      spec
        .given([offered, redeemed, enrolled])
        .when(cmd('Redeem', other))
        .thenThrows((e) => hasErrorCode(e, 'unauthenticated') && /used/.test(e.message));
    const late = {
      ...cmd('Redeem', again),
      metadata: { now: new Date('2026-11-24T10:16:00Z'), requestId: 'r', actor: 't' },
    } as IdentityCommand;
    spec
      .given([offered, redeemed, enrolled])
      .when(late)
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated') && /expired/.test(e.message));
    spec
      .given([offered, redeemed, enrolled, revokedAa])
      .when(cmd('Redeem', again))
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
    // a history from before requesters were recorded allows no repeat
    spec
      .given([offered, ev('EnrollmentRedeemed', { tokenHash: 'h' }), enrolled])
      .when(cmd('Redeem', again))
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
  });

  it('folds a repeated enrollment and a re-enrollment in as credentials of the identity', () => {
    const state = [
      offered,
      redeemed,
      enrolled,
      ev('EnrollmentRepeated', { tokenHash: 'h', serial: 'bb', certExpiresAt: 'x', userKey: 'UKEY1' }),
      ev('IdentityReenrolled', {
        previousSerial: 'bb',
        serial: 'cc',
        certExpiresAt: '2026-12-01T11:00:00Z',
        userKey: 'UKEY3',
      }),
    ].reduce(identityDecider.evolve, identityDecider.initialState());
    expect(state).toMatchObject({
      status: 'active',
      certExpiresAt: '2026-12-01T11:00:00Z',
      serials: ['aa', 'bb', 'cc'],
      userKeys: ['UKEY1', 'UKEY1', 'UKEY3'],
      enrollment: { tokenHash: 'h', userKey: 'UKEY1', keyHash: 'K1' },
    });
  });

  it('re-enrolls an active identity that shows a certificate it holds, expired at most 30 days ago', () => {
    const data = {
      previousSerial: 'aa',
      serial: 'dd',
      certExpiresAt: '2026-12-20T11:00:00Z',
      userKey: 'UKEY4',
    };
    const at = (iso: string, previousExpiresAt = cred.certExpiresAt) =>
      ({
        ...cmd('Reenroll', { ...data, previousExpiresAt }),
        metadata: { now: new Date(iso), requestId: 'r', actor: 't' },
      }) as IdentityCommand;
    const reenrolled = ev('IdentityReenrolled', {
      previousSerial: 'aa',
      serial: 'dd',
      certExpiresAt: data.certExpiresAt,
      userKey: 'UKEY4',
    });
    spec.given([issued]).when(at('2026-12-24T11:00:00Z')).then([reenrolled]);
    spec.given([issued]).when(at('2026-11-24T10:30:00Z')).then([reenrolled]);
    const issue = (code: string) => (e: unknown) => isCpsError(e) && e.issues[0]?.code === code;
    spec
      .given([issued])
      .when(at('2026-12-24T11:00:01Z'))
      .thenThrows((e) => hasErrorCode(e, 'forbidden') && issue('expired_too_long')(e));
    spec
      .given([issued, revokedAa])
      .when(at('2026-11-24T12:00:00Z'))
      .thenThrows((e) => hasErrorCode(e, 'forbidden') && issue('revoked')(e));
    spec
      .given([issued])
      .when({ ...at('2026-11-24T12:00:00Z'), data: { ...data, previousSerial: 'zz' } } as IdentityCommand)
      .thenThrows((e) => hasErrorCode(e, 'unauthenticated') && issue('unknown_certificate')(e));
    for (const given of [[], [offered]])
      spec
        .given(given)
        .when(at('2026-11-24T12:00:00Z'))
        .thenThrows((e) => hasErrorCode(e, 'unauthenticated'));
  });

  it('refuses to offer enrollment for an identity that exists', () => {
    spec
      .given([issued])
      .when(cmd('Offer', { identity: agent, tokenHash: 'h', expiresAt: 'x' }))
      .thenThrows((e) => hasErrorCode(e, 'conflict'));
  });
});
