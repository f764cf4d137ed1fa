import { describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { freeRange } from './node-record.js';

describe('freeRange', () => {
  it('hands out the lowest range that overlaps no held range', () => {
    expect(freeRange([], 20_000, 20)).toEqual({ from: 20_000, to: 20_019 });
    expect(freeRange([{ from: 20_000, to: 20_019 }], 20_000, 20)).toEqual({ from: 20_020, to: 20_039 });
    expect(
      freeRange(
        [
          { from: 20_020, to: 20_039 },
          { from: 20_005, to: 20_005 },
        ],
        20_000,
        20,
      ),
    ).toEqual({ from: 20_040, to: 20_059 });
  });

  it('skips a range that holds a busy port', () => {
    expect(freeRange([], 20_000, 20, new Set([20_019]))).toEqual({ from: 20_020, to: 20_039 });
    expect(freeRange([{ from: 20_000, to: 20_019 }], 20_000, 20, new Set([20_020, 20_060]))).toEqual({
      from: 20_040,
      to: 20_059,
    });
  });

  it('refuses with code unavailable when no range is left below 65536', () => {
    expect(freeRange([], 65_530, 6)).toEqual({ from: 65_530, to: 65_535 });
    let error: unknown;
    try {
      freeRange([{ from: 65_530, to: 65_535 }], 65_530, 6);
    } catch (e) {
      error = e;
    }
    expect(hasErrorCode(error, 'unavailable')).toBe(true);
  });
});
