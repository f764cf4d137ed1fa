import { describe, expect, it } from 'vitest';
import { serial, serialByKey } from './serial.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('serial', () => {
  it('runs work one at a time in the order given; a failure fails only its own run', async () => {
    const one = serial();
    const seen: string[] = [];
    const job = (name: string, ms: number, fail = false) =>
      one(async () => {
        seen.push(`${name}+`);
        await tick(ms);
        seen.push(`${name}-`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([job('a', 20), job('b', 1, true), job('c', 5)]);
    expect(seen).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
      'a',
      'b',
      'c',
    ]);
    expect(results[1]?.status).toBe('rejected');
  });

  it('by key: one key waits for itself, not for another', async () => {
    const byKey = serialByKey();
    const seen: string[] = [];
    const job = (key: string, name: string, ms: number) =>
      byKey(key, async () => {
        seen.push(`${name}+`);
        await tick(ms);
        seen.push(`${name}-`);
      });
    await Promise.all([job('k', 'a', 20), job('k', 'b', 1), job('other', 'x', 1)]);
    // x ran while a did; b waited for a
    expect(seen.indexOf('x-')).toBeLessThan(seen.indexOf('a-'));
    expect(seen.indexOf('b+')).toBeGreaterThan(seen.indexOf('a-'));
  });
});
