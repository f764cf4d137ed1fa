import { createHash } from 'node:crypto';
import { Objm, StorageType, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  ConflictError,
  CpsError,
  ID_PATTERN,
  isCpsError,
  NotFoundError,
  ValidationError,
  type ErrorCode,
} from '@cps/core';
import { toCpsError } from '@cps/bus';

/** The JetStream object store bucket holding uploaded code archives. */
export const ARCHIVE_BUCKET = 'cps_archives';

/** Bytes per stored chunk (one JetStream message each); never above the server's max_payload. */
export const ARCHIVE_CHUNK_BYTES = 128 * 1024;

/** A stored archive. */
export interface ArchiveInfo {
  /** `<appId>.<serviceId>.<version>`. */
  readonly name: string;
  readonly size: number;
  /** SHA-256 of the content, lowercase hex. */
  readonly digest: string;
  /** How many messages hold the content. */
  readonly chunks: number;
}

/** An archive being read: its stored info and its content, verified against `info` as it streams. */
export interface ArchiveReader {
  readonly info: ArchiveInfo;
  /**
   * The content in chunks. Iteration throws an `internal` CpsError at the end if the content does
   * not match the stored size and digest, so a consumer must not use the data before iteration
   * completes (extract to a temporary place, as {@link extractArchive} does).
   */
  readonly chunks: AsyncIterable<Uint8Array>;
}

const invalidName = (name: string): ValidationError =>
  new ValidationError(`invalid archive name ${JSON.stringify(name.slice(0, 200))}`, [
    { path: '$.name', code: 'invalid_name', message: 'must be <appId>.<serviceId>.<version>, each an id' },
  ]);

/** Checks an archive name, `<appId>.<serviceId>.<version>`, each token an id (`[a-z0-9][a-z0-9_-]*`). */
export const parseArchiveName = (name: string): { appId: string; serviceId: string; version: string } => {
  const [appId, serviceId, version, ...rest] = name.split('.');
  if (appId === undefined || serviceId === undefined || version === undefined || rest.length > 0)
    throw invalidName(name);
  if (![appId, serviceId, version].every((t) => ID_PATTERN.test(t))) throw invalidName(name);
  return { appId, serviceId, version };
};

export const archiveName = (appId: string, serviceId: string, version: string): string => {
  const name = `${appId}.${serviceId}.${version}`;
  parseArchiveName(name);
  return name;
};

/** Creates the archive bucket if it is missing (administrative: directors and bootstrap). */
export const ensureArchiveBucket = async (
  nc: NatsConnection,
  o: { replicas?: number; maxBytes?: number } = {},
): Promise<void> => {
  await new Objm(nc).create(ARCHIVE_BUCKET, {
    replicas: o.replicas ?? 1,
    storage: StorageType.File,
    ...(o.maxBytes === undefined ? {} : { max_bytes: o.maxBytes }),
  });
};

const DIGEST_PREFIX = 'SHA-256=';

const hexDigest = (stored: string): string =>
  stored.startsWith(DIGEST_PREFIX)
    ? Buffer.from(stored.slice(DIGEST_PREFIX.length), 'base64url').toString('hex')
    : '';

const toInfo = (i: ObjectInfo): ArchiveInfo => ({
  name: i.name,
  size: i.size,
  digest: hexDigest(i.digest),
  chunks: i.chunks,
});

const fail = (code: ErrorCode, message: string, cause?: unknown): CpsError =>
  new CpsError(code, message, [], cause === undefined ? undefined : { cause });

async function* iterate(data: Uint8Array | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void> {
  if (data instanceof Uint8Array) {
    for (let i = 0; i < data.length; i += ARCHIVE_CHUNK_BYTES)
      yield data.subarray(i, i + ARCHIVE_CHUNK_BYTES);
  } else {
    yield* data;
  }
}

/** Reads `source` into the object store's stream, hashing it and refusing it past `maxBytes`. */
const limited = (source: AsyncIterator<Uint8Array, void>, maxBytes: number, onTooLarge: () => void) => {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(c) {
      const { done, value } = await source.next();
      if (done === true) return c.close();
      size += value.length;
      if (size > maxBytes) {
        onTooLarge();
        await source.return?.();
        return c.error(new Error(`archive larger than ${maxBytes} bytes`));
      }
      hash.update(value);
      c.enqueue(value);
    },
    async cancel() {
      await source.return?.();
    },
  });
  return { stream, digest: () => hash.digest('hex') };
};

/**
 * Code archives in the JetStream object store bucket {@link ARCHIVE_BUCKET}, named
 * `<appId>.<serviceId>.<version>`. Content is split in {@link ARCHIVE_CHUNK_BYTES} messages and
 * checked against its SHA-256 on the way in and on the way out. A name is written once: `put` refuses
 * an existing name (`conflict`), so a version's content never changes under its readers.
 */
export class ArchiveStore {
  private store: Promise<ObjectStore> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: { readonly idleTimeoutMs?: number } = {},
  ) {}

  /**
   * Stores `data` under `name`. Refuses more than `maxBytes` (`payload_too_large`, nothing kept) and
   * an existing name (`conflict`).
   */
  async put(
    name: string,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    o: { readonly maxBytes: number },
  ): Promise<ArchiveInfo> {
    parseArchiveName(name);
    const os = await this.bucket();
    const old = await os.info(name).catch((e: unknown) => {
      throw toCpsError(e, ARCHIVE_BUCKET);
    });
    if (old !== null && !old.deleted) throw new ConflictError(`archive ${name} already exists`);
    let tooLarge = false;
    const { stream, digest } = limited(iterate(data), o.maxBytes, () => (tooLarge = true));
    let info: ObjectInfo;
    try {
      info = await os.put({ name, options: { max_chunk_size: ARCHIVE_CHUNK_BYTES } }, stream, {
        previousRevision: old?.revision ?? 0,
      });
    } catch (e) {
      if (tooLarge)
        throw new CpsError('payload_too_large', `archive ${name} is larger than ${o.maxBytes} bytes`, [
          { path: '$.archive', code: 'too_large', message: `larger than ${o.maxBytes} bytes` },
        ]);
      if (/wrong last sequence/i.test((e as Error).message))
        throw new ConflictError(`archive ${name} already exists`, { cause: e });
      throw toCpsError(e, ARCHIVE_BUCKET);
    }
    const stored = toInfo(info);
    if (stored.digest !== digest())
      throw fail('internal', `archive ${name}: stored digest differs from sent`);
    return stored;
  }

  /** The stored info of `name`, or undefined. */
  async info(name: string): Promise<ArchiveInfo | undefined> {
    parseArchiveName(name);
    const i = await (await this.bucket()).info(name).catch((e: unknown) => {
      throw toCpsError(e, ARCHIVE_BUCKET);
    });
    return i === null || i.deleted ? undefined : toInfo(i);
  }

  /** Opens `name` for reading (`not_found` if it does not exist). */
  async get(name: string): Promise<ArchiveReader> {
    parseArchiveName(name);
    const r = await (await this.bucket()).get(name).catch((e: unknown) => {
      throw toCpsError(e, ARCHIVE_BUCKET);
    });
    if (r === null) throw new NotFoundError(`archive ${name} not found`);
    const info = toInfo(r.info);
    return { info, chunks: this.verified(info, r.data) };
  }

  /** Deletes `name`; false if there was nothing to delete. */
  async delete(name: string): Promise<boolean> {
    parseArchiveName(name);
    const os = await this.bucket();
    try {
      const i = await os.info(name);
      if (i === null || i.deleted) return false;
      return (await os.delete(name)).success;
    } catch (e) {
      throw toCpsError(e, ARCHIVE_BUCKET);
    }
  }

  private async *verified(info: ArchiveInfo, data: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
    const reader = data.getReader();
    const hash = createHash('sha256');
    let size = 0;
    try {
      for (;;) {
        const { done, value } = await this.nextChunk(info, reader);
        if (done) break;
        size += value.length;
        hash.update(value);
        yield value;
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    if (size !== info.size || hash.digest('hex') !== info.digest)
      throw fail('internal', `archive ${info.name} is corrupt: size or digest differs from the stored one`);
  }

  private async nextChunk(
    info: ArchiveInfo,
    reader: ReadableStreamDefaultReader<Uint8Array>,
  ): ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']> {
    const ms = this.o.idleTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(fail('timeout', `archive ${info.name}: no data for ${ms} ms (chunks missing?)`)),
            ms,
          );
        }),
      ]);
    } catch (e) {
      if (isCpsError(e)) throw e;
      throw fail('internal', `archive ${info.name} is corrupt: ${(e as Error).message}`, e);
    } finally {
      clearTimeout(timer);
    }
  }

  private bucket(): Promise<ObjectStore> {
    this.store ??= new Objm(this.nc).open(ARCHIVE_BUCKET).catch((e: unknown) => {
      this.store = undefined;
      throw toCpsError(e, ARCHIVE_BUCKET);
    });
    return this.store;
  }
}
