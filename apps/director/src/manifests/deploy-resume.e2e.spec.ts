import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../director.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A director that goes away in the middle of a deploy's step (the service's start requested, its
 * manager coming up): the next director carries the deploy on from that step and ends it done.
 */
describe('a deploy whose director stops mid-step', () => {
  let h: DirectorHarness;

  const settled = async (c: Client, operationId: string, ms = 150_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await c.get(`/v1/operations/${operationId}`);
      expect(r.status).toBe(200);
      if (r.body.state !== 'running') return r.body as { state: string; reason?: string };
      if (Date.now() > deadline) throw new Error(`operation ${operationId} still running`);
      await sleep(250);
    }
  };

  /** Waits until `d` has an operation of `kind` under way for the application. */
  const underWay = async (d: Director, appId: string, kind: string) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const op = [...d.core.directory.operations.values()].find(
        (o) => o.kind === kind && o.appId === appId && o.state === 'running',
      );
      if (op) return op;
      if (Date.now() > deadline) throw new Error(`no ${kind} under way`);
      await sleep(10);
    }
  };

  beforeAll(async () => {
    h = await DirectorHarness.start();
  });
  afterAll(async () => {
    await h?.cleanup();
  }, 120_000);

  it.each([
    ['the start of its service', 'start_service'],
    ['the change of its nodes', 'add_nodes'],
  ])(
    'stopped during %s: the next director finishes the deploy, every node once',
    async (_, kind) => {
      const d1 = await h.startDirector();
      const alice = await h.user(d1, `alice-${kind.replace('_', '-')}`);
      const r = await alice.post('/v1/manifests', {
        yaml: [
          `Description: resumed during ${kind}`,
          'Services:',
          '  - ServiceName: scripts',
          '    Type: generic',
          '    Start: 1',
          '    StartupInstances: { master: 1, node: 1 }',
          '',
        ].join('\n'),
      });
      expect(r.status, r.text).toBe(202);
      const appId = r.body.appId as string;
      const operationId = r.body.operationId as string;
      await underWay(d1, appId, kind);
      await d1.stop();

      const d2 = await h.startDirector();
      const alice2 = await h.signIn(
        d2,
        `alice-${kind.replace('_', '-')}`,
        `alice-${kind.replace('_', '-')}-password`,
      );
      const op = await settled(alice2, operationId);
      expect(op, JSON.stringify(op)).toMatchObject({ state: 'succeeded' });
      const app = await alice2.get(`/v1/applications/${appId}`);
      expect(app.body.services).toMatchObject([{ name: 'scripts', state: 'RUNNING' }]);
      const serviceId = (app.body.services as { serviceId: string }[])[0]!.serviceId;
      const nodes = (await alice2.get(`/v1/applications/${appId}/services/${serviceId}/nodes`)).body
        .nodes as {
        role: string;
        state: string;
      }[];
      expect(
        nodes
          .filter((n) => n.state === 'running')
          .map((n) => n.role)
          .sort(),
      ).toEqual(['master', 'node']);
      const del = await alice2.delete(`/v1/applications/${appId}`);
      expect((await settled(alice2, del.body.operationId as string)).state).toBe('succeeded');
      await d2.stop();
    },
    300_000,
  );
});
