import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CpsError } from '@cps/core';
import { isAlive } from './proc.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const chains = new Map<string, Promise<unknown>>();

const holder = (file: string): number | undefined => {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
};

const acquire = async (file: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = holder(file);
    if (pid !== undefined && pid !== process.pid && !isAlive(pid)) {
      rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new CpsError('timeout', `${file} is held by process ${String(pid)}`);
    await sleep(25);
  }
};

/**
 * Runs `fn` alone for `dir`: one at a time within this process (a promise chain), and across
 * processes through `<dir>/.lock` (a lock left by a dead process is taken over).
 */
export const withDirLock = async <T>(dir: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> => {
  const key = resolve(dir);
  const run = (chains.get(key) ?? Promise.resolve()).then(async () => {
    const file = join(key, '.lock');
    await acquire(file, timeoutMs);
    try {
      return await fn();
    } finally {
      rmSync(file, { force: true });
    }
  });
  const settled = run.catch(() => undefined);
  chains.set(key, settled);
  void settled.then(() => {
    if (chains.get(key) === settled) chains.delete(key);
  });
  return run;
};
