import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ConflictError, isCpsError } from '@cps/core';
import { refuse } from './extract/refusal.js';
import {
  DiskOutput,
  NO_OUTPUT,
  resolveLimits,
  Sink,
  type ExtractLimits,
  type Limits,
  type Output,
} from './extract/sink.js';
import { readTar } from './extract/tar.js';
import { openZip, readZip } from './extract/zip.js';

/** The formats {@link extractArchive} recognises, by their first bytes (never by file name). */
export const ArchiveFormats = { tar: 'tar', tarGz: 'tar.gz', zip: 'zip' } as const;
export type ArchiveFormat = (typeof ArchiveFormats)[keyof typeof ArchiveFormats];

/** What an extraction wrote (or, for {@link inspectArchive}, would write). */
export interface ExtractResult {
  readonly format: ArchiveFormat;
  /** Regular files written (hard links included, directories and symlinks not). */
  readonly files: number;
  /** Bytes of file content written. */
  readonly bytes: number;
  /**
   * Regular files at the root or one directory down (`index.php`, `site/index.php`): what a service
   * type checks an archive's shape with (see `ServiceDefinition.checkArchive`).
   */
  readonly nearRoot: readonly string[];
}

const HEAD = 512;
const SLICE = 64 * 1024;

const isTar = (head: Buffer): boolean =>
  head.length >= HEAD && head.subarray(257, 262).toString('latin1') === 'ustar';

export const detectFormat = (head: Buffer): ArchiveFormat | undefined => {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5) && head[3] === head[2] + 1)
    return 'zip';
  return isTar(head) ? 'tar' : undefined;
};

const readHead = async (archive: string | Buffer): Promise<Buffer> => {
  if (typeof archive !== 'string') return archive.subarray(0, HEAD);
  const fh = await open(archive, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(HEAD), 0, HEAD, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
};

async function* slices(b: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += SLICE) yield b.subarray(i, i + SLICE);
}

const raw = (archive: string | Buffer): Readable =>
  typeof archive === 'string' ? createReadStream(archive) : Readable.from(slices(archive));

/** The gunzipped stream, refused unless it holds a tar (so a nested gzip or zstd never reaches tar). */
async function* gunzipped(archive: string | Buffer): AsyncGenerator<Buffer> {
  const out = pipeline(raw(archive), createGunzip(), () => undefined);
  let head: Buffer | undefined = Buffer.alloc(0);
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      if (head === undefined) {
        yield chunk;
        continue;
      }
      head = Buffer.concat([head, chunk]);
      if (head.length < HEAD) continue;
      if (!isTar(head))
        throw refuse(undefined, 'unknown_format', 'the gzip stream does not hold a tar archive');
      yield head;
      head = undefined;
    }
  } catch (e) {
    throw isCpsError(e) ? e : refuse(undefined, 'corrupt', (e as Error).message);
  } finally {
    out.destroy();
  }
  if (head !== undefined)
    throw refuse(undefined, 'unknown_format', 'the gzip stream does not hold a tar archive');
}

const read = async (
  format: ArchiveFormat,
  archive: string | Buffer,
  sink: Sink,
  l: Limits,
): Promise<void> => {
  switch (format) {
    case 'tar':
      return readTar(raw(archive) as AsyncIterable<Buffer>, sink, l);
    case 'tar.gz':
      return readTar(gunzipped(archive), sink, l);
    case 'zip':
      return readZip(() => openZip(archive), sink);
  }
};

const asInput = (archive: string | Uint8Array): string | Buffer =>
  typeof archive === 'string' ? archive : Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength);

const formatOf = async (input: string | Buffer): Promise<ArchiveFormat> => {
  const format = detectFormat(await readHead(input));
  if (format === undefined) throw refuse(undefined, 'unknown_format', 'not a tar, tar.gz or zip archive');
  return format;
};

/** Every entry of the archive through the rules of {@link Sink}, to `out`. */
const unpack = async (
  format: ArchiveFormat,
  input: string | Buffer,
  out: Output,
  limits: ExtractLimits,
): Promise<ExtractResult> => {
  const l = resolveLimits(limits);
  const sink = new Sink(out, l);
  await read(format, input, sink, l);
  const { files, bytes, nearRoot } = await sink.finish();
  return { format, files, bytes, nearRoot };
};

const ensureFree = async (dest: string): Promise<void> => {
  const st = await lstat(dest).catch(() => undefined);
  if (st === undefined) return;
  if (!st.isDirectory() || (await readdir(dest)).length > 0)
    throw new ConflictError(`the destination ${basename(dest)} already exists`);
};

/**
 * Unpacks a tar, tar.gz or zip archive (a file path or its bytes; the format is read from its first
 * bytes) into `destDir`, which must not exist or be an empty directory. Archives are hostile input:
 * everything is written into a fresh temporary directory beside `destDir`, renamed into place only
 * once every entry has been accepted, and removed on any refusal, so a refused archive leaves no
 * trace.
 *
 * Refusals throw a `validation` CpsError whose one issue has the path `$.archive.<entry name>` (or
 * `$.archive` for the archive as a whole) and a code from {@link ArchiveIssueCodes}: absolute names,
 * `..` segments, names with NUL or over 1024 bytes, duplicate paths, paths through a file or a link,
 * device files, FIFOs and other special entries, hard links to anything but a regular file written
 * earlier by the same archive, symlinks that are absolute or resolve (through the archive's other
 * links) outside the destination, more than `maxEntries` entries, a file over `maxEntryBytes`, and
 * more than `maxBytes` in total, counted while decompressing so a bomb stops early. A zip is first
 * refused from its central directory alone when it declares more than `maxEntries` entries (issue
 * path `$.archive`) or files whose declared sizes break a limit. Files are written 0644, or 0755
 * when the archive marks them executable; setuid, setgid and sticky bits are dropped; directories
 * are 0755. A destination that exists and is not empty is a `conflict`.
 */
export const extractArchive = async (
  archive: string | Uint8Array,
  destDir: string,
  limits: ExtractLimits = {},
): Promise<ExtractResult> => {
  const input = asInput(archive);
  const dest = resolve(destDir);
  const format = await formatOf(input);
  await ensureFree(dest);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = await mkdtemp(join(dirname(dest), `.${basename(dest)}.partial-`));
  const out = new DiskOutput(tmp);
  try {
    const result = await unpack(format, input, out, limits);
    await rename(tmp, dest).catch((e: unknown) => {
      throw new ConflictError(`the destination ${basename(dest)} already exists`, { cause: e });
    });
    return result;
  } catch (e) {
    await out.settle();
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
};

/**
 * Reads a whole archive through exactly the rules of {@link extractArchive} with the same `limits`,
 * writing nothing: it resolves to what extraction would write, or throws the refusal extraction
 * would throw (the same `validation` error, path and code). For checking an upload before it is
 * kept anywhere.
 */
export const inspectArchive = async (
  archive: string | Uint8Array,
  limits: ExtractLimits = {},
): Promise<ExtractResult> => {
  const input = asInput(archive);
  return unpack(await formatOf(input), input, NO_OUTPUT, limits);
};
