import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { ArchiveReceiver } from './archive-receiver.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('ArchiveReceiver: an archive from the manager, in pieces', () => {
  let root: string;
  let rx: ArchiveReceiver;
  const data = randomBytes(300_000);
  const piece = (version: string, offset: number, end: number, o: { digest?: string; size?: number } = {}) =>
    rx.receive({
      version,
      size: o.size ?? data.length,
      digest: o.digest ?? sha(data),
      offset,
      data: data.subarray(offset, end),
    });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cps-rx-'));
    rx = new ArchiveReceiver(join(root, 'archives'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('assembles pieces in order, checks the digest, and shows the archive only when whole', async () => {
    expect(await piece('v1', 0, 131_072)).toEqual({ received: 131_072, complete: false });
    expect(() => rx.path('v1')).toThrow(expect.objectContaining({ code: 'not_found' }));
    expect(await piece('v1', 131_072, 262_144)).toEqual({ received: 262_144, complete: false });
    expect(await piece('v1', 262_144, data.length)).toEqual({ received: data.length, complete: true });
    const path = rx.path('v1');
    expect(readFileSync(path).equals(data)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'archives')).mode & 0o777).toBe(0o700);
    // a repeated last piece (a retried request) is answered, not appended
    expect(await piece('v1', 262_144, data.length)).toEqual({ received: data.length, complete: true });
  });

  it('refuses a piece that does not continue the held bytes; offset 0 starts over', async () => {
    await piece('v1', 0, 1000);
    await expect(piece('v1', 5000, 6000)).rejects.toSatisfy((e) => hasErrorCode(e, 'conflict'));
    await piece('v1', 0, 2000);
    expect(await piece('v1', 2000, data.length)).toMatchObject({ complete: true });
    expect(readFileSync(rx.path('v1')).equals(data)).toBe(true);
  });

  it('refuses content that does not match the announced digest and keeps nothing of it', async () => {
    await expect(piece('v2', 0, data.length, { digest: sha(Buffer.from('other')) })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.digest',
    );
    expect(() => rx.path('v2')).toThrow(expect.objectContaining({ code: 'not_found' }));
    expect(readdirSync(join(root, 'archives'))).toEqual([]);
  });

  it('refuses bytes past the announced size', async () => {
    await expect(piece('v3', 0, 2000, { size: 1000 })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.data',
    );
  });

  it('keeps only the newest complete archive', async () => {
    await piece('v1', 0, data.length);
    const small = Buffer.from('small');
    await rx.receive({ version: 'v2', size: small.length, digest: sha(small), offset: 0, data: small });
    expect(readFileSync(rx.path('v2')).toString()).toBe('small');
    expect(existsSync(join(root, 'archives', 'v1.archive'))).toBe(false);
  });

  it('takes an empty archive in one empty piece', async () => {
    const empty = Buffer.alloc(0);
    expect(await rx.receive({ version: 'v0', size: 0, digest: sha(empty), offset: 0, data: empty })).toEqual({
      received: 0,
      complete: true,
    });
    expect(readFileSync(rx.path('v0')).length).toBe(0);
  });
});
