import { describe, expect, it } from 'vitest';
import { RestartBackoff } from './backoff.js';

describe('the restart back-off of supervised processes', () => {
  it('doubles while runs are short, up to the maximum', () => {
    const b = new RestartBackoff();
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => b.next(1_000))).toEqual([
      250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000,
    ]);
  });

  it('starts over after a run that lasted long enough, before it waits', () => {
    const b = new RestartBackoff();
    for (let i = 0; i < 10; i++) b.next(500);
    // a director that ran 11.5 minutes after a series of crashes is restarted at once
    expect(b.next(11.5 * 60_000)).toBe(250);
    expect(b.next(500)).toBe(500);
    expect(b.next(60_000)).toBe(250);
    expect(b.next(59_999)).toBe(500);
  });

  it('takes other bounds', () => {
    const b = new RestartBackoff({ initialMs: 100, maxMs: 300, stableMs: 5_000 });
    expect([b.next(0), b.next(0), b.next(0), b.next(5_000)]).toEqual([100, 200, 300, 100]);
  });
});
