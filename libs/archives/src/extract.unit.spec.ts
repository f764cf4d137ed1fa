import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create, Pax } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasErrorCode } from '@cps/core';
import { extractArchive, inspectArchive, type ExtractLimits } from '@cps/archives';
import {
  END_OF_TAR,
  tarEntry,
  tarOf,
  zerosBomb,
  zipOf,
  type TarSpec,
  type ZipSpec,
} from './extract/archives.spec-helpers.js';

let work: string;
let dest: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'cps-archives-'));
  dest = join(work, 'out');
});
afterEach(async () => rm(work, { recursive: true, force: true }));

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777;

/**
 * Extraction must fail with one validation issue at `path` with `code`, and leave nothing behind;
 * inspection must fail the same way.
 */
const refused = async (
  archive: Buffer,
  path: string,
  code: string,
  limits?: ExtractLimits,
): Promise<void> => {
  const runs = {
    extractArchive: () => extractArchive(archive, dest, limits),
    inspectArchive: () => inspectArchive(archive, limits),
  };
  for (const [what, run] of Object.entries(runs)) {
    const e = await run().then(
      () => expect.fail(`${what} accepted a hostile archive`),
      (err: unknown) => err,
    );
    expect(hasErrorCode(e, 'validation'), `${what}: ${String(e)}`).toBe(true);
    if (!hasErrorCode(e, 'validation')) return;
    expect(e.issues, what).toEqual([{ path, code, message: expect.any(String) }]);
    expect(await readdir(work)).toEqual([]);
  }
};

const LONG = 'd/'.repeat(600) + 'f';

describe('extractArchive refuses hostile tar entries and leaves no trace', () => {
  const cases: [string, TarSpec[], string, string][] = [
    [
      'a parent segment',
      [
        { path: 'ok.txt', data: 'x' },
        { path: '../evil', data: 'x' },
      ],
      '../evil',
      'parent_segment',
    ],
    [
      'a parent segment deep inside',
      [{ path: 'a/b/../../../evil', data: 'x' }],
      'a/b/../../../evil',
      'parent_segment',
    ],
    ['an absolute path', [{ path: '/etc/x', data: 'x' }], '/etc/x', 'absolute_path'],
    ['a name over 1024 bytes', [{ path: LONG, data: 'x' }], LONG.slice(0, 1024) + '…', 'name_too_long'],
    [
      'an absolute symlink',
      [{ path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }],
      'passwd',
      'link_outside',
    ],
    ['a character device', [{ path: 'null', type: 'CharacterDevice' }], 'null', 'unsupported_type'],
    ['a block device', [{ path: 'sda', type: 'BlockDevice' }], 'sda', 'unsupported_type'],
    ['a FIFO', [{ path: 'pipe', type: 'FIFO' }], 'pipe', 'unsupported_type'],
    [
      'a hard link to an absolute path',
      [{ path: 'h', type: 'Link', linkpath: '/etc/passwd' }],
      'h',
      'link_outside',
    ],
    [
      'a hard link climbing out',
      [{ path: 'h', type: 'Link', linkpath: '../../etc/passwd' }],
      'h',
      'link_outside',
    ],
    [
      'a hard link to a file not in the archive',
      [{ path: 'h', type: 'Link', linkpath: 'nope' }],
      'h',
      'link_target',
    ],
    [
      'the same path twice',
      [
        { path: 'a', data: '1' },
        { path: './a', data: '2' },
      ],
      './a',
      'duplicate',
    ],
    [
      'a file under a file',
      [
        { path: 'a', data: '1' },
        { path: 'a/b', data: '2' },
      ],
      'a/b',
      'path_conflict',
    ],
  ];
  it.each(cases)('%s', async (_, entries, name, code) => {
    await refused(tarOf(entries), `$.archive.${name}`, code);
  });

  it('refuses a symlink leaving the destination, before a file is written through it', async () => {
    const archive = tarOf([
      { path: 'up', type: 'SymbolicLink', linkpath: '../..' },
      { path: 'up/etc/passwd', data: 'root::0:0::/:/bin/sh\n' },
    ]);
    await refused(archive, '$.archive.up/etc/passwd', 'path_conflict');
  });

  it('refuses writing through a symlink even when it points inside', async () => {
    const archive = tarOf([
      { path: 'sub/', type: 'Directory', mode: 0o755 },
      { path: 'd', type: 'SymbolicLink', linkpath: 'sub' },
      { path: 'd/x', data: 'x' },
    ]);
    await refused(archive, '$.archive.d/x', 'path_conflict');
  });

  it('resolves symlinks through each other: a -> . then b -> a/.. leaves the destination', async () => {
    const archive = tarOf([
      { path: 'a', type: 'SymbolicLink', linkpath: '.' },
      { path: 'b', type: 'SymbolicLink', linkpath: 'a/..' },
    ]);
    await refused(archive, '$.archive.b', 'link_outside');
  });

  it('refuses symlink loops', async () => {
    const archive = tarOf([
      { path: 'a', type: 'SymbolicLink', linkpath: 'b' },
      { path: 'b', type: 'SymbolicLink', linkpath: 'a' },
    ]);
    await refused(archive, '$.archive.a', 'link_target');
  });

  it('refuses more than maxEntries entries, naming the first one over', async () => {
    const entries = Array.from({ length: 6 }, (_, i) => ({ path: `f${i}`, data: 'x' }));
    await refused(tarOf(entries), '$.archive.f5', 'too_many_entries', { maxEntries: 5 });
  });

  it('refuses one entry over maxEntryBytes from its header, before reading it', async () => {
    await refused(tarOf([{ path: 'big', data: 'x'.repeat(11) }]), '$.archive.big', 'entry_too_large', {
      maxEntryBytes: 10,
    });
  });

  it('refuses a tar whose headers and metadata flood past the limits', async () => {
    const flood = Array.from({ length: 200 }, () => new Pax({ comment: 'x'.repeat(8000) }, true).encode());
    const archive = Buffer.concat([...flood, tarEntry({ path: 'f', data: 'x' }), END_OF_TAR]);
    await refused(archive, '$.archive', 'too_large', { maxBytes: 1024 * 1024, maxEntries: 10 });
  });

  it('refuses data that is not an archive, a gzip that holds no tar, and a corrupt tar', async () => {
    await refused(
      Buffer.from('just some text, long enough to not be anything at all'),
      '$.archive',
      'unknown_format',
    );
    await refused(gzipSync(Buffer.alloc(4096, 'a')), '$.archive', 'unknown_format');
    const broken = tarOf([{ path: 'f', data: 'x' }]);
    broken[10] = 0x41;
    await refused(broken, '$.archive', 'corrupt');
    const truncated = tarOf([{ path: 'f', data: 'x'.repeat(2000) }]).subarray(0, 1024);
    await refused(truncated, '$.archive', 'corrupt');
  });
});

describe('extractArchive stops decompression bombs early', () => {
  it('refuses 1 GiB of zeros in 1 MiB files (about 1 MiB of tar.gz) at the file that crosses maxBytes', async () => {
    const bomb = zerosBomb(1024, 1);
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    await refused(bomb, '$.archive.zeros/0032', 'too_large', { maxBytes: 32 * 1024 * 1024 });
  });

  it('refuses one file declaring 1 GiB from its header, without inflating it', async () => {
    await refused(zerosBomb(1, 1024, 'one/'), '$.archive.one/0000', 'entry_too_large', {
      maxEntryBytes: 64 * 1024 * 1024,
    });
  });

  it('stops reading at the end-of-archive marker, ignoring 1 GiB of zeros behind it', async () => {
    const zeros = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
    const archive = Buffer.concat([
      gzipSync(tarOf([{ path: 'f', data: 'x' }])),
      ...Array<Buffer>(64).fill(zeros),
    ]);
    await expect(extractArchive(archive, dest)).resolves.toEqual({
      format: 'tar.gz',
      files: 1,
      bytes: 1,
      nearRoot: ['f'],
    });
  });
});

describe('extractArchive on zip', () => {
  it('refuses a lying zip bomb at the first byte past its declared size', async () => {
    const archive = zipOf([{ name: 'bomb', data: Buffer.alloc(64 * 1024 * 1024), deflate: true, size: 100 }]);
    await refused(archive, '$.archive.bomb', 'corrupt');
  });

  it('refuses an overlapping-entries bomb when the total crosses maxBytes', async () => {
    const first = { name: 'z0', data: Buffer.alloc(16 * 1024 * 1024), deflate: true };
    const more = Array.from({ length: 7 }, (_, i) => ({ ...first, name: `z${i + 1}`, sameDataAs: 0 }));
    await refused(zipOf([first, ...more]), '$.archive.z4', 'too_large', { maxBytes: 64 * 1024 * 1024 });
  });

  it('refuses NUL in a name, parent segments (backslashes too), absolute names and FIFOs', async () => {
    await refused(zipOf([{ name: Buffer.from('a\0b'), data: 'x' }]), '$.archive.a\\x00b', 'invalid_name');
    await refused(zipOf([{ name: '..\\evil', data: 'x' }]), '$.archive.../evil', 'parent_segment');
    await refused(zipOf([{ name: '/etc/x', data: 'x' }]), '$.archive./etc/x', 'absolute_path');
    await refused(zipOf([{ name: 'p', mode: 0o010644 }]), '$.archive.p', 'unsupported_type');
  });

  it('refuses a symlink leaving the destination and a corrupted CRC', async () => {
    await refused(zipOf([{ name: 'l', mode: 0o120777, data: '../../etc' }]), '$.archive.l', 'link_outside');
    const archive = zipOf([{ name: 'f', data: 'hello' }]);
    archive[30 + 1] = 'j'.charCodeAt(0);
    await refused(archive, '$.archive.f', 'corrupt');
  });

  it('extracts nested directories, an executable and an inside symlink', async () => {
    const archive = zipOf([
      { name: 'app/', mode: 0o040755 },
      { name: 'app/lib/util.php', data: '<?php', deflate: true },
      { name: 'app/bin/run.sh', data: '#!/bin/sh\necho hi\n', mode: 0o104755 },
      { name: 'app/run', mode: 0o120777, data: 'bin/run.sh' },
    ]);
    await expect(extractArchive(archive, dest)).resolves.toEqual({
      format: 'zip',
      files: 2,
      bytes: 23,
      // the files at the root or one directory down: these are deeper
      nearRoot: [],
    });
    expect(await readFile(join(dest, 'app/lib/util.php'), 'utf8')).toBe('<?php');
    expect(await modeOf(join(dest, 'app/bin/run.sh'))).toBe(0o755);
    expect(await modeOf(join(dest, 'app/lib/util.php'))).toBe(0o644);
    expect(await readlink(join(dest, 'app/run'))).toBe('bin/run.sh');
  });
});

describe('a zip is refused from its central directory, before any entry is read', () => {
  /** A zip whose first entry is corrupt: a refusal that names another entry came from the directory. */
  const corruptFirst = (more: ZipSpec[]): Buffer => {
    const archive = zipOf([{ name: 'a', data: 'hello' }, ...more]);
    archive[30 + 1] = 'j'.charCodeAt(0);
    return archive;
  };

  it('refuses 100,000 entries at once, from the count its end record declares', async () => {
    const archive = zipOf(Array.from({ length: 100_000 }, (_, i) => ({ name: `f${i}`, data: 'x' })));
    const started = performance.now();
    await refused(archive, '$.archive', 'too_many_entries');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses a file declaring more than maxEntryBytes, and files declaring more than maxBytes', async () => {
    await refused(
      corruptFirst([{ name: 'big', data: 'x', size: 300 * 1024 * 1024 }]),
      '$.archive.big',
      'entry_too_large',
    );
    const lying = ['b', 'c', 'd'].map((name) => ({ name, data: 'x', size: 400 }));
    await refused(corruptFirst(lying), '$.archive.d', 'too_large', { maxBytes: 1000 });
  });

  it('counts only files against maxBytes: directories and links declare no content', async () => {
    const archive = zipOf([
      { name: 'd/', mode: 0o040755 },
      { name: 'd/f', data: 'x'.repeat(10) },
      { name: 'l', mode: 0o120777, data: 'd/f' },
    ]);
    await expect(inspectArchive(archive, { maxBytes: 10 })).resolves.toEqual({
      format: 'zip',
      files: 1,
      bytes: 10,
      nearRoot: ['d/f'],
    });
  });
});

describe('extractArchive on good archives', () => {
  const INDEX = '<?php echo "hi";';
  const START = '#!/bin/sh\nexec php -S 0.0.0.0:8080\n';
  const CONTENT_BYTES = INDEX.length + 'data'.length + START.length;
  const source = async (): Promise<string> => {
    const src = join(work, 'src');
    await mkdir(join(src, 'app/lib/deep'), { recursive: true });
    await writeFile(join(src, 'app/index.php'), INDEX);
    await writeFile(join(src, 'app/lib/deep/data.txt'), 'data');
    await writeFile(join(src, 'app/start.sh'), START, { mode: 0o755 });
    await symlink('lib/deep/data.txt', join(src, 'app/data'));
    return src;
  };
  const pack = async (cwd: string, gzip: boolean): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const c of create({ cwd, gzip, portable: true }, ['app'])) parts.push(c);
    await rm(cwd, { recursive: true });
    return Buffer.concat(parts);
  };

  it.each([false, true])('unpacks a tar made by the tar library (gzip: %s) with its modes', async (gzip) => {
    const archive = await pack(await source(), gzip);
    const r = await extractArchive(archive, dest);
    expect(r).toEqual({
      format: gzip ? 'tar.gz' : 'tar',
      files: 3,
      bytes: CONTENT_BYTES,
      nearRoot: ['app/index.php', 'app/start.sh'],
    });
    expect(await readFile(join(dest, 'app/lib/deep/data.txt'), 'utf8')).toBe('data');
    expect(await readFile(join(dest, 'app/data'), 'utf8')).toBe('data');
    expect(await modeOf(join(dest, 'app/start.sh'))).toBe(0o755);
    expect(await modeOf(join(dest, 'app/index.php'))).toBe(0o644);
    expect(await modeOf(join(dest, 'app/lib/deep'))).toBe(0o755);
    expect(await modeOf(dest)).toBe(0o755);
    expect(await readdir(work)).toEqual(['out']);
  });

  it('inspectArchive answers what extractArchive writes, and writes nothing', async () => {
    for (const gzip of [false, true]) {
      const archive = await pack(await source(), gzip);
      const inspected = await inspectArchive(archive);
      expect(await readdir(work)).toEqual([]);
      expect(inspected).toMatchObject({ format: gzip ? 'tar.gz' : 'tar', files: 3, bytes: CONTENT_BYTES });
      expect(await extractArchive(archive, dest)).toEqual(inspected);
      await rm(dest, { recursive: true });
    }
    const file = join(work, 'upload.zip');
    await writeFile(file, zipOf([{ name: 'a/b.txt', data: 'b', deflate: true }]));
    await expect(inspectArchive(file)).resolves.toEqual({
      format: 'zip',
      files: 1,
      bytes: 1,
      nearRoot: ['a/b.txt'],
    });
    expect(await readdir(work)).toEqual(['upload.zip']);
  });

  it('reads tar.gz and zip archives from file paths, whatever their names', async () => {
    const file = join(work, 'upload.zip');
    await writeFile(file, await pack(await source(), true));
    await expect(extractArchive(file, dest)).resolves.toMatchObject({ format: 'tar.gz', files: 3 });
    await writeFile(file, zipOf([{ name: 'a/b.txt', data: 'b', deflate: true }]));
    await expect(extractArchive(file, join(work, 'z'))).resolves.toEqual({
      format: 'zip',
      files: 1,
      bytes: 1,
      nearRoot: ['a/b.txt'],
    });
    expect(await readFile(join(work, 'z/a/b.txt'), 'utf8')).toBe('b');
  });

  it('drops setuid, setgid and sticky bits and keeps the executable bit', async () => {
    const archive = tarOf([
      { path: 'd/', type: 'Directory', mode: 0o3777 },
      { path: 'd/suid', data: 'x', mode: 0o4755 },
      { path: 'd/sgid', data: 'x', mode: 0o2711 },
      { path: 'd/plain', data: 'x', mode: 0o4666 },
    ]);
    await extractArchive(archive, dest);
    expect(await modeOf(join(dest, 'd'))).toBe(0o755);
    expect(await modeOf(join(dest, 'd/suid'))).toBe(0o755);
    expect(await modeOf(join(dest, 'd/sgid'))).toBe(0o755);
    expect(await modeOf(join(dest, 'd/plain'))).toBe(0o644);
  });

  it('keeps hard links to files written earlier and symlinks that stay inside', async () => {
    const archive = tarOf([
      { path: 'a/f', data: 'same' },
      { path: 'a/h', type: 'Link', linkpath: 'a/f' },
      { path: 'b/up', type: 'SymbolicLink', linkpath: '../a/f' },
      { path: 'b/dangling', type: 'SymbolicLink', linkpath: 'later/x' },
    ]);
    await expect(extractArchive(archive, dest)).resolves.toMatchObject({ files: 2, bytes: 4 });
    expect(await readFile(join(dest, 'a/h'), 'utf8')).toBe('same');
    expect(await readFile(join(dest, 'b/up'), 'utf8')).toBe('same');
  });

  it('refuses a destination that already has content, as a conflict', async () => {
    await mkdir(dest);
    await writeFile(join(dest, 'keep'), 'x');
    await expect(extractArchive(tarOf([{ path: 'f', data: 'x' }]), dest)).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'conflict'),
    );
    expect(await readdir(dest)).toEqual(['keep']);
  });
});
