import { describe, expect, it } from 'vitest';
import { aggregateIds } from '@cps/core';
import type { HistoryEvent } from '@cps/sdk';
import { OperationProgress } from './progress.js';

let n = 0;
const ev = (aggregate: string, type: string, data: unknown, serviceId?: string): HistoryEvent => ({
  id: `e${++n}`,
  cursor: String(n),
  position: { commit: n, index: 0 },
  at: new Date(n * 1000).toISOString(),
  type,
  aggregate,
  appId: 'a1',
  ...(serviceId ? { serviceId } : {}),
  actor: 'director',
  data,
});
const run = (p: OperationProgress, events: HistoryEvent[]) => {
  const lines: string[] = [];
  let ended = false;
  for (const e of events) {
    const r = p.see(e);
    lines.push(...r.lines);
    ended ||= r.ended;
  }
  return { lines, ended };
};
const svc = (type: string, data: unknown, serviceId = 's1') =>
  ev(aggregateIds.service('a1', serviceId), type, data, serviceId);

describe('progress of an operation from the event stream', () => {
  it("follows a manager's add_nodes: its nodes until ready, and its end", () => {
    const p = new OperationProgress({ operationId: 'o1', appId: 'a1', serviceId: 's1' });
    const r = run(p, [
      svc('OperationStarted', { operationId: 'o1', kind: 'add_nodes' }),
      svc('NodeRequested', { operationId: 'o1', nodeId: 'n1', role: 'node', cloud: 'local' }),
      svc('NodeRequested', { operationId: 'other', nodeId: 'n9', role: 'node', cloud: 'local' }),
      svc('NodeStarted', { nodeId: 'n1', instanceId: 'i' }),
      svc('NodeStarted', { nodeId: 'n9', instanceId: 'i' }),
      svc('NodeReady', { nodeId: 'n1' }),
      svc('NodeReady', { nodeId: 'n1' }, 's2'),
      svc('OperationCompleted', { operationId: 'other' }),
    ]);
    expect(r).toEqual({
      lines: ['node n1 (node) requested on local', 'node n1: started', 'node n1: ready'],
      ended: false,
    });
    expect(p.see(svc('OperationCompleted', { operationId: 'o1' }))).toEqual({ lines: [], ended: true });
  });

  it('names services: those it was given, and those added or renamed meanwhile', () => {
    const p = new OperationProgress({ operationId: 'd1', appId: 'a1' }, new Map([['s1', 'web']]));
    const r = run(p, [
      svc('ServiceStateChanged', { from: 'INIT', to: 'PROLOGUE', reason: '' }),
      ev(aggregateIds.app('a1'), 'ServiceAdded', {
        serviceId: 's2',
        name: 'db',
        type: 'generic',
        cloud: 'local',
      }),
      svc('ServiceStateChanged', { from: 'INIT', to: 'PROLOGUE', reason: '' }, 's2'),
      ev(aggregateIds.app('a1'), 'ServiceRenamed', { serviceId: 's2', name: 'store' }),
      svc('ServiceStateChanged', { from: 'PROLOGUE', to: 'RUNNING', reason: '' }, 's2'),
      svc('ServiceStateChanged', { from: 'INIT', to: 'PROLOGUE', reason: '' }, 's3'),
    ]);
    expect(r.lines).toEqual([
      'service web: INIT -> PROLOGUE',
      'service db: INIT -> PROLOGUE',
      'service store: PROLOGUE -> RUNNING',
      'service s3: INIT -> PROLOGUE',
    ]);
  });

  it('ends with the reason when the operation fails', () => {
    const p = new OperationProgress({ operationId: 'o1', serviceId: 's1' });
    expect(p.see(svc('OperationFailed', { operationId: 'o1', reason: 'no capacity' }))).toEqual({
      lines: ['failed: no capacity'],
      ended: true,
    });
  });

  it("follows a director operation: its steps, and what its service's manager does meanwhile", () => {
    const p = new OperationProgress({ operationId: 'd1', appId: 'a1', serviceId: 's1' });
    const r = run(p, [
      ev(aggregateIds.operation('d1'), 'OperationRequested', {
        operationId: 'd1',
        kind: 'start',
        owner: 'u1',
      }),
      ev(aggregateIds.operation('d1'), 'OperationProgressed', { step: 'manager started' }),
      svc('ServiceStateChanged', { from: 'INIT', to: 'PROLOGUE', reason: '' }),
      svc('NodeRequested', { operationId: 'm7', nodeId: 'n2', role: 'master', cloud: 'local' }),
      svc('NodeReady', { nodeId: 'n2' }),
      svc('ServiceStateChanged', { from: 'PROLOGUE', to: 'RUNNING', reason: '' }),
      // the manager's own operation ending does not end the director's
      svc('OperationCompleted', { operationId: 'm7' }),
      ev(aggregateIds.operation('d2'), 'OperationSucceeded', {}),
    ]);
    expect(r).toEqual({
      lines: [
        'manager started',
        'service s1: INIT -> PROLOGUE',
        'node n2 (master) requested on local',
        'node n2: ready',
        'service s1: PROLOGUE -> RUNNING',
      ],
      ended: false,
    });
    expect(
      p.see(ev(aggregateIds.operation('d1'), 'DirectorOperationFailed', { reason: 'manager gone' })),
    ).toEqual({
      lines: ['failed: manager gone'],
      ended: true,
    });
  });
});
