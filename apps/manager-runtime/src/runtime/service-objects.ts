import { ArchiveStore, type ArchiveInfo } from '@cps/archives';
import {
  MAX_SPOOL_BYTES,
  SPOOL_TRANSFER_CHUNK,
  spoolInfo,
  spoolRead,
  spoolRemove,
  spoolWrite,
  subjects,
  type Bus,
} from '@cps/bus';
import { CpsError } from '@cps/core';
import type { ObjectView, PluginLogger, ServiceObjects } from '@cps/services';

/**
 * Sends `chunks` in pieces of `pieceBytes` (the last one shorter; one empty piece for no content):
 * the first once answered, then up to `ahead` at a time (the receiver puts them in order);
 * resolves to the bytes sent.
 */
export const inPieces = async (
  chunks: AsyncIterable<Uint8Array>,
  pieceBytes: number,
  send: (offset: number, data: Buffer) => Promise<unknown>,
  ahead = 1,
): Promise<number> => {
  let offset = 0;
  let pending = Buffer.alloc(0);
  const inFlight: Promise<unknown>[] = [];
  const piece = async (data: Buffer) => {
    const p = send(offset, data);
    offset += data.length;
    if (offset === data.length) return p; // the first piece starts the file: alone
    p.catch(() => undefined); // awaited below, in order
    inFlight.push(p);
    if (inFlight.length >= ahead) await inFlight.shift();
  };
  for await (const c of chunks) {
    pending = Buffer.concat([pending, c]);
    while (pending.length >= pieceBytes) {
      await piece(pending.subarray(0, pieceBytes));
      pending = pending.subarray(pieceBytes);
    }
  }
  if (pending.length > 0 || offset === 0) await piece(pending);
  while (inFlight.length > 0) await inFlight.shift();
  return offset;
};

/** Pieces of a spool file asked for before the previous ones arrived. */
const READ_AHEAD = 4;

const view = (i: ArchiveInfo): ObjectView => ({
  name: i.version,
  size: i.size,
  digest: i.digest,
  stored: i.stored,
  ...(i.description === undefined ? {} : { description: i.description }),
});

/**
 * `ManagerContext.objects`: the service's data bucket, filled from and emptied into its nodes'
 * spools piece by piece over the bus (agents have no JetStream access).
 */
export const serviceObjects = (
  bus: Bus,
  o: { readonly appId: string; readonly serviceId: string; readonly log: PluginLogger },
): ServiceObjects => {
  const store = new ArchiveStore(bus.connection, {
    serviceId: o.serviceId,
    data: true,
    // large objects (backups): fewer, larger messages, well under the default 1 MiB max_payload
    chunkBytes: 512 * 1024,
  });
  const agent = (nodeId: string) => subjects.agent(o.appId, o.serviceId, nodeId);
  return {
    list: async () => (await store.list()).map(view),
    info: async (name) => {
      const i = await store.info(name);
      return i && view(i);
    },
    delete: (name) => store.delete(name),

    fromNode: async (nodeId, file, name, options) => {
      const started = Date.now();
      const announced = await bus.request(agent(nodeId), spoolInfo, { name: file }, { timeoutMs: 120_000 });
      // a few pieces asked ahead, so that reading the node and writing the store overlap
      const read = (offset: number) =>
        bus.request(agent(nodeId), spoolRead, { name: file, offset }, { timeoutMs: 30_000 }).then((r) => {
          const data = Buffer.from(r.data, 'base64');
          const expected = Math.min(SPOOL_TRANSFER_CHUNK, announced.size - offset);
          if (data.length !== expected)
            throw new CpsError(
              'unavailable',
              `spool ${file} on ${nodeId}: ${data.length} bytes at ${offset}`,
            );
          return data;
        });
      async function* pieces(): AsyncGenerator<Uint8Array> {
        const ahead: Promise<Buffer>[] = [];
        let next = 0;
        const fill = () => {
          while (ahead.length < READ_AHEAD && next < announced.size) {
            const p = read(next);
            p.catch(() => undefined); // awaited in order below
            ahead.push(p);
            next += SPOOL_TRANSFER_CHUNK;
          }
        };
        fill();
        while (ahead.length > 0) {
          const data = await ahead.shift()!;
          fill();
          yield data;
        }
      }
      const removeFile = () => bus.request(agent(nodeId), spoolRemove, { name: file }).catch(() => undefined);
      let stored: ArchiveInfo;
      try {
        stored = await store.put(name, pieces(), {
          maxBytes: MAX_SPOOL_BYTES,
          ...(options?.description === undefined ? {} : { description: options.description }),
        });
      } finally {
        await removeFile();
      }
      if (stored.size !== announced.size || stored.digest !== announced.digest) {
        await store.delete(name);
        throw new CpsError('internal', `object ${name}: what was stored differs from ${nodeId}'s ${file}`);
      }
      o.log.info('object stored from a node', { nodeId, name, bytes: stored.size, ms: Date.now() - started });
      return view(stored);
    },

    toNode: async (name, nodeId, file) => {
      const started = Date.now();
      const { info, chunks } = await store.get(name);
      let offset: number;
      try {
        offset = await inPieces(
          chunks,
          SPOOL_TRANSFER_CHUNK,
          (at, data) =>
            bus.request(
              agent(nodeId),
              spoolWrite,
              { name: file, size: info.size, digest: info.digest, offset: at, data: data.toString('base64') },
              { timeoutMs: 60_000 },
            ),
          READ_AHEAD,
        );
      } catch (e) {
        await bus.request(agent(nodeId), spoolRemove, { name: file }).catch(() => undefined);
        throw e;
      }
      o.log.info('object sent to a node', { nodeId, name, bytes: offset, ms: Date.now() - started });
      return view(info);
    },
  };
};
