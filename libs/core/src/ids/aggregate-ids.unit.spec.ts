import { describe, expect, it } from 'vitest';
import {
  aggregateIds,
  formatAggregateId,
  hasErrorCode,
  nameScopes,
  parseAggregateId,
  tryParseAggregateId,
  type AggregateId,
} from '@cps/core';

/** The `validation` error of `f`, with the paths of its issues. */
const refusal = (f: () => unknown): { paths: string[]; message: string } => {
  try {
    f();
  } catch (e) {
    if (hasErrorCode(e, 'validation')) return { paths: e.issues.map((i) => i.path), message: e.message };
    throw e;
  }
  throw new Error('not refused');
};

describe('aggregate ids', () => {
  it('builds every kind and parses it back to what it was built from', () => {
    const claim = aggregateIds.name(nameScopes.users, 'alice');
    const cases: [string, AggregateId][] = [
      [aggregateIds.user('ua1'), { type: 'user', userId: 'ua1' }],
      [aggregateIds.app('a1'), { type: 'app', appId: 'a1' }],
      [aggregateIds.service('a1', 's1'), { type: 'svc', appId: 'a1', serviceId: 's1' }],
      [aggregateIds.operation('o-1'), { type: 'op', operationId: 'o-1' }],
      [aggregateIds.node('n_1'), { type: 'node', nodeId: 'n_1' }],
      [aggregateIds.identity({ role: 'manager', id: 's1' }), { type: 'identity', role: 'manager', id: 's1' }],
      [claim, { type: 'name', claim: claim.slice('name.'.length) }],
    ];
    for (const [id, parsed] of cases) {
      expect(parseAggregateId(id)).toEqual(parsed);
      expect(formatAggregateId(parsed)).toBe(id);
    }
  });

  it('keeps the ids the event history already holds', () => {
    expect(aggregateIds.user('u1')).toBe('user.u1');
    expect(aggregateIds.app('a1')).toBe('app.a1');
    expect(aggregateIds.service('a1', 's1')).toBe('svc.a1.s1');
    expect(aggregateIds.operation('o1')).toBe('op.o1');
    expect(aggregateIds.node('n1')).toBe('node.n1');
    expect(aggregateIds.identity({ role: 'agent', id: 'n1' })).toBe('identity.agent.n1');
    // sha256 of `user\0alice`, its first 40 hex digits
    expect(aggregateIds.name(nameScopes.users, 'alice')).toBe(
      'name.61e53a32f777fee6b9ea613099951c7761155b16',
    );
    expect(nameScopes.applicationsOf('u1')).toBe('app.u1');
    expect(aggregateIds.name(nameScopes.applicationsOf('u1'), 'site')).not.toBe(
      aggregateIds.name(nameScopes.applicationsOf('u2'), 'site'),
    );
  });

  it('refuses to build an id from a malformed one, naming the field', () => {
    expect(refusal(() => aggregateIds.service('A1', 's1')).paths).toEqual(['$.appId']);
    expect(refusal(() => aggregateIds.service('a1', 's.1')).paths).toEqual(['$.serviceId']);
    expect(refusal(() => aggregateIds.user('')).paths).toEqual(['$.userId']);
    expect(refusal(() => aggregateIds.operation('o>')).paths).toEqual(['$.operationId']);
    expect(refusal(() => aggregateIds.node('*')).paths).toEqual(['$.nodeId']);
    expect(refusal(() => aggregateIds.app('-a')).paths).toEqual(['$.appId']);
    expect(refusal(() => aggregateIds.identity({ role: 'root' as never, id: 'x' })).paths).toEqual([
      '$.role',
    ]);
  });

  it('refuses to parse a malformed id with a validation error naming the field', () => {
    const cases: [string, string][] = [
      ['', '$.type'],
      ['svc', '$.appId'],
      ['svc.a1', '$.serviceId'],
      ['svc.a1.', '$.serviceId'],
      ['svc.a1.S1', '$.serviceId'],
      ['svc.a1.s1.x', '$.aggregate'],
      ['app.a1.s1', '$.aggregate'],
      ['user.', '$.userId'],
      ['op.O1', '$.operationId'],
      ['node.n 1', '$.nodeId'],
      ['identity.root.x', '$.role'],
      ['identity.agent', '$.id'],
      ['name.alice', '$.claim'],
      ['kill.k1', '$.type'],
      ['constructor.x', '$.type'],
    ];
    for (const [id, path] of cases) {
      const r = refusal(() => parseAggregateId(id));
      expect(r.paths, id).toEqual([path]);
      expect(r.message).toContain(JSON.stringify(id));
      expect(tryParseAggregateId(id)).toBeUndefined();
    }
  });
});
