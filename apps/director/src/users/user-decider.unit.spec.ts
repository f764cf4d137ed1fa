import { describe, it } from 'vitest';
import { DeciderSpecification, hasErrorCode } from '@cps/core';
import { userDecider, MAX_API_TOKENS, type UserCommand } from './user-decider.js';
import type { UserEvent } from './user-events.js';

const spec = DeciderSpecification(userDecider);
const now = new Date('2026-11-24T10:00:00Z');
const cmd = (type: UserCommand['type'], data: object): UserCommand =>
  ({ type, data, metadata: { now, requestId: 'r', actor: 't' } }) as UserCommand;
const ev = (type: UserEvent['type'], data: object): UserEvent => ({ type, data }) as UserEvent;
const registered = ev('UserRegistered', {
  userId: 'u1',
  username: 'alice',
  role: 'user',
  passwordHash: 'scrypt$x',
  credit: 5,
});

describe('user decider', () => {
  it('charges each node-hour once, however often the same hours are charged', () => {
    spec
      .given([registered])
      .when(cmd('Charge', { nodeId: 'n1', hours: 1 }))
      .then([ev('CreditCharged', { nodeId: 'n1', hour: 1, amount: 1 })]);
    const charged = ev('CreditCharged', { nodeId: 'n1', hour: 1, amount: 1 });
    // a second director, or a retry, charging the same hour: nothing due
    spec
      .given([registered, charged])
      .when(cmd('Charge', { nodeId: 'n1', hours: 1 }))
      .then([]);
    // three hours in: the two not yet charged, in one event
    spec
      .given([registered, charged])
      .when(cmd('Charge', { nodeId: 'n1', hours: 3 }))
      .then([ev('CreditCharged', { nodeId: 'n1', hour: 3, amount: 2 })]);
    // another node is charged on its own
    spec
      .given([registered, charged])
      .when(cmd('Charge', { nodeId: 'n2', hours: 1 }))
      .then([ev('CreditCharged', { nodeId: 'n2', hour: 1, amount: 1 })]);
  });

  it('registers once and refuses commands for nobody', () => {
    spec
      .given([registered])
      .when(cmd('Register', {}))
      .thenThrows((e) => hasErrorCode(e, 'conflict'));
    spec
      .given([])
      .when(cmd('GrantCredit', { amount: 1, by: 'a', reason: '' }))
      .thenThrows((e) => hasErrorCode(e, 'not_found'));
  });

  it('creates and revokes tokens; a revoke is idempotent; API tokens are capped', () => {
    const token = {
      tokenId: 't1',
      kind: 'api',
      name: 'ci',
      hash: 'a'.repeat(64),
      scopes: ['read'],
      expiresAt: '2027-01-01T00:00:00Z',
    };
    spec
      .given([registered])
      .when(cmd('CreateToken', token))
      .then([ev('TokenCreated', token)]);
    const created = ev('TokenCreated', token);
    spec
      .given([registered, created])
      .when(cmd('RevokeToken', { tokenId: 't1' }))
      .then([ev('TokenRevoked', { tokenId: 't1' })]);
    spec
      .given([registered, created, ev('TokenRevoked', { tokenId: 't1' })])
      .when(cmd('RevokeToken', { tokenId: 't1' }))
      .then([]);
    spec
      .given([registered])
      .when(cmd('RevokeToken', { tokenId: 'nope' }))
      .thenThrows((e) => hasErrorCode(e, 'not_found'));
    const many = Array.from({ length: MAX_API_TOKENS }, (_, i) =>
      ev('TokenCreated', { ...token, tokenId: `t${i + 10}` }),
    );
    spec
      .given([registered, ...many])
      .when(cmd('CreateToken', { ...token, tokenId: 'tx' }))
      .thenThrows((e) => hasErrorCode(e, 'quota_exceeded'));
  });
});
