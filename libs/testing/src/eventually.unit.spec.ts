import { describe, expect, it } from 'vitest';
import { eventually, EventuallyTimeoutError } from './eventually.js';

describe('eventually', () => {
  it('answers the first value accepted', async () => {
    let n = 0;
    await expect(
      eventually(
        async () => ++n,
        (v) => v >= 3,
      ),
    ).resolves.toBe(3);
  });

  it('throws after its time with the last value read', async () => {
    let n = 0;
    const e = await eventually(
      async () => ({ reads: ++n, state: 'running' }),
      (v) => v.state === 'done',
      100,
    ).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(EventuallyTimeoutError);
    expect((e as EventuallyTimeoutError).code).toBe('eventually_timeout');
    expect((e as EventuallyTimeoutError).last).toEqual({ reads: n, state: 'running' });
    expect((e as Error).message).toMatch(
      /^not accepted within 100 ms; last value read: \{ reads: \d+, state: 'running' \}$/,
    );
  });

  it('ends with the error a read throws', async () => {
    await expect(
      eventually(
        () => Promise.reject(new Error('unreachable')),
        () => true,
      ),
    ).rejects.toThrow('unreachable');
  });
});
