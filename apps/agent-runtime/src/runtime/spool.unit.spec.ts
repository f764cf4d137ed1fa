import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { Spool } from './spool.js';
import { execAs } from './exec.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('Spool: files in transit between the agent and its manager', () => {
  let root: string;
  let spool: Spool;
  const data = randomBytes(5 * 100_000);
  const piece = (name: string, i: number) =>
    spool.receive({
      name,
      size: data.length,
      digest: sha(data),
      offset: i * 100_000,
      data: data.subarray(i * 100_000, (i + 1) * 100_000),
    });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cps-spool-'));
    spool = new Spool(join(root, 'spool'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('puts pieces sent together in order, whatever order they arrive in', async () => {
    await piece('b1', 0);
    const answers = await Promise.all([piece('b1', 3), piece('b1', 1), piece('b1', 4), piece('b1', 2)]);
    expect(answers.filter((a) => a.complete)).toHaveLength(1);
    expect(readFileSync(spool.path('b1')).equals(data)).toBe(true);
    expect(await spool.info('b1')).toEqual({ size: data.length, digest: sha(data) });
    expect((await spool.read('b1', 450_000, 100_000)).equals(data.subarray(450_000))).toBe(true);
  });

  it('refuses a piece whose predecessors never come, and one that overlaps what is held', async () => {
    await piece('b2', 0);
    await expect(piece('b2', 3)).rejects.toSatisfy((e) => hasErrorCode(e, 'conflict'));
    await piece('b2', 1);
    await expect(
      spool.receive({
        name: 'b2',
        size: data.length,
        digest: sha(data),
        offset: 50_000,
        data: Buffer.alloc(10),
      }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'conflict'));
    expect(existsSync(spool.path('b2'))).toBe(false);
  });

  it('takes names that are one token only', () => {
    for (const bad of ['../x', 'a/b', '.hidden', 'x..y', 'UPPER', ''])
      expect(() => spool.path(bad)).toThrow(expect.objectContaining({ code: 'validation' }));
  });

  it('gives a command a spool file as its stdout and stdin without following a link planted there', async () => {
    const out = spool.path('out.txt');
    const r = await execAs('sh', ['-c', 'echo hello; echo world >&2'], {
      cwd: root,
      env: { PATH: '/usr/bin:/bin' },
      user: undefined,
      timeoutMs: 5_000,
      stdoutFile: out,
    });
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: 'world\n' });
    expect(readFileSync(out, 'utf8')).toBe('hello\n');
    const back = await execAs('cat', [], {
      cwd: root,
      env: { PATH: '/usr/bin:/bin' },
      user: undefined,
      timeoutMs: 5_000,
      stdinFile: out,
    });
    expect(back.stdout).toBe('hello\n');
    // a link where the file should be: refused, its target untouched
    const target = join(root, 'target');
    symlinkSync(target, spool.path('linked'));
    const linked = await execAs('echo', ['x'], {
      cwd: root,
      env: { PATH: '/usr/bin:/bin' },
      user: undefined,
      timeoutMs: 5_000,
      stdoutFile: spool.path('linked'),
    });
    expect(linked.code).toBeNull();
    expect(linked.stderr).toMatch(/ELOOP|symbolic link/i);
    expect(existsSync(target)).toBe(false);
    expect(statSync(join(root, 'spool')).mode & 0o777).toBe(0o700);
  });
});
