import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { isCpsError } from '@cps/core';
import { refuse } from './refusal.js';
import type { Sink } from './sink.js';
import { MAX_NAME_BYTES } from './tree.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const UNIX = 3;

const OPTIONS = { decodeStrings: false, validateEntrySizes: false, strictFileNames: false } as const;

/** Opens a zip from a file or bytes; yauzl reads the central directory, so it needs random access. */
export const openZip = async (archive: string | Buffer): Promise<ZipFile> => {
  try {
    return typeof archive === 'string'
      ? await yauzl.openPromise(archive, OPTIONS)
      : await yauzl.fromBufferPromise(archive, OPTIONS);
  } catch (e) {
    throw refuse(undefined, 'corrupt', (e as Error).message);
  }
};

const unixMode = (e: Entry): number =>
  e.versionMadeBy >> 8 === UNIX ? (e.externalFileAttributes >>> 16) & 0xffff : 0;

/**
 * The entry's data, checked against its declared size and CRC-32 while it streams: a zip may lie
 * about sizes (a bomb declares a few bytes and inflates to gigabytes), so reading stops at the first
 * byte past the declared size.
 */
async function* checked(name: string, e: Entry, stream: Readable): AsyncGenerator<Buffer> {
  let size = 0;
  let crc = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > e.uncompressedSize)
        throw refuse(name, 'corrupt', `the entry holds more than its declared ${e.uncompressedSize} bytes`);
      crc = crc32(chunk, crc);
      yield chunk;
    }
  } catch (err) {
    throw isCpsError(err) ? err : refuse(name, 'corrupt', (err as Error).message);
  }
  if (size !== e.uncompressedSize || crc !== e.crc32)
    throw refuse(name, 'corrupt', 'the entry does not match its declared size and CRC-32');
}

/** Runs `use` on the entry's checked data and always releases the underlying stream. */
const withData = async <T>(
  zip: ZipFile,
  name: string,
  e: Entry,
  use: (data: AsyncIterable<Buffer>) => Promise<T>,
): Promise<T> => {
  let stream: Readable;
  try {
    stream = await zip.openReadStreamPromise(e);
  } catch (err) {
    throw refuse(name, 'corrupt', (err as Error).message);
  }
  try {
    return await use(checked(name, e, stream));
  } finally {
    stream.destroy();
  }
};

const readAll = async (data: AsyncIterable<Buffer>): Promise<string> => {
  const parts: Buffer[] = [];
  for await (const c of data) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
};

const nameOf = (e: Entry): string =>
  yauzl.getFileNameLowLevel(e.generalPurposeBitFlag, e.fileNameRaw, e.extraFields, false);

type Kind = 'dir' | 'file' | 'symlink' | 'other';

const kindOf = (e: Entry, name: string): Kind => {
  const type = unixMode(e) & S_IFMT;
  if (type === S_IFDIR || (type === 0 && name.endsWith('/'))) return 'dir';
  if (type === S_IFLNK) return 'symlink';
  return type === 0 || type === S_IFREG ? 'file' : 'other';
};

const handle = async (zip: ZipFile, e: Entry, sink: Sink): Promise<void> => {
  const name = nameOf(e);
  sink.count(name);
  const path = sink.path(name);
  const kind = kindOf(e, name);
  if (kind === 'dir') return sink.directory(name, path);
  if (kind === 'other')
    throw refuse(name, 'unsupported_type', 'only files, directories and symlinks are allowed');
  if (name.endsWith('/')) throw refuse(name, 'invalid_name', 'a file name ends with "/"');
  if (e.isEncrypted() || !e.canDecodeFileData())
    throw refuse(name, 'unsupported_type', 'encrypted entries and unknown compression methods are refused');
  if (kind === 'symlink') {
    if (e.uncompressedSize > MAX_NAME_BYTES) throw refuse(name, 'link_target', 'the link target is too long');
    return sink.symlink(name, path, await withData(zip, name, e, readAll));
  }
  sink.reserve(name, e.uncompressedSize);
  await withData(zip, name, e, (data) => sink.file(name, path, unixMode(e), data));
};

/** The entries of the central directory, in order; a directory that cannot be read is `corrupt`. */
async function* entriesOf(zip: ZipFile): AsyncGenerator<Entry> {
  try {
    const entries = zip.eachEntry();
    for (;;) {
      let next: IteratorResult<Entry>;
      try {
        next = await entries.next();
      } catch (e) {
        throw refuse(undefined, 'corrupt', (e as Error).message);
      }
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    zip.close();
  }
}

/**
 * Refuses from the central directory alone, before any entry is read: more entries than the limit
 * (the count the end record declares), and files whose declared sizes break a limit.
 */
const checkDirectory = async (zip: ZipFile, sink: Sink): Promise<void> => {
  try {
    sink.declareEntries(zip.entryCount);
  } catch (e) {
    zip.close();
    throw e;
  }
  for await (const e of entriesOf(zip)) {
    const name = nameOf(e);
    if (kindOf(e, name) === 'file' && !name.endsWith('/')) sink.declareFile(name, e.uncompressedSize);
  }
};

/**
 * Checks the central directory of the zip `open` opens, then hands every entry to `sink`, in
 * central-directory order (the zip is opened twice: entries are not held in memory between passes).
 */
export const readZip = async (open: () => Promise<ZipFile>, sink: Sink): Promise<void> => {
  await checkDirectory(await open(), sink);
  const zip = await open();
  for await (const e of entriesOf(zip)) await handle(zip, e, sink);
};
