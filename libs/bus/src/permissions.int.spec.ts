import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasErrorCode, type Identity } from '@cps/core';
import { Bus, defineCommand, subjects } from '@cps/bus';
import { ensureEventStream, ensureSnapshotBucket, JetStreamEventStore, KvSnapshotStore } from '@cps/events';
import { TestNats, ViolationLog, trySubscribe } from '@cps/testing';
import type { NatsConnection } from '@nats-io/transport-node';

const node = (svc: string, id: string, app = 'a1'): Identity => ({
  role: 'agent',
  id,
  appId: app,
  serviceId: svc,
  nodeId: id,
});
const manager = (svc: string, app = 'a1'): Identity => ({
  role: 'manager',
  id: svc,
  appId: app,
  serviceId: svc,
});
const ping = defineCommand('ping', z.object({ n: z.number() }), z.object({ n: z.number(), by: z.string() }));
const meta = { actor: 't', correlationId: 'c', causationId: 'r' };
/** The server's refusal: a permissions violation (not a timeout, nor a refusal for another reason). */
const forbidden = (e: unknown): boolean =>
  hasErrorCode(e, 'forbidden') ||
  /^Permissions Violation for (Publish|Subscription) to "/.test((e as Error).message);

const expectSubscriptionRefused = async (nc: NatsConnection, subject: string): Promise<void> => {
  expect((await trySubscribe(nc, subject))?.message).toBe(
    `Permissions Violation for Subscription to "${subject}"`,
  );
};

describe('least privilege on the bus', () => {
  let nats: TestNats;
  let director: NatsConnection;
  beforeAll(async () => {
    nats = await TestNats.start();
    director = await nats.connect({ role: 'director', id: 'd1' });
    await ensureEventStream(director);
    await ensureSnapshotBucket(director);
    // agents n1 (service s1) and n2 (service s2) serve ping on their own subjects
    for (const [svc, id] of [
      ['s1', 'n1'],
      ['s2', 'n2'],
    ] as const) {
      const bus = await nats.bus(node(svc, id));
      bus.handle(subjects.agent('a1', svc, id), ping, (d) => ({ n: d.n, by: id }));
      await bus.flush();
    }
  });
  afterAll(async () => nats.cleanup());

  it('lets a manager command its own agents', async () => {
    const m1 = await nats.bus(manager('s1'));
    await expect(m1.request(subjects.agent('a1', 's1', 'n1'), ping, { n: 1 })).resolves.toEqual({
      n: 1,
      by: 'n1',
    });
  });

  it('refuses a manager of service s1 commanding an agent of service s2', async () => {
    const m1 = await nats.bus(manager('s1'));
    await expect(m1.request(subjects.agent('a1', 's2', 'n2'), ping, { n: 1 })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'forbidden'),
    );
  });

  it("refuses an agent subscribing to another agent's commands or another identity's inbox", async () => {
    const a = await nats.connect(node('s1', 'n3'));
    for (const s of ['cps.agt.a1.s1.n1.>', '_INBOX.manager.s1.>', '_INBOX.agent.n1.>', '>'])
      await expectSubscriptionRefused(a, s);
    expect(await trySubscribe(a, 'cps.agt.a1.s1.n3.>')).toBeUndefined();
  });

  it('refuses an agent publishing on manager or agent subjects, JetStream, KV or $SRV', async () => {
    const a = await nats.connect(node('s1', 'n3'));
    const log = ViolationLog.watch(a);
    for (const s of [
      'cps.mgr.a1.s1.shutdown',
      'cps.agt.a1.s1.n1.ping',
      '$JS.API.INFO',
      '$JS.API.STREAM.NAMES',
      '$KV.cps_snapshots.svc.a1.s1',
      '$SRV.PING',
      'cps.evt.svc.a1.s1',
      'cps.node.a1.s1.n1.heartbeat',
      '_INBOX.manager.s2.x',
      '_INBOX.director.d1.x',
      '_INBOX.agent.n1.x',
    ]) {
      a.publish(s, '{}');
      await log.expect('Publish', s);
    }
    // its own heartbeat is taken: a refusal of it would come before the refusal published after it
    a.publish('cps.node.a1.s1.n3.heartbeat', '{}');
    a.publish('cps.node.a1.s1.n1.report', '{}');
    await log.expect('Publish', 'cps.node.a1.s1.n1.report');
    expect(log.messages.some((m) => m.includes('cps.node.a1.s1.n3'))).toBe(false);
  });

  it("confines a manager to its own aggregate's events and snapshot", async () => {
    const dstore = new JetStreamEventStore(director);
    await dstore.append('svc.a1.s1', [{ type: 'created', data: {} }], { expectedVersion: 0, metadata: meta });
    await dstore.append('svc.a1.s2', [{ type: 'created', data: { secret: 'of s2' } }], {
      expectedVersion: 0,
      metadata: meta,
    });
    const m1 = await nats.connect(manager('s1'));
    const own = new JetStreamEventStore(m1);
    expect((await own.readAggregate('svc.a1.s1')).version).toBe(1);
    await expect(
      own.append('svc.a1.s1', [{ type: 'started', data: {} }], { expectedVersion: 1, metadata: meta }),
    ).resolves.toMatchObject({ version: 2 });
    await expect(own.readAggregate('svc.a1.s2')).rejects.toSatisfy(forbidden);
    await expect(
      own.append('svc.a1.s2', [{ type: 'x', data: {} }], { expectedVersion: 1, metadata: meta }),
    ).rejects.toSatisfy(forbidden);
    await expect(own.readAll()).rejects.toSatisfy(forbidden);

    const snaps = new KvSnapshotStore(m1);
    await snaps.put('svc.a1.s1', { version: 2, position: 2, state: {}, handled: [] });
    await expect(snaps.get('svc.a1.s1')).resolves.toMatchObject({ version: 2 });
    await expect(snaps.get('svc.a1.s2')).rejects.toSatisfy(forbidden);
    await expect(snaps.put('svc.a1.s2', { version: 1, position: 1, state: {}, handled: [] })).rejects.toThrow(
      'Permissions Violation for Publish to "$KV.cps_snapshots.svc.a1.s2"',
    );
  });

  it('refuses a manager stream administration and payload-addressed reads', async () => {
    const m1 = await nats.connect(manager('s1'));
    for (const s of [
      '$JS.API.STREAM.DELETE.CPS_EVENTS',
      '$JS.API.STREAM.PURGE.CPS_EVENTS',
      '$JS.API.STREAM.UPDATE.CPS_EVENTS',
      '$JS.API.DIRECT.GET.CPS_EVENTS',
      '$JS.API.STREAM.MSG.GET.CPS_EVENTS',
      '$JS.API.CONSUMER.CREATE.CPS_EVENTS',
      '$JS.API.CONSUMER.CREATE.CPS_EVENTS.x.cps.evt.svc.a1.s2',
      '$JS.API.CONSUMER.DURABLE.CREATE.CPS_EVENTS.x',
    ]) {
      await expect(m1.request(s, '{}', { timeout: 1_000 })).rejects.toSatisfy(forbidden);
    }
    expect((await new JetStreamEventStore(director).readAggregate('svc.a1.s2')).version).toBe(1);
  });

  it('keeps replies private: a manager cannot read the director inbox, nor write into another manager or agent inbox', async () => {
    const m1 = await nats.connect(manager('s1'));
    const log = ViolationLog.watch(m1);
    for (const s of ['_INBOX.manager.s2.x', '_INBOX.agent.n1.x']) {
      m1.publish(s, '{}');
      await log.expect('Publish', s);
    }
    await expectSubscriptionRefused(m1, '_INBOX.director.d1.>');
    await expectSubscriptionRefused(m1, '_INBOX.>');
  });

  it('gives the agent bus no way around its manager: a request from another agent is refused', async () => {
    const other = new Bus(await nats.connect(node('s1', 'n4')));
    await expect(other.request(subjects.agent('a1', 's1', 'n1'), ping, { n: 2 })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'forbidden'),
    );
  });

  describe('across applications', () => {
    // application a2's service s9 with its agent n9, beside a1's
    beforeAll(async () => {
      const bus = await nats.bus(node('s9', 'n9', 'a2'));
      bus.handle(subjects.agent('a2', 's9', 'n9'), ping, (d) => ({ n: d.n, by: 'n9' }));
      await bus.flush();
      await new JetStreamEventStore(director).append('svc.a2.s9', [{ type: 'created', data: {} }], {
        expectedVersion: 0,
        metadata: meta,
      });
      await new KvSnapshotStore(director).put('svc.a2.s9', {
        version: 1,
        position: 1,
        state: {},
        handled: [],
      });
    });

    it("lets a2's manager command its agent (what a1's identities are refused below)", async () => {
      const m2 = await nats.bus(manager('s9', 'a2'));
      await expect(m2.request(subjects.agent('a2', 's9', 'n9'), ping, { n: 1 })).resolves.toEqual({
        n: 1,
        by: 'n9',
      });
    });

    it("refuses a manager of a1 a2's agents, events, snapshot, logs, heartbeats and Provisioner", async () => {
      const m1 = await nats.connect(manager('s1'));
      await expect(new Bus(m1).request(subjects.agent('a2', 's9', 'n9'), ping, { n: 1 })).rejects.toSatisfy(
        (e) =>
          hasErrorCode(e, 'forbidden') && /"cps\.agt\.a2\.s9\.n9\.ping"/.test(String((e as Error).cause)),
      );
      const events = new JetStreamEventStore(m1);
      await expect(events.readAggregate('svc.a2.s9')).rejects.toSatisfy(forbidden);
      await expect(
        events.append('svc.a2.s9', [{ type: 'x', data: {} }], { expectedVersion: 1, metadata: meta }),
      ).rejects.toSatisfy(forbidden);
      await expect(new KvSnapshotStore(m1).get('svc.a2.s9')).rejects.toSatisfy(forbidden);
      await expect(
        new KvSnapshotStore(m1).put('svc.a2.s9', { version: 2, position: 2, state: {}, handled: [] }),
      ).rejects.toThrow('Permissions Violation for Publish to "$KV.cps_snapshots.svc.a2.s9"');
      const log = ViolationLog.watch(m1);
      for (const s of [subjects.logs('a2', 's9', 'n9'), `${subjects.provisioner('a2', 's9')}.create`]) {
        m1.publish(s, '{}');
        await log.expect('Publish', s);
      }
      await expectSubscriptionRefused(m1, 'cps.node.a2.s9.>');
      expect((await new JetStreamEventStore(director).readAggregate('svc.a2.s9')).version).toBe(1);
    });

    it("refuses an agent of a1 a2's commands and heartbeats", async () => {
      const a = await nats.connect(node('s1', 'n5'));
      const log = ViolationLog.watch(a);
      for (const s of [
        'cps.node.a2.s9.n9.heartbeat',
        'cps.agt.a2.s9.n9.ping',
        'cps.mgr.a2.s9.get_service_info',
      ]) {
        a.publish(s, '{}');
        await log.expect('Publish', s);
      }
      await expectSubscriptionRefused(a, 'cps.agt.a2.s9.n9.>');
      await expectSubscriptionRefused(a, 'cps.mgr.a2.s9.>');
    });
  });
});
