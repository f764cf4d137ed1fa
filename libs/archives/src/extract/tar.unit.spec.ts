import { describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { tarEntry } from './archives.spec-helpers.js';
import { NO_OUTPUT, resolveLimits, Sink } from './sink.js';
import { readTar } from './tar.js';

describe('readTar', () => {
  it('stops reading at the first entry over the count: a tar cannot say its count up front', async () => {
    let pulled = 0;
    // 100,000 empty files, made only as they are read
    async function* source(): AsyncGenerator<Buffer> {
      for (; pulled < 100_000; pulled++) yield tarEntry({ path: `f${pulled}` });
    }
    const limits = resolveLimits({ maxEntries: 1000 });
    const e = await readTar(source(), new Sink(NO_OUTPUT, limits), limits).catch((err: unknown) => err);
    expect(hasErrorCode(e, 'validation') && e.issues).toEqual([
      { path: '$.archive.f1000', code: 'too_many_entries', message: expect.any(String) },
    ]);
    expect(pulled).toBeLessThanOrEqual(1002);
  });
});
