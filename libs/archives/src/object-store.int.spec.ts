import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { hasErrorCode } from '@cps/core';
import { TestNats } from '@cps/testing';
import { subjects } from '@cps/bus';
import {
  ARCHIVE_CHUNK_BYTES,
  ArchiveStore,
  deleteArchiveBucket,
  ensureArchiveBucket,
  ensureDataBucket,
} from '@cps/archives';

const BUCKET = subjects.archiveBucket('s1');
const STREAM = `OBJ_${BUCKET}`;
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function* unevenly(b: Buffer): AsyncGenerator<Uint8Array> {
  for (let i = 0, n = 1; i < b.length; i += n, n = 1 + ((n * 7 + 1013) % 300_000)) yield b.subarray(i, i + n);
}

const readAll = async (chunks: AsyncIterable<Uint8Array>): Promise<Buffer> => {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
};

const chunkSubject = async (nc: NatsConnection, name: string): Promise<string> => {
  const info = await (await new Objm(nc).open(BUCKET)).info(name);
  return `$O.${BUCKET}.C.${info!.nuid}`;
};

describe('ArchiveStore on the JetStream object store', () => {
  let nats: TestNats;
  let director: NatsConnection;
  let jsm: JetStreamManager;
  let store: ArchiveStore;
  beforeAll(async () => {
    nats = await TestNats.start();
    director = await nats.connect({ role: 'director', id: 'd1' });
    await ensureArchiveBucket(director, 's1');
    await ensureArchiveBucket(director, 's2');
    jsm = await jetstreamManager(director);
    store = new ArchiveStore(director, { serviceId: 's1', idleTimeoutMs: 1_000 });
  });
  afterAll(async () => nats.cleanup());

  it('puts a 5 MiB archive in chunks no bigger than max_payload and gets it back identical', async () => {
    const data = randomBytes(5 * MiB);
    const before = (await jsm.streams.info(STREAM)).state.messages;
    const info = await store.put('v1', unevenly(data), { maxBytes: 8 * MiB });
    expect(info).toEqual({
      version: 'v1',
      size: 5 * MiB,
      digest: sha256(data),
      chunks: 40,
      stored: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    const maxPayload = director.info!.max_payload;
    expect(ARCHIVE_CHUNK_BYTES).toBeLessThanOrEqual(maxPayload);
    const { state } = await jsm.streams.info(STREAM);
    expect(state.messages - before).toBe(41);
    for (let seq = state.last_seq - 40; seq <= state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(STREAM, { seq });
      expect(m!.data.length).toBeLessThanOrEqual(Math.min(ARCHIVE_CHUNK_BYTES, maxPayload));
    }

    const r = await store.get('v1');
    expect(r.info).toEqual(info);
    expect((await readAll(r.chunks)).equals(data)).toBe(true);
  });

  it('fails clearly on a missing archive and an invalid version', async () => {
    await expect(store.get('nope')).rejects.toSatisfy((e) => hasErrorCode(e, 'not_found'));
    expect(await store.info('nope')).toBeUndefined();
    await expect(store.get('v1/../x')).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.version',
    );
    for (const bad of ['a.b', 'V1', '', 'x'.repeat(65)])
      await expect(store.put(bad, new Uint8Array(1), { maxBytes: 10 })).rejects.toSatisfy((e) =>
        hasErrorCode(e, 'validation'),
      );
  });

  it('detects a corrupted chunk while reading, after the last chunk', async () => {
    const data = randomBytes(300 * 1024);
    await store.put('v2', data, { maxBytes: MiB });
    const subject = await chunkSubject(director, 'v2');
    const last = await jsm.streams.getMessage(STREAM, { last_by_subj: subject });
    await jsm.streams.deleteMessage(STREAM, last!.seq);
    const tampered = Buffer.from(last!.data);
    tampered[0] = tampered[0]! ^ 0xff;
    await director.request(subject, tampered);

    const r = await store.get('v2');
    await expect(readAll(r.chunks)).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'internal') && /corrupt/.test(e.message),
    );
  });

  it('times out clearly when the chunks of an archive are gone', async () => {
    await store.put('v3', randomBytes(1000), { maxBytes: MiB });
    await jsm.streams.purge(STREAM, { filter: await chunkSubject(director, 'v3') });
    const r = await store.get('v3');
    await expect(readAll(r.chunks)).rejects.toSatisfy((e) => hasErrorCode(e, 'timeout'));
  });

  it('refuses an archive over maxBytes and keeps nothing of it', async () => {
    const before = (await jsm.streams.info(STREAM)).state.messages;
    await expect(store.put('big', unevenly(randomBytes(2 * MiB)), { maxBytes: MiB })).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'payload_too_large') && e.issues[0]?.path === '$.archive',
    );
    expect(await store.info('big')).toBeUndefined();
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(before);
  });

  it('writes a name once, deletes it, and lets it be written again', async () => {
    await store.put('v4', Buffer.from('one'), { maxBytes: 10 });
    await expect(store.put('v4', Buffer.from('two'), { maxBytes: 10 })).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'conflict'),
    );
    expect(await store.delete('v4')).toBe(true);
    expect(await store.delete('v4')).toBe(false);
    await expect(store.get('v4')).rejects.toSatisfy((e) => hasErrorCode(e, 'not_found'));
    await store.put('v4', Buffer.from('three'), { maxBytes: 10 });
    expect((await readAll((await store.get('v4')).chunks)).toString()).toBe('three');
  });

  it("lets a manager read its own service's archives and nothing else", async () => {
    const mine = randomBytes(200 * 1024);
    await store.put('m1', mine, { maxBytes: MiB });
    const other = new ArchiveStore(director, { serviceId: 's2' });
    await other.put('m1', Buffer.from('not yours'), { maxBytes: 100 });
    const manager = await nats.connect({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    const own = await new ArchiveStore(manager, { serviceId: 's1' }).get('m1');
    expect((await readAll(own.chunks)).equals(mine)).toBe(true);

    const e = await new ArchiveStore(manager, { serviceId: 's2' }).get('m1').catch((err: unknown) => err);
    expect(hasErrorCode(e, 'forbidden')).toBe(true);
    expect(String((e as Error).cause)).toContain(
      `Permissions Violation for Publish to "$JS.API.STREAM.INFO.OBJ_${subjects.archiveBucket('s2')}"`,
    );
    const write = await new ArchiveStore(manager, { serviceId: 's1' })
      .put('v9', Buffer.from('x'), { maxBytes: 10 })
      .catch((err: unknown) => err);
    expect(hasErrorCode(write, 'forbidden')).toBe(true);
    expect(await store.info('v9')).toBeUndefined();
  });

  it("lets a manager write, list, read and delete its own service's data, and nobody else's", async () => {
    await ensureDataBucket(director, 's1');
    await ensureDataBucket(director, 's2');
    const manager = await nats.connect({ role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' });
    const data = new ArchiveStore(manager, { serviceId: 's1', data: true });
    const backup = randomBytes(300 * 1024);
    const put = await data.put('b1', unevenly(backup), { maxBytes: MiB, description: '{"gtid":"0-1-5"}' });
    expect(put).toMatchObject({ version: 'b1', size: backup.length, description: '{"gtid":"0-1-5"}' });
    await data.put('b2', Buffer.from('second'), { maxBytes: MiB });
    expect((await data.list()).map((i) => [i.version, i.description])).toEqual([
      ['b1', '{"gtid":"0-1-5"}'],
      ['b2', undefined],
    ]);
    expect((await readAll((await data.get('b1')).chunks)).equals(backup)).toBe(true);
    expect(await data.delete('b1')).toBe(true);
    expect((await data.list()).map((i) => i.version)).toEqual(['b2']);
    // its archives stay read-only, another service's data out of reach
    expect(await data.info('b1')).toBeUndefined();
    const foreign = await new ArchiveStore(manager, { serviceId: 's2', data: true })
      .put('x', Buffer.from('x'), { maxBytes: 10 })
      .catch((err: unknown) => err);
    expect(hasErrorCode(foreign, 'forbidden')).toBe(true);
    const agent = await nats.connect({ role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1', nodeId: 'n1' });
    const byAgent = await new ArchiveStore(agent, { serviceId: 's1', data: true })
      .list()
      .catch((err: unknown) => err);
    expect(hasErrorCode(byAgent, 'forbidden')).toBe(true);
    await manager.close();
    await agent.close();
  });

  it('deletes a service bucket with its archives', async () => {
    await ensureArchiveBucket(director, 's3');
    const doomed = new ArchiveStore(director, { serviceId: 's3' });
    await doomed.put('v1', Buffer.from('gone soon'), { maxBytes: 100 });
    expect(await doomed.info('v1')).toMatchObject({ version: 'v1', size: 9 });
    expect(await deleteArchiveBucket(director, 's3')).toBe(true);
    expect(await deleteArchiveBucket(director, 's3')).toBe(false);
    await expect(new ArchiveStore(director, { serviceId: 's3' }).info('v1')).rejects.toSatisfy((e) =>
      hasErrorCode(e, 'not_found'),
    );
    await expect(jsm.streams.info(`OBJ_${subjects.archiveBucket('s3')}`)).rejects.toThrow(/stream not found/);
  });
});
