// Small statistics and timing helpers shared by the benchmarks.
import { performance } from 'node:perf_hooks';

export const now = () => performance.now();

/** Nearest-rank percentile (p in 0..100) of an array of numbers. */
export const percentile = (values, p) => {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
};

export const median = (values) => {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return NaN;
  const sorted = [...finite].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Runs `fn(i)` `count` times one after the other; returns each call's duration in ms. */
export const timeSequential = async (count, fn, offset = 0) => {
  const out = new Array(count);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await fn(offset + i);
    out[i] = performance.now() - t0;
  }
  return out;
};

/**
 * Runs `total` operations with `slots` of them in flight: slot `s` performs its operations one
 * after the other (`fn(slot, n)` with `n` counting that slot's operations). Returns the elapsed
 * time in ms.
 */
export const timeInFlight = async (total, slots, fn) => {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: slots }, async (_, slot) => {
      for (let n = 0; ; n++) {
        if (next >= total) return;
        next++;
        await fn(slot, n);
      }
    }),
  );
  return performance.now() - t0;
};

/**
 * Splits `total` operations into `blocks` blocks and alternates the two contenders block by block
 * (which one starts alternates with `runIndex`), so that background noise hits both alike.
 * `measure(which, blockIndex, count)` returns whatever the caller wants to aggregate.
 */
export const alternate = async (total, blocks, runIndex, measure) => {
  const per = Math.ceil(total / blocks);
  const results = { cps: [], raw: [] };
  for (let b = 0; b < blocks; b++) {
    const count = Math.min(per, total - b * per);
    if (count <= 0) break;
    const order = (b + runIndex) % 2 === 0 ? ['cps', 'raw'] : ['raw', 'cps'];
    for (const which of order) results[which].push(await measure(which, b, count));
  }
  return results;
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects if `promise` does not settle within `ms` (the timer does not keep the process alive). */
export const withTimeout = (promise, ms, what) => {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
};
