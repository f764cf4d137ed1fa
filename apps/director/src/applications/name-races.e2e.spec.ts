import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '@cps/events';
import type { Director } from '../director.js';
import { serviceIdOf } from '../services/services.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';
import { aggregateIds, parseAggregateId } from '@cps/core';

const RACERS = 20;

describe('creations racing for one name: one wins, the others leave nothing behind', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;

  /** Every event of the store. */
  const history = async (): Promise<RecordedEvent[]> => {
    const all: RecordedEvent[] = [];
    const head = await d.core.store.head();
    for (let after = 0; after < head; after += 500)
      all.push(...(await d.core.store.readAll({ after, limit: 500 })));
    return all;
  };

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.startDirector();
    alice = await h.user(d, 'alice');
  });
  afterAll(async () => h?.cleanup());

  it(`of ${RACERS} services added with one name to one application, one is recorded`, async () => {
    const app = await alice.post('/v1/applications', { name: 'race' });
    expect(app.status).toBe(201);
    const appId = app.body.appId as string;
    const answers = await Promise.all(
      Array.from({ length: RACERS }, () =>
        alice.post('/v1/applications/race/services', {
          type: 'generic',
          name: 'same',
          config: { env: { GREETING: 'hello' } },
        }),
      ),
    );
    const won = answers.filter((a) => a.status === 201);
    expect(won).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409 && a.body.code === 'name_taken')).toHaveLength(RACERS - 1);
    const serviceId = won[0]!.body.serviceId as string;

    const events = await history();
    const created = events.filter((e) => {
      const a = parseAggregateId(e.aggregate);
      return e.type === 'ServiceCreated' && a.type === 'svc' && a.appId === appId;
    });
    expect(created.map((e) => e.aggregate)).toEqual([aggregateIds.service(appId, serviceId)]);
    const added = events.filter((e) => e.type === 'ServiceAdded' && e.aggregate === aggregateIds.app(appId));
    expect(added).toHaveLength(1);
    expect((await alice.get('/v1/applications/race/services')).body.services).toEqual([
      expect.objectContaining({ serviceId, name: 'same', state: 'INIT' }),
    ]);
  });

  it('starts a service whose creation was cut short after the application added it', async () => {
    const appId = (await alice.get('/v1/applications/race')).body.appId as string;
    const state = await d.applications.apps.state(aggregateIds.app(appId));
    if (state.status !== 'ACTIVE') throw new Error('no application');
    // what a director stopping between the two appends leaves: the application's record alone
    const serviceId = serviceIdOf('cut-short');
    await d.applications.apps.run(
      aggregateIds.app(appId),
      'AddService',
      { ...state.services[0]!, serviceId, name: 'cut' },
      { requestId: 'cut-short', actor: 'test' },
    );
    const start = await alice.post('/v1/applications/race/services/cut/start');
    expect(start.status, start.text).toBe(202);
    for (let deadline = Date.now() + 90_000; ;) {
      const op = await alice.get(`/v1/operations/${start.body.operationId}`);
      if (op.body.state !== 'running') {
        expect(op.body.state, op.text).toBe('succeeded');
        break;
      }
      if (Date.now() > deadline) throw new Error('the start did not end');
      await new Promise((r) => setTimeout(r, 250));
    }
    const { events } = await d.core.store.readAggregate(aggregateIds.service(appId, serviceId));
    // with the settings the application holds (a manager creating it would know none)
    expect(state.services[0]!.config).toMatchObject({ env: { GREETING: 'hello' } });
    expect(events[0]).toMatchObject({
      type: 'ServiceCreated',
      data: { serviceId, config: state.services[0]!.config },
    });
    expect((await alice.get('/v1/applications/race/services/cut')).body.state).toBe('RUNNING');
  });

  it(`of ${RACERS} applications created with one name, one is recorded`, async () => {
    const answers = await Promise.all(
      Array.from({ length: RACERS }, () => alice.post('/v1/applications', { name: 'contested' })),
    );
    const won = answers.filter((a) => a.status === 201);
    expect(won).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409 && a.body.code === 'name_taken')).toHaveLength(RACERS - 1);
    const events = await history();
    const created = events.filter(
      (e) => e.type === 'ApplicationCreated' && (e.data as { name: string }).name === 'contested',
    );
    expect(created.map((e) => e.aggregate)).toEqual([aggregateIds.app(won[0]!.body.appId)]);
    expect(
      events.filter((e) => e.type === 'NameClaimed' && (e.data as { name: string }).name === 'contested'),
    ).toHaveLength(1);
  });
});
