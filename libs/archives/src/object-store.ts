import { createHash } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
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
import { subjects, toCpsError } from '@cps/bus';

/** Bytes per stored chunk (one JetStream message each); never above the server's max_payload. */
export const ARCHIVE_CHUNK_BYTES = 128 * 1024;

/** A stored archive. */
export interface ArchiveInfo {
  /** The archive's version within its service (an id: `[a-z0-9][a-z0-9_-]*`). */
  readonly version: string;
  readonly size: number;
  /** SHA-256 of the content, lowercase hex. */
  readonly digest: string;
  /** How many messages hold the content. */
  readonly chunks: number;
  /** What the writer said of it (`put`'s `description`). */
  readonly description?: string;
  /** When it was stored (ISO 8601). */
  readonly stored: string;
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

/** Checks an archive version: one id token (`[a-z0-9][a-z0-9_-]*`, at most 64 characters). */
export const checkArchiveVersion = (version: string): string => {
  if (version.length > 64 || !ID_PATTERN.test(version))
    throw new ValidationError(`invalid archive version ${JSON.stringify(version.slice(0, 200))}`, [
      { path: '$.version', code: 'invalid_version', message: 'an id: [a-z0-9][a-z0-9_-]*, at most 64' },
    ]);
  return version;
};

/**
 * Creates the archive bucket of service `serviceId` if it is missing (administrative: directors).
 * Each service has its own bucket so that its manager's read permission covers its archives only.
 */
export const ensureArchiveBucket = (
  nc: NatsConnection,
  serviceId: string,
  o: { replicas?: number; maxBytes?: number } = {},
): Promise<void> => ensureBucket(nc, subjects.archiveBucket(serviceId), o);

/**
 * Creates the data bucket of service `serviceId` if it is missing (administrative: directors): where
 * its manager keeps objects of its own (a database's backups), read and written by it alone.
 */
export const ensureDataBucket = (
  nc: NatsConnection,
  serviceId: string,
  o: { replicas?: number; maxBytes?: number } = {},
): Promise<void> => ensureBucket(nc, subjects.dataBucket(serviceId), o);

const ensureBucket = async (
  nc: NatsConnection,
  bucket: string,
  o: { replicas?: number; maxBytes?: number },
): Promise<void> => {
  const jsm = await jetstreamManager(nc);
  // present already: left as it is (no update of its configuration on every start)
  if (
    await jsm.streams.info(`OBJ_${bucket}`).then(
      () => true,
      () => false,
    )
  )
    return;
  await new Objm(nc).create(bucket, {
    replicas: o.replicas ?? 1,
    storage: StorageType.File,
    ...(o.maxBytes === undefined ? {} : { max_bytes: o.maxBytes }),
  });
};

/** Deletes the archive bucket of `serviceId` with everything in it (when the service is deleted). */
export const deleteArchiveBucket = (nc: NatsConnection, serviceId: string): Promise<boolean> =>
  deleteBucket(nc, subjects.archiveBucket(serviceId));

/** Deletes the data bucket of `serviceId` with everything in it (when the service is deleted). */
export const deleteDataBucket = (nc: NatsConnection, serviceId: string): Promise<boolean> =>
  deleteBucket(nc, subjects.dataBucket(serviceId));

const deleteBucket = async (nc: NatsConnection, bucket: string): Promise<boolean> => {
  const stream = `OBJ_${bucket}`;
  try {
    return await (await jetstreamManager(nc)).streams.delete(stream);
  } catch (e) {
    if (/stream not found/i.test((e as Error).message)) return false;
    throw toCpsError(e, stream);
  }
};

const DIGEST_PREFIX = 'SHA-256=';

const hexDigest = (stored: string): string =>
  stored.startsWith(DIGEST_PREFIX)
    ? Buffer.from(stored.slice(DIGEST_PREFIX.length), 'base64url').toString('hex')
    : '';

const toInfo = (i: ObjectInfo): ArchiveInfo => ({
  version: i.name,
  size: i.size,
  digest: hexDigest(i.digest),
  chunks: i.chunks,
  ...(i.description ? { description: i.description } : {}),
  stored: i.mtime,
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
 * The code archives of one service, in its JetStream object-store bucket
 * (`subjects.archiveBucket(serviceId)`), one object per version. Content is split in
 * {@link ARCHIVE_CHUNK_BYTES} messages and checked against its SHA-256 on the way in and on the way
 * out. A version is written once: `put` refuses an existing one (`conflict`), so a version's content
 * never changes under its readers. The director writes; the service's manager may only read.
 */
export class ArchiveStore {
  private store: Promise<ObjectStore> | undefined;

  private readonly bucketName: string;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: {
      readonly serviceId: string;
      readonly idleTimeoutMs?: number;
      /** The service's data bucket rather than its code archives (`subjects.dataBucket`). */
      readonly data?: boolean;
      /** Bytes per stored chunk (default {@link ARCHIVE_CHUNK_BYTES}); never above max_payload. */
      readonly chunkBytes?: number;
    },
  ) {
    this.bucketName = o.data ? subjects.dataBucket(o.serviceId) : subjects.archiveBucket(o.serviceId);
  }

  /** Every stored object, oldest first. */
  async list(): Promise<ArchiveInfo[]> {
    const all = await (await this.bucket()).list().catch((e: unknown) => {
      throw toCpsError(e, this.bucketName);
    });
    return all
      .filter((i) => !i.deleted)
      .map(toInfo)
      .sort((a, b) => a.stored.localeCompare(b.stored));
  }

  /**
   * Stores `data` as `version`. Refuses more than `maxBytes` (`payload_too_large`, nothing kept) and
   * an existing version (`conflict`).
   */
  async put(
    version: string,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    o: { readonly maxBytes: number; readonly description?: string },
  ): Promise<ArchiveInfo> {
    checkArchiveVersion(version);
    const os = await this.bucket();
    const old = await os.info(version).catch((e: unknown) => {
      throw toCpsError(e, this.bucketName);
    });
    if (old !== null && !old.deleted) throw new ConflictError(`archive ${version} already exists`);
    let tooLarge = false;
    const { stream, digest } = limited(iterate(data), o.maxBytes, () => (tooLarge = true));
    let info: ObjectInfo;
    try {
      info = await os.put(
        {
          name: version,
          ...(o.description === undefined ? {} : { description: o.description }),
          options: { max_chunk_size: this.o.chunkBytes ?? ARCHIVE_CHUNK_BYTES },
        },
        stream,
        {
          previousRevision: old?.revision ?? 0,
        },
      );
    } catch (e) {
      if (tooLarge)
        throw new CpsError('payload_too_large', `archive ${version} is larger than ${o.maxBytes} bytes`, [
          { path: '$.archive', code: 'too_large', message: `larger than ${o.maxBytes} bytes` },
        ]);
      if (/wrong last sequence/i.test((e as Error).message))
        throw new ConflictError(`archive ${version} already exists`, { cause: e });
      throw toCpsError(e, this.bucketName);
    }
    const stored = toInfo(info);
    if (stored.digest !== digest())
      throw fail('internal', `archive ${version}: stored digest differs from sent`);
    return stored;
  }

  /** The stored info of `version`, or undefined. */
  async info(version: string): Promise<ArchiveInfo | undefined> {
    checkArchiveVersion(version);
    const i = await (await this.bucket()).info(version).catch((e: unknown) => {
      throw toCpsError(e, this.bucketName);
    });
    return i === null || i.deleted ? undefined : toInfo(i);
  }

  /** Opens `version` for reading (`not_found` if it does not exist). */
  async get(version: string): Promise<ArchiveReader> {
    checkArchiveVersion(version);
    const r = await (await this.bucket()).get(version).catch((e: unknown) => {
      throw toCpsError(e, this.bucketName);
    });
    if (r === null) throw new NotFoundError(`archive ${version} not found`);
    const info = toInfo(r.info);
    return { info, chunks: this.verified(info, r.data) };
  }

  /** Deletes `version`; false if there was nothing to delete. */
  async delete(version: string): Promise<boolean> {
    checkArchiveVersion(version);
    const os = await this.bucket();
    try {
      const i = await os.info(version);
      if (i === null || i.deleted) return false;
      return (await os.delete(version)).success;
    } catch (e) {
      throw toCpsError(e, this.bucketName);
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
      throw fail(
        'internal',
        `archive ${info.version} is corrupt: size or digest differs from the stored one`,
      );
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
            () => reject(fail('timeout', `archive ${info.version}: no data for ${ms} ms (chunks missing?)`)),
            ms,
          );
        }),
      ]);
    } catch (e) {
      if (isCpsError(e)) throw e;
      throw fail('internal', `archive ${info.version} is corrupt: ${(e as Error).message}`, e);
    } finally {
      clearTimeout(timer);
    }
  }

  private bucket(): Promise<ObjectStore> {
    // no JetStream account-info probe: a manager may touch nothing but its own bucket
    this.store ??= new Objm(jetstream(this.nc, { checkAPI: false }))
      .open(this.bucketName)
      .catch((e: unknown) => {
        this.store = undefined;
        if (/object store not found/i.test((e as Error).message))
          throw new NotFoundError(
            `service ${this.o.serviceId} has no ${this.o.data ? 'data' : 'archive'} bucket`,
            {
              cause: e,
            },
          );
        throw toCpsError(e, this.bucketName);
      });
    return this.store;
  }
}
