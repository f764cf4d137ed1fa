import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workloadUser } from '@cps/clouds';
import { hasErrorCode } from '@cps/core';
import { tarOf, zipOf } from '../../../../libs/archives/src/extract/archives.spec-helpers.js';
import { WorkDir, type WorkUser } from './work-dir.js';

/**
 * Code unpacked into a node's work directory, on a real file system with real GNU tar: a tar is
 * unpacked by tar running as the workload user (root runs this test, as the agent runs on nodes),
 * a zip by `extractArchive`; what tar refuses leaves nothing behind, in the work directory or out.
 */
describe('WorkDir.unpack', () => {
  const root = mkdtempSync(join(tmpdir(), 'cps-workdir-'));
  const node = join(root, 'node');
  const work = join(node, 'work');
  const archives = join(node, 'archives');
  const user: WorkUser | undefined = process.getuid?.() === 0 ? workloadUser() : undefined;
  let dir: WorkDir;

  beforeAll(() => {
    mkdirSync(archives, { recursive: true, mode: 0o700 });
    dir = new WorkDir(work, node, (v) => join(archives, `${v}.archive`), user);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const archive = (version: string, bytes: Buffer) =>
    writeFileSync(join(archives, `${version}.archive`), bytes);

  it('unpacks a tar.gz as the workload user: its files are the workload’s, moved in at once', async () => {
    await dir.ensure();
    archive(
      'v1',
      gzipSync(
        tarOf([
          { path: 'site/', type: 'Directory', mode: 0o755 },
          { path: 'site/index.php', data: '<?php echo 1;' },
          { path: 'run.sh', data: '#!/bin/sh\n', mode: 0o755 },
        ]),
      ),
    );
    const { entries } = await dir.unpack('v1', 'code-v1');
    expect(entries).toEqual(['run.sh', 'site']);
    expect(readFileSync(join(work, 'code-v1', 'site', 'index.php'), 'utf8')).toBe('<?php echo 1;');
    expect(lstatSync(join(work, 'code-v1', 'run.sh')).mode & 0o111).not.toBe(0);
    if (user)
      for (const p of ['code-v1', 'code-v1/site', 'code-v1/site/index.php'])
        expect(lstatSync(join(work, p)).uid).toBe(user.uid);
    expect(readdirSync(join(node, 'staging'))).toEqual([]);
  });

  it('refuses a member that climbs out (..): a validation error, nothing written anywhere', async () => {
    archive(
      'v2',
      tarOf([
        { path: 'ok.txt', data: 'ok' },
        { path: '../../escaped.txt', data: 'out' },
      ]),
    );
    const e = await dir.unpack('v2', 'code-v2').catch((x: unknown) => x);
    expect(hasErrorCode(e, 'validation')).toBe(true);
    expect(existsSync(join(work, 'code-v2'))).toBe(false);
    for (const p of [join(node, 'escaped.txt'), join(root, 'escaped.txt'), join(work, 'escaped.txt')])
      expect(existsSync(p)).toBe(false);
    expect(readdirSync(join(node, 'staging'))).toEqual([]);
  });

  it('unpacks a zip through extractArchive, given to the workload user', async () => {
    archive('v3', zipOf([{ name: 'index.html', data: '<p>zip</p>' }]));
    const { entries } = await dir.unpack('v3', 'code-v3');
    expect(entries).toEqual(['index.html']);
    if (user) expect(lstatSync(join(work, 'code-v3', 'index.html')).uid).toBe(user.uid);
  });
});
