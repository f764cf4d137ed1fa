import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpsError } from '@cps/core';

/**
 * Keeps an uploaded archive in a file of a fresh private directory, runs `use` on its path and
 * removes it, whatever happens: a zip is read from its end, so an upload is checked whole before it
 * is kept anywhere. More than `maxBytes` is refused as it arrives (`payload_too_large`, issue
 * `$.archive` `too_large`, as the archive store answers).
 */
export const withUploadedFile = async <T>(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
  use: (file: string) => Promise<T>,
): Promise<T> => {
  const dir = await mkdtemp(join(tmpdir(), 'cps-upload-'));
  try {
    const file = join(dir, 'archive');
    const fh = await open(file, 'wx', 0o600);
    try {
      let size = 0;
      for await (const chunk of body) {
        size += chunk.length;
        if (size > maxBytes)
          throw new CpsError('payload_too_large', `the archive is larger than ${maxBytes} bytes`, [
            { path: '$.archive', code: 'too_large', message: `larger than ${maxBytes} bytes` },
          ]);
        await fh.write(chunk);
      }
    } finally {
      await fh.close();
    }
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
