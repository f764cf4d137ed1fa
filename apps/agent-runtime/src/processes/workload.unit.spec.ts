import { describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { backoffDelayMs, resolveSpec, wantsRestart, type WorkloadSpec } from './workload.js';

const spec: WorkloadSpec = { name: 'web', command: 'nginx', args: [], cwd: '.', env: {}, restart: 'always' };

describe('workload policy', () => {
  it('doubles the back-off per consecutive crash up to the cap', () => {
    const b = { initialMs: 250, maxMs: 10_000, resetAfterMs: 30_000 };
    expect([0, 1, 2, 3, 4, 5, 6, 100].map((n) => backoffDelayMs(n, b))).toEqual([
      250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
  });

  it('restarts per policy', () => {
    const ok = { code: 0, signal: null };
    const crash = { code: 1, signal: null };
    const killed = { code: null, signal: 'SIGKILL' as const };
    const unspawnable = { code: null, signal: null, error: 'spawn x ENOENT' };
    expect([ok, crash, killed, unspawnable].map((e) => wantsRestart('always', e))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect([ok, crash, killed, unspawnable].map((e) => wantsRestart('on-failure', e))).toEqual([
      false,
      true,
      true,
      true,
    ]);
    expect([ok, crash].map((e) => wantsRestart('never', e))).toEqual([false, false]);
  });

  it('fills in the defaults', () => {
    expect(resolveSpec(spec)).toMatchObject({
      backoff: { initialMs: 250, maxMs: 10_000, resetAfterMs: 30_000 },
      logLimitBytes: 1024 * 1024,
    });
  });

  it('rejects a name that is not one token, root users and tiny logs', () => {
    for (const bad of [
      { ...spec, name: '../etc' },
      { ...spec, name: 'two words' },
      { ...spec, name: '' },
      { ...spec, user: { uid: 0, gid: 0 } },
      { ...spec, logLimitBytes: 10 },
      { ...spec, backoff: { initialMs: -1 } },
    ]) {
      let error: unknown;
      try {
        resolveSpec(bad);
      } catch (e) {
        error = e;
      }
      expect(hasErrorCode(error, 'validation'), JSON.stringify(bad)).toBe(true);
    }
  });
});
