import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryParseAggregateId } from '@cps/core';
import type { Projection, RecordedEvent } from '@cps/events';
import { eventually } from '@cps/testing';
import type { Director } from '../director.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';

const svc = '/v1/applications/ops/services/hello';

describe("a manager's operation, read right after it was accepted", () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;

  const settled = async (location: string) => {
    const r = await eventually(
      () => alice.get(location),
      (x) => x.body?.state !== 'running',
      60_000,
    );
    expect(r.body.state, JSON.stringify(r.body)).toBe('succeeded');
  };

  /**
   * The director's read model takes `ms` to show the operations managers start, as it does when
   * its stream consumer lags behind the manager's reply (a loaded machine).
   */
  const slowReadModel = (ms: number): (() => void) => {
    const projection = (d.core.runner as unknown as { projection: Projection }).projection;
    const handle = projection.handle.bind(projection);
    Object.assign(projection, {
      handle: (e: RecordedEvent) =>
        tryParseAggregateId(e.aggregate)?.type === 'svc' && e.type === 'OperationStarted'
          ? new Promise<void>((r) => setTimeout(r, ms)).then(() => handle(e))
          : handle(e),
    });
    return () => Object.assign(projection, { handle });
  };

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.leadingDirector();
    alice = await h.user(d, 'alice');
    await h.startedService(alice, 'ops', 'helloworld', 'hello');
  });
  afterAll(async () => h?.cleanup());

  it('is there for adding nodes and for removing them, however far behind the read model is', async () => {
    const restore = slowReadModel(1_000);
    try {
      const add = await alice.post(`${svc}/nodes`, { nodes: { node: 1 } });
      expect(add.status).toBe(202);
      const added = await alice.get(add.headers.location as string);
      expect(added.status, added.text).toBe(200);
      await settled(add.headers.location as string);

      const remove = await alice.delete(`${svc}/nodes`, { nodes: { node: 1 } });
      expect(remove.status).toBe(202);
      const removing = await alice.get(remove.headers.location as string);
      expect(removing.status, removing.text).toBe(200);
      expect(removing.body).toMatchObject({ operationId: remove.body.operationId, kind: expect.any(String) });
      await settled(remove.headers.location as string);
    } finally {
      restore();
    }
  });
});
