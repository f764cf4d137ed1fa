import { Parser, type ReadEntry } from 'tar';
import { isCpsError } from '@cps/core';
import { refuse } from './refusal.js';
import type { Limits, Sink } from './sink.js';

/** Room for headers, pax records and padding around each entry in the uncompressed tar stream. */
const OVERHEAD_PER_ENTRY = 8 * 1024;

const handle = async (e: ReadEntry, sink: Sink): Promise<void> => {
  const name = e.path;
  sink.count(name);
  const path = sink.path(name);
  switch (e.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      sink.reserve(name, e.size);
      await sink.file(name, path, e.mode, e);
      return;
    case 'Directory':
      await sink.directory(name, path);
      break;
    case 'SymbolicLink':
      sink.symlink(name, path, e.linkpath ?? '');
      break;
    case 'Link':
      await sink.hardLink(name, path, e.linkpath ?? '');
      break;
    default:
      throw refuse(name, 'unsupported_type', `${e.type} entries are not allowed`);
  }
  e.resume();
};

/**
 * Feeds the uncompressed tar stream `source` to tar's parser and each entry to `sink`, one at a time:
 * the parser hands out an entry only once the sink is done with the one before, and asks for more
 * input only then, so reading stops within a chunk of the first entry over the count. Stops reading
 * at the end-of-archive marker, and refuses a stream longer than the limits allow (headers included)
 * before reading the rest of it.
 */
export const readTar = async (source: AsyncIterable<Buffer>, sink: Sink, limits: Limits): Promise<void> => {
  const cap = limits.maxBytes + (limits.maxEntries + 1) * OVERHEAD_PER_ENTRY;
  const parser = new Parser({ strict: true, brotli: false, zstd: false, maxMetaEntrySize: 16 * 1024 });
  let rejectFailed: (e: unknown) => void = () => undefined;
  let hasFailed = false;
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => undefined);
  const fail = (e: unknown): void => {
    hasFailed = true;
    rejectFailed(e);
  };
  let chain = Promise.resolve();
  let current: ReadEntry | undefined;
  let eof = false;
  parser.on('entry', (e: ReadEntry) => {
    chain = chain.then(() => handle((current = e), sink));
    chain.catch(fail);
  });
  parser.on('ignoredEntry', (e: ReadEntry) =>
    fail(refuse(e.path, 'unsupported_type', `${e.type} entries are not allowed`)),
  );
  parser.on('error', (e: Error) => fail(isCpsError(e) ? e : refuse(undefined, 'corrupt', e.message)));
  parser.on('eof', () => (eof = true));
  const ended = new Promise((resolve) => parser.once('end', resolve));
  try {
    let seen = 0;
    for await (const chunk of source) {
      if (hasFailed) await failed;
      seen += chunk.length;
      if (seen > cap)
        throw refuse(undefined, 'too_large', `the tar stream is longer than ${cap} bytes uncompressed`);
      if (!parser.write(chunk)) await Promise.race([failed, new Promise((r) => parser.once('drain', r))]);
      if (eof) break;
    }
    parser.end();
    await Promise.race([failed, ended]);
    await Promise.race([failed, chain]);
    if (hasFailed) await failed;
  } catch (e) {
    current?.destroy();
    await chain.catch(() => undefined);
    throw e;
  }
};
