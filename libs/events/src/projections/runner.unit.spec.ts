import { describe, expect, it } from 'vitest';
import { InMemoryCheckpoints, InMemoryEventStore, ProjectionRunner, type RecordedEvent } from '@cps/events';

const meta = { actor: 't', correlationId: 'c', causationId: 'r' };

describe('projection runner', () => {
  it('catches up, follows live events, and resumes after its checkpoint without repeats', async () => {
    const store = new InMemoryEventStore();
    await store.append(
      'acct.a',
      [
        { type: 'x', data: { n: 1 } },
        { type: 'x', data: { n: 2 } },
      ],
      { expectedVersion: 0, metadata: meta },
    );
    await store.append('acct.b', [{ type: 'x', data: { n: 3 } }], { expectedVersion: 0, metadata: meta });
    const seen: number[] = [];
    const projection = {
      name: 'p',
      handle: (e: RecordedEvent) => void seen.push((e.data as { n: number }).n),
    };
    const checkpoints = new InMemoryCheckpoints();

    const first = new ProjectionRunner(store, projection, checkpoints);
    await first.start();
    expect(seen).toEqual([1, 2, 3]);
    const r = await store.append(
      'acct.a',
      [
        { type: 'x', data: { n: 4 } },
        { type: 'x', data: { n: 5 } },
      ],
      { expectedVersion: 2, metadata: meta },
    );
    await first.waitFor(r.position);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    await first.stop();

    // a checkpoint in the middle of a commit (as after a crash between two events of one commit)
    checkpoints.save('p', { commit: r.position, index: 0 });
    seen.length = 0;
    const second = new ProjectionRunner(store, projection, checkpoints);
    await second.start();
    expect(seen).toEqual([5]);
    await store.append('acct.c', [{ type: 'x', data: { n: 6 } }], { expectedVersion: 0, metadata: meta });
    await second.waitFor(await store.head());
    expect(seen).toEqual([5, 6]);
    await second.stop();
  });
});
