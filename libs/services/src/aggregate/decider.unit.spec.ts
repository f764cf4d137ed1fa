import { describe, expect, it } from 'vitest';
import { fold, hasErrorCode, toArray } from '@cps/core';
import { NodeStarted, type ServiceEvent } from './events.js';
import { ServiceRegistry } from '../contract/registry.js';
import { genericService } from '../generic-service/generic.js';
import { redisService } from '../redis/redis.js';
import { serviceDecider, type ServiceCommand, type ServiceState } from './decider.js';

const decider = serviceDecider(new ServiceRegistry([genericService]));
const meta = { now: new Date('2026-11-24T10:00:00Z'), requestId: 'r', actor: 't' };
const cmd = (type: ServiceCommand['type'], data: object): ServiceCommand =>
  ({ type, data, metadata: meta }) as ServiceCommand;

/** Runs commands in order from nothing; returns every event and the final state. */
const run = (...cmds: ServiceCommand[]): { events: ServiceEvent[]; state: ServiceState } => {
  const events: ServiceEvent[] = [];
  for (const c of cmds) events.push(...toArray(decider.decide(c, fold(decider, events))));
  return { events, state: fold(decider, events) };
};
const fails = (code: string, ...cmds: ServiceCommand[]): void => {
  let err: unknown;
  try {
    run(...cmds);
  } catch (e) {
    err = e;
  }
  expect(hasErrorCode(err, code as never), `expected ${code}, got ${String(err)}`).toBe(true);
};

const create = cmd('Create', { appId: 'a1', serviceId: 's1', type: 'generic', config: {} });
const startup = cmd('Startup', {
  operationId: 'op1',
  nodes: [
    { nodeId: 'n1', role: 'master', cloud: 'local' },
    { nodeId: 'n2', role: 'node', cloud: 'local' },
  ],
});
const ready = (id: string) => [
  cmd('NodeStarted', { nodeId: id, instanceId: `pid-${id}` }),
  cmd('NodeReady', { nodeId: id }),
];
const running = [create, startup, ...ready('n1'), ...ready('n2')];
const status = (s: ServiceState) => s.status;

describe('service state machine', () => {
  it('INIT -> PROLOGUE -> RUNNING when every startup node is ready', () => {
    expect(status(run(create).state)).toBe('INIT');
    expect(status(run(create, startup).state)).toBe('PROLOGUE');
    expect(status(run(create, startup, ...ready('n1')).state)).toBe('PROLOGUE');
    const r = run(...running);
    expect(status(r.state)).toBe('RUNNING');
    expect(r.events.filter((e) => e.type === 'OperationCompleted')).toEqual([
      { type: 'OperationCompleted', data: { operationId: 'op1' } },
    ]);
    // whoever sees the operation end has seen the state it left the service in
    expect(r.events.slice(-2).map((e) => e.type)).toEqual(['ServiceStateChanged', 'OperationCompleted']);
    expect(r.state.status !== 'NONE' && r.state.operation).toBeUndefined();
  });

  it('RUNNING <-> ADAPTING for add and remove, refusing what the state does not allow with conflict naming it', () => {
    const add = cmd('AddNodes', {
      operationId: 'op2',
      nodes: [{ nodeId: 'n3', role: 'node', cloud: 'local' }],
    });
    expect(status(run(...running, add).state)).toBe('ADAPTING');
    fails(
      'conflict',
      ...running,
      add,
      cmd('AddNodes', { operationId: 'op3', nodes: [{ nodeId: 'n4', role: 'node', cloud: 'local' }] }),
    );
    expect(status(run(...running, add, ...ready('n3')).state)).toBe('RUNNING');
    const rm = cmd('RemoveNodes', { operationId: 'op4', nodeIds: ['n2'] });
    expect(status(run(...running, rm).state)).toBe('ADAPTING');
    expect(status(run(...running, rm, cmd('NodeRemoved', { nodeId: 'n2' })).state)).toBe('RUNNING');
    let message = '';
    try {
      run(create, add);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/while the service is INIT/);
  });

  it('keeps the fixed roles: the only master cannot be removed', () => {
    fails('conflict', ...running, cmd('RemoveNodes', { operationId: 'op2', nodeIds: ['n1'] }));
    fails('not_found', ...running, cmd('RemoveNodes', { operationId: 'op2', nodeIds: ['n9'] }));
    fails('validation', ...running, cmd('RemoveNodes', { operationId: 'op2', nodeIds: [] }));
  });

  it('refuses to remove every node of a running service (shutdown stops it), naming the field', () => {
    let error: unknown;
    try {
      run(...running, cmd('RemoveNodes', { operationId: 'op2', nodeIds: ['n1', 'n2'] }));
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'validation', issues: [{ path: '$.nodeIds', code: 'last_node' }] });
    // what is left may be gone already: removing the last active one is refused too
    const n2gone = [
      ...running,
      cmd('RemoveNodes', { operationId: 'op3', nodeIds: ['n2'] }),
      cmd('NodeRemoved', { nodeId: 'n2' }),
    ];
    fails('validation', ...n2gone, cmd('RemoveNodes', { operationId: 'op4', nodeIds: ['n1'] }));
  });

  it('shuts down through EPILOGUE to STOPPED, and a stopped service starts again', () => {
    const down = cmd('Shutdown', { operationId: 'op9' });
    const epilogue = run(...running, down);
    expect(status(epilogue.state)).toBe('EPILOGUE');
    expect(epilogue.events.filter((e) => e.type === 'NodeRemovalRequested')).toHaveLength(2);
    const stopped = run(
      ...running,
      down,
      cmd('NodeRemoved', { nodeId: 'n1' }),
      cmd('NodeRemoved', { nodeId: 'n2' }),
    );
    expect(status(stopped.state)).toBe('STOPPED');
    const again = cmd('Startup', {
      operationId: 'op10',
      nodes: [{ nodeId: 'n5', role: 'master', cloud: 'local' }],
    });
    expect(
      status(
        run(
          ...running,
          down,
          cmd('NodeRemoved', { nodeId: 'n1' }),
          cmd('NodeRemoved', { nodeId: 'n2' }),
          again,
        ).state,
      ),
    ).toBe('PROLOGUE');
    fails(
      'conflict',
      ...running,
      cmd('Startup', { operationId: 'opx', nodes: [{ nodeId: 'n7', role: 'master', cloud: 'local' }] }),
    );
    expect(status(run(create, down).state)).toBe('STOPPED');
  });

  it('never hangs on failed nodes: a failed startup ends in ERROR, a partial one in RUNNING, and ERROR can be shut down', () => {
    const allFailed = run(
      create,
      startup,
      cmd('NodeFailed', { nodeId: 'n1', reason: 'not ready in 60 s' }),
      cmd('NodeFailed', { nodeId: 'n2', reason: 'x' }),
    );
    expect(status(allFailed.state)).toBe('ERROR');
    expect(allFailed.events.find((e) => e.type === 'OperationFailed')).toMatchObject({
      data: { reason: expect.stringMatching(/n1 \(not ready in 60 s\)/) },
    });
    expect(
      status(run(create, startup, ...ready('n1'), cmd('NodeFailed', { nodeId: 'n2', reason: 'x' })).state),
    ).toBe('RUNNING');
    const down = run(
      create,
      startup,
      cmd('NodeFailed', { nodeId: 'n1', reason: 'x' }),
      cmd('NodeFailed', { nodeId: 'n2', reason: 'x' }),
      cmd('Shutdown', { operationId: 'op3' }),
    );
    expect(status(down.state)).toBe('EPILOGUE');
    fails(
      'conflict',
      create,
      startup,
      cmd('NodeFailed', { nodeId: 'n1', reason: 'x' }),
      cmd('NodeFailed', { nodeId: 'n2', reason: 'x' }),
      cmd('AddNodes', { operationId: 'o', nodes: [{ nodeId: 'n3', role: 'node', cloud: 'local' }] }),
    );
  });

  it('replaces a failed node in one operation, and ignores repeated node reports', () => {
    const failed = [...running, cmd('NodeFailed', { nodeId: 'n2', reason: 'heartbeat lost' })];
    expect(status(run(...failed).state)).toBe('RUNNING');
    const replace = cmd('AddNodes', {
      operationId: 'op5',
      nodes: [{ nodeId: 'n6', role: 'node', cloud: 'local', replaces: 'n2' }],
    });
    const r = run(...failed, replace, ...ready('n6'), cmd('NodeRemoved', { nodeId: 'n2' }));
    expect(status(r.state)).toBe('RUNNING');
    expect(r.state.status !== 'NONE' && r.state.nodes['n2']?.state).toBe('removed');
    const twice = run(
      ...running,
      cmd('NodeReady', { nodeId: 'n1' }),
      cmd('NodeFailed', { nodeId: 'n2', reason: 'x' }),
      cmd('NodeFailed', { nodeId: 'n2', reason: 'x' }),
    );
    expect(twice.events.filter((e) => e.type === 'NodeFailed')).toHaveLength(1);
  });

  it('refuses reused node ids and commands on a service that does not exist', () => {
    fails(
      'conflict',
      ...running,
      cmd('AddNodes', { operationId: 'op2', nodes: [{ nodeId: 'n1', role: 'node', cloud: 'local' }] }),
    );
    fails('not_found', startup);
    fails('conflict', create, create);
  });

  it("keeps a started node's address and ports; a NodeStarted recorded without ports still reads", () => {
    const ports = { from: 20_040, to: 20_059 };
    const started = cmd('NodeStarted', { nodeId: 'n1', instanceId: 'i-1', address: '192.0.2.9', ports });
    const { state } = run(create, startup, started);
    expect(state.status !== 'NONE' && state.nodes['n1']).toMatchObject({
      state: 'starting',
      address: '192.0.2.9',
      ports,
    });
    const old = { nodeId: 'n1', instanceId: 'i-1', address: '192.0.2.9' };
    expect(NodeStarted.schema.parse(old)).toEqual(old);
    const before = run(create, startup, cmd('NodeStarted', old)).state;
    expect(before.status !== 'NONE' && before.nodes['n1']).not.toHaveProperty('ports');
  });

  it('moves a node that came back elsewhere, once', () => {
    const move = cmd('MoveNode', { nodeId: 'n1', address: '192.0.2.7', ports: { from: 20_100, to: 20_119 } });
    const r = run(...running, move, move);
    expect(r.events.filter((e) => e.type === 'NodeMoved')).toHaveLength(1);
    expect(r.state.status !== 'NONE' && r.state.nodes['n1']).toMatchObject({
      state: 'running',
      address: '192.0.2.7',
      ports: { from: 20_100, to: 20_119 },
    });
  });

  it('keeps endpoints: set, moved, removed; an unchanged one records nothing', () => {
    const at = (port: number) =>
      cmd('SetEndpoint', { name: 'redis', endpoint: { address: '127.0.0.1', port } });
    const r = run(...running, at(20_000), at(20_000), at(20_020), cmd('SetEndpoint', { name: 'redis' }));
    expect(r.events.filter((e) => e.type === 'EndpointSet').map((e) => e.data)).toEqual([
      { name: 'redis', endpoint: { address: '127.0.0.1', port: 20_000 } },
      { name: 'redis', endpoint: { address: '127.0.0.1', port: 20_020 } },
      { name: 'redis' },
    ]);
    expect(r.state.status !== 'NONE' && r.state.endpoints).toEqual({});
  });

  it('starts with the links it was created with, and records a change of them only', () => {
    const linked = cmd('Create', {
      appId: 'a1',
      serviceId: 's1',
      type: 'generic',
      config: {},
      links: { db: 's2' },
    });
    const created = run(linked).state;
    expect(created.status !== 'NONE' && created.links).toEqual({ db: { serviceId: 's2', endpoints: {} } });
    const links = (port: number) => ({
      db: { serviceId: 's2', endpoints: { redis: { port, address: '127.0.0.1' } } },
    });
    const r = run(linked, cmd('SetLinks', { links: links(1) }), cmd('SetLinks', { links: links(1) }));
    expect(r.events.filter((e) => e.type === 'LinksSet')).toHaveLength(1);
    expect(r.state.status !== 'NONE' && r.state.links).toEqual(links(1));
  });
});

describe("a plugin's own state", () => {
  const plugins = serviceDecider(new ServiceRegistry([genericService, redisService]));
  const runWith = (...cmds: ServiceCommand[]) => {
    const events: ServiceEvent[] = [];
    for (const c of cmds) events.push(...toArray(plugins.decide(c, fold(plugins, events))));
    return fold(plugins, events);
  };
  const redis = cmd('Create', { appId: 'a1', serviceId: 'r1', type: 'redis', config: {} });
  const chosen = (nodeId: unknown) =>
    cmd('RecordPluginEvent', { name: 'primary_chosen', data: { nodeId, reason: 'test' } });

  it('folds the events it records with its evolve, from its initial state', () => {
    expect(runWith(redis)).toMatchObject({ plugin: {} });
    expect(runWith(redis, chosen('n1'), chosen('n2'))).toMatchObject({ plugin: { primary: 'n2' } });
  });

  it('refuses an event it does not name, or data its schema refuses, with the path', () => {
    const refused = (c: ServiceCommand): unknown => {
      try {
        runWith(redis, c);
      } catch (e) {
        return e;
      }
      throw new Error('not refused');
    };
    expect(refused(cmd('RecordPluginEvent', { name: 'nope', data: {} }))).toMatchObject({
      code: 'validation',
      issues: [{ path: '$.name', code: 'unknown_event' }],
    });
    expect(refused(chosen('Not An Id'))).toMatchObject({
      code: 'validation',
      issues: [{ path: '$.nodeId' }],
    });
    // a type without state events has none to record
    expect(() =>
      runWith(
        cmd('Create', { appId: 'a1', serviceId: 'g1', type: 'generic', config: {} }),
        cmd('RecordPluginEvent', { name: 'primary_chosen', data: { nodeId: 'n1', reason: 'x' } }),
      ),
    ).toThrow(/generic has no state event primary_chosen/);
  });
});
