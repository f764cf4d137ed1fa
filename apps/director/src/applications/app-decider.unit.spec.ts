import { describe, it } from 'vitest';
import { DeciderSpecification, hasErrorCode } from '@cps/core';
import { appDecider, MAX_SERVICES, type AppCommand } from './app-decider.js';
import type { AppEvent } from './app-events.js';

const spec = DeciderSpecification(appDecider);
const now = new Date('2026-11-24T10:00:00Z');
const cmd = (type: AppCommand['type'], data: object): AppCommand =>
  ({ type, data, metadata: { now, requestId: 'r', actor: 't' } }) as AppCommand;
const ev = (type: AppEvent['type'], data: object): AppEvent => ({ type, data }) as AppEvent;
const created = ev('ApplicationCreated', { appId: 'a1', owner: 'u1', name: 'shop', description: '' });
const svc = (n: number) => ({
  serviceId: `s${n}`,
  name: `svc ${n}`,
  type: 'generic',
  cloud: 'local',
  config: {},
});

describe('application decider', () => {
  it('adds services in order with unique names, up to the limit', () => {
    spec
      .given([created])
      .when(cmd('AddService', svc(1)))
      .then([ev('ServiceAdded', svc(1))]);
    spec
      .given([created, ev('ServiceAdded', svc(1))])
      .when(cmd('AddService', { ...svc(2), name: 'svc 1' }))
      .thenThrows((e) => hasErrorCode(e, 'name_taken') && e.issues[0]?.path === '$.name');
    // the same service id again (a retried request) changes nothing
    spec
      .given([created, ev('ServiceAdded', svc(1))])
      .when(cmd('AddService', svc(1)))
      .then([]);
    const full = Array.from({ length: MAX_SERVICES }, (_, i) => ev('ServiceAdded', svc(i + 1)));
    spec
      .given([created, ...full])
      .when(cmd('AddService', svc(99)))
      .thenThrows((e) => hasErrorCode(e, 'quota_exceeded'));
  });

  it('renames only what changed, and nothing once deleted', () => {
    spec
      .given([created])
      .when(cmd('Update', { name: 'shop' }))
      .then([]);
    spec
      .given([created])
      .when(cmd('Update', { name: 'store', description: 'd' }))
      .then([ev('ApplicationRenamed', { name: 'store' }), ev('ApplicationDescribed', { description: 'd' })]);
    spec
      .given([created, ev('ApplicationDeleted', {})])
      .when(cmd('Update', { name: 'x' }))
      .thenThrows((e) => hasErrorCode(e, 'not_found'));
  });
});
