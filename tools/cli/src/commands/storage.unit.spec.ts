import { describe, expect, it } from 'vitest';
import { isCpsError } from '@cps/core';
import { parseQuota, parseReplicas } from './storage.js';

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (!isCpsError(e)) throw e;
    return { code: e.code, path: e.issues[0]?.path };
  }
  throw new Error('did not throw');
};

describe('cps storage flags', () => {
  it('--replicas: 1 to 9 copies', () => {
    expect(parseReplicas('2')).toBe(2);
    expect(parseReplicas(' 9 ')).toBe(9);
    for (const bad of ['0', '10', '2.5', 'two', '', '-1'])
      expect(refusal(() => parseReplicas(bad))).toEqual({ code: 'validation', path: '--replicas' });
  });

  it('--quota: bytes, or K/M/G/T in powers of 1024', () => {
    expect(parseQuota('1000')).toBe(1000);
    expect(parseQuota('500M')).toBe(500 * 1024 ** 2);
    expect(parseQuota('10G')).toBe(10 * 1024 ** 3);
    expect(parseQuota('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseQuota('1t')).toBe(1024 ** 4);
    for (const bad of ['0', '10X', '-5G', '1.5G', '', '99999999999T'])
      expect(refusal(() => parseQuota(bad))).toEqual({ code: 'validation', path: '--quota' });
  });
});
