import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasErrorCode, type Command, type Decider } from '@cps/core';
import { CommandHandler, type EventStore, type RecordedEvent } from '@cps/events';
import { eventually } from './eventually.js';

export interface StoreUnderTest {
  readonly store: EventStore;
  /** A second store instance on the same data (another writer process). */
  readonly other: EventStore;
  cleanup(): Promise<void>;
}

const meta = (eventIds?: string[]) => ({
  actor: 'test',
  correlationId: 'c',
  causationId: randomUUID(),
  ...(eventIds ? { eventIds } : {}),
});

let n = 0;
const freshAggregate = (): string => `acct.a${Date.now().toString(36)}${(n++).toString(36)}`;

type CounterCmd = Command<'add', { amount: number }>;
type CounterEvt = { type: 'added'; data: { amount: number } };
const counter: Decider<CounterCmd, CounterEvt, { total: number }> = {
  initialState: () => ({ total: 0 }),
  decide: (c) => ({ type: 'added', data: { amount: c.data.amount } }),
  evolve: (s, e) => ({ total: s.total + e.data.amount }),
};

/** The behaviour every EventStore implementation must show. Run it against each one. */
export const eventStoreContract = (name: string, start: () => Promise<StoreUnderTest>): void => {
  describe(`EventStore contract: ${name}`, () => {
    let t: StoreUnderTest;
    beforeAll(async () => {
      t = await start();
    });
    afterAll(async () => t?.cleanup());

    it('appends and reads one aggregate in order, with versions and positions', async () => {
      const a = freshAggregate();
      const r1 = await t.store.append(a, [{ type: 'added', data: { amount: 1 } }], {
        expectedVersion: 0,
        metadata: meta(),
      });
      const r2 = await t.store.append(
        a,
        [
          { type: 'added', data: { amount: 2 } },
          { type: 'added', data: { amount: 3 } },
        ],
        { expectedVersion: 1, metadata: meta() },
      );
      expect(r1.version).toBe(1);
      expect(r2.version).toBe(3);
      expect(r2.position).toBeGreaterThan(r1.position);
      const read = await eventually(
        () => t.other.readAggregate(a),
        (r) => r.version >= 3,
      );
      expect(read.version).toBe(3);
      expect(read.events.map((e) => [e.aggregateVersion, (e.data as { amount: number }).amount])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      expect(read.events[1]?.position).toEqual({ commit: r2.position, index: 0 });
      expect(read.events[2]?.position).toEqual({ commit: r2.position, index: 1 });
      const later = await eventually(
        () => t.other.readAggregate(a, { fromVersion: 1, fromPosition: r1.position }),
        (r) => r.events.length >= 2,
      );
      expect(later.events.map((e) => e.aggregateVersion)).toEqual([2, 3]);
    });

    it('reads an aggregate that does not exist as empty', async () => {
      const read = await t.store.readAggregate(freshAggregate());
      expect(read).toMatchObject({ version: 0, events: [] });
    });

    it('refuses a stale expected version with ConcurrencyError', async () => {
      const a = freshAggregate();
      await t.store.append(a, [{ type: 'added', data: { amount: 1 } }], {
        expectedVersion: 0,
        metadata: meta(),
      });
      await t.store.append(a, [{ type: 'added', data: { amount: 1 } }], {
        expectedVersion: 1,
        metadata: meta(),
      });
      await expect(
        t.other.append(a, [{ type: 'added', data: { amount: 9 } }], { expectedVersion: 1, metadata: meta() }),
      ).rejects.toSatisfy((e) => hasErrorCode(e, 'concurrency'));
      await expect(
        t.other.append(a, [{ type: 'added', data: { amount: 9 } }], { expectedVersion: 0, metadata: meta() }),
      ).rejects.toSatisfy((e) => hasErrorCode(e, 'concurrency'));
      expect(
        (
          await eventually(
            () => t.store.readAggregate(a),
            (r) => r.version >= 2,
          )
        ).version,
      ).toBe(2);
    });

    it('lets exactly one of two racing writers win, every time', async () => {
      for (let i = 0; i < 25; i++) {
        const a = freshAggregate();
        await t.store.append(a, [{ type: 'added', data: { amount: 1 } }], {
          expectedVersion: 0,
          metadata: meta(),
        });
        await eventually(
          () => t.other.readAggregate(a),
          (r) => r.version >= 1,
        );
        const results = await Promise.allSettled([
          t.store.append(a, [{ type: 'added', data: { amount: 10 } }], {
            expectedVersion: 1,
            metadata: meta(),
          }),
          t.other.append(a, [{ type: 'added', data: { amount: 20 } }], {
            expectedVersion: 1,
            metadata: meta(),
          }),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const lost = results.find((r) => r.status === 'rejected');
        expect(hasErrorCode(lost?.reason, 'concurrency')).toBe(true);
        expect(
          (
            await eventually(
              () => t.store.readAggregate(a),
              (r) => r.events.length >= 2,
            )
          ).events,
        ).toHaveLength(2);
      }
    });

    it('applies a retried append (same event ids) once', async () => {
      const a = freshAggregate();
      const ids = [randomUUID()];
      const first = await t.store.append(a, [{ type: 'added', data: { amount: 5 } }], {
        expectedVersion: 0,
        metadata: meta(ids),
      });
      const retry = await t.other.append(a, [{ type: 'added', data: { amount: 5 } }], {
        expectedVersion: 0,
        metadata: meta(ids),
      });
      expect(retry).toEqual(first);
      expect(
        (
          await eventually(
            () => t.store.readAggregate(a),
            (r) => r.events.length >= 1,
          )
        ).events,
      ).toHaveLength(1);
    });

    it('rejects bad aggregate keys and empty appends with validation errors', async () => {
      for (const bad of ['', 'nodot', 'A.b', 'a.b c', 'a.>', 'a.*', '../x']) {
        await expect(
          t.store.append(bad, [{ type: 'added', data: {} }], { expectedVersion: 0, metadata: meta() }),
        ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation'));
      }
      await expect(
        t.store.append(freshAggregate(), [], { expectedVersion: 0, metadata: meta() }),
      ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation'));
    });

    it('reads everything from a position and follows live appends', async () => {
      const start = await t.store.head();
      const a = freshAggregate();
      const b = freshAggregate();
      await t.store.append(a, [{ type: 'added', data: { amount: 1 } }], {
        expectedVersion: 0,
        metadata: meta(),
      });
      await t.store.append(b, [{ type: 'added', data: { amount: 2 } }], {
        expectedVersion: 0,
        metadata: meta(),
      });
      const all = await t.other.readAll({ after: start });
      expect(all.map((e) => e.aggregate)).toEqual([a, b]);
      expect((await t.other.readAll({ after: start, limit: 1 })).map((e) => e.aggregate)).toEqual([a]);

      const seen: RecordedEvent[] = [];
      let resolveLive!: () => void;
      const live = new Promise<void>((r) => (resolveLive = r));
      const sub = t.other.subscribeAll(start, (e) => {
        seen.push(e);
        if (seen.length === 3) resolveLive();
      });
      await t.store.append(a, [{ type: 'added', data: { amount: 3 } }], {
        expectedVersion: 1,
        metadata: meta(),
      });
      await live;
      await sub.stop();
      expect(seen.map((e) => `${e.aggregate}:${e.aggregateVersion}`)).toEqual([`${a}:1`, `${b}:1`, `${a}:2`]);
    });

    it('converges two competing command handlers: every command applied exactly once', async () => {
      const a = freshAggregate();
      const h1 = new CommandHandler(t.store, counter, { aggregateOf: () => a, maxAttempts: 50 });
      const h2 = new CommandHandler(t.other, counter, { aggregateOf: () => a, maxAttempts: 50 });
      const cmd = (amount: number): CounterCmd => ({
        type: 'add',
        data: { amount },
        metadata: { now: new Date(), requestId: randomUUID(), actor: 't' },
      });
      const cmds = Array.from({ length: 20 }, (_, i) => cmd(i + 1));
      await Promise.all(cmds.map((c, i) => (i % 2 ? h1 : h2).handle(c)));
      // cmds[2] was handled through h2: h1 must find it in the stored history, not in its memory
      const repeat = await h1.handle(cmds[2] as CounterCmd);
      expect(repeat.repeated).toBe(true);
      const loaded = await eventually(
        () => (h1.evict(), h1.load(a)),
        (l) => l.version >= 20,
      );
      expect(loaded.state.total).toBe(210);
      expect(loaded.version).toBe(20);
    });
  });
};
