import { createHash } from 'node:crypto';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create as tarCreate } from 'tar';
import { jetstreamManager } from '@nats-io/jetstream';
import { subjects } from '@cps/bus';
import { eventually } from '@cps/testing';
import {
  tarOf,
  zerosBomb,
  zipOf,
  type TarSpec,
  type ZipSpec,
} from '../../../../libs/archives/src/extract/archives.spec-helpers.js';
import type { Director } from '../director.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';

const SCRIPTS: Record<string, string> = {
  'init.sh': 'echo "init as $MY_ROLE"\n',
  'run.sh': 'echo "run"\nsleep 60\n',
};

/** One archive that extraction refuses, and the issue the upload must answer with. */
type Refused = readonly [what: string, archive: () => Buffer, path: string, code: string];

const LONG = 'd/'.repeat(600) + 'f';
const tar = (entries: TarSpec[]) => gzipSync(tarOf(entries));
const zip = (entries: ZipSpec[]) => zipOf(entries);

/** At least one archive for each code of ArchiveIssueCodes; the agents unpack with the same rules. */
const REFUSED: readonly Refused[] = [
  ['20 MB of the letter a', () => Buffer.alloc(20_000_000, 'a'), '$.archive', 'unknown_format'],
  ['a gzip holding no tar', () => gzipSync(Buffer.alloc(4096, 'a')), '$.archive', 'unknown_format'],
  ['11 bytes of zip garbage', () => Buffer.from('PK\x03\x04garbage'), '$.archive', 'corrupt'],
  [
    'a zip entry failing its CRC',
    () => {
      const z = zip([{ name: 'f', data: 'hello' }]);
      z[30 + 1] = 'j'.charCodeAt(0);
      return z;
    },
    '$.archive.f',
    'corrupt',
  ],
  ['a zip-slip', () => zip([{ name: '../evil.sh', data: 'x' }]), '$.archive.../evil.sh', 'parent_segment'],
  [
    'a zip-slip with backslashes',
    () => zip([{ name: '..\\evil', data: 'x' }]),
    '$.archive.../evil',
    'parent_segment',
  ],
  [
    'a tar climbing out',
    () => tar([{ path: 'a/../../evil', data: 'x' }]),
    '$.archive.a/../../evil',
    'parent_segment',
  ],
  ['an absolute name', () => tar([{ path: '/etc/x', data: 'x' }]), '$.archive./etc/x', 'absolute_path'],
  [
    'a NUL in a name',
    () => zip([{ name: Buffer.from('a\0b'), data: 'x' }]),
    '$.archive.a\\x00b',
    'invalid_name',
  ],
  [
    'a name over 1024 bytes',
    () => tar([{ path: LONG, data: 'x' }]),
    `$.archive.${LONG.slice(0, 1024)}…`,
    'name_too_long',
  ],
  [
    'the same path twice',
    () =>
      tar([
        { path: 'init.sh', data: '1' },
        { path: './init.sh', data: '2' },
      ]),
    '$.archive../init.sh',
    'duplicate',
  ],
  [
    'a file under a file',
    () =>
      tar([
        { path: 'a', data: '1' },
        { path: 'a/b', data: '2' },
      ]),
    '$.archive.a/b',
    'path_conflict',
  ],
  [
    'a write through a symlink leaving the code',
    () =>
      tar([
        { path: 'up', type: 'SymbolicLink', linkpath: '../..' },
        { path: 'up/identity.json', data: '{}' },
      ]),
    '$.archive.up/identity.json',
    'path_conflict',
  ],
  [
    'an absolute symlink',
    () => tar([{ path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }]),
    '$.archive.passwd',
    'link_outside',
  ],
  [
    'a zip symlink leaving the code',
    () => zip([{ name: 'l', mode: 0o120777, data: '../../etc' }]),
    '$.archive.l',
    'link_outside',
  ],
  [
    'a hard link to a file not in the archive',
    () => tar([{ path: 'h', type: 'Link', linkpath: 'nope' }]),
    '$.archive.h',
    'link_target',
  ],
  [
    'symlinks in a loop',
    () =>
      tar([
        { path: 'a', type: 'SymbolicLink', linkpath: 'b' },
        { path: 'b', type: 'SymbolicLink', linkpath: 'a' },
      ]),
    '$.archive.a',
    'link_target',
  ],
  ['a device', () => tar([{ path: 'null', type: 'CharacterDevice' }]), '$.archive.null', 'unsupported_type'],
  ['a FIFO in a zip', () => zip([{ name: 'p', mode: 0o010644 }]), '$.archive.p', 'unsupported_type'],
  [
    'a tar of 10,001 entries',
    () => tar(Array.from({ length: 10_001 }, (_, i) => ({ path: `f${i}` }))),
    '$.archive.f10000',
    'too_many_entries',
  ],
  ['a file declaring 300 MiB', () => zerosBomb(1, 300, 'one/'), '$.archive.one/0000', 'entry_too_large'],
  ['257 MiB of zeros in 1 MiB files', () => zerosBomb(257, 1), '$.archive.zeros/0256', 'too_large'],
  [
    'a zip lying about its size',
    () => zip([{ name: 'bomb', data: Buffer.alloc(16 * 1024 * 1024), deflate: true, size: 100 }]),
    '$.archive.bomb',
    'corrupt',
  ],
];

describe('an upload extraction would refuse changes nothing', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let good: Buffer;
  let serviceId: string;
  const svc = '/v1/applications/site/services/web';

  const operation = async (location: string) => {
    const r = await eventually(
      () => alice.get(location),
      (x) => x.body?.state !== 'running',
      90_000,
    );
    expect(r.body.state, JSON.stringify(r.body)).toBe('succeeded');
  };

  /** The last sequence of the service's archive bucket (0: no bucket): what the object store holds. */
  const bucketSeq = async (): Promise<number> => {
    const jsm = await jetstreamManager(d.bus.connection);
    try {
      return (await jsm.streams.info(`OBJ_${subjects.archiveBucket(serviceId)}`)).state.last_seq;
    } catch (e) {
      if (/not found/i.test(String(e))) return 0;
      throw e;
    }
  };

  /** Every file, directory and link under each of the service's nodes' code directory (none yet: []). */
  const nodeCode = async (): Promise<Record<string, string[]>> => {
    const walk = (dir: string, prefix = ''): string[] =>
      (statSync(dir, { throwIfNoEntry: false }) ? readdirSync(dir) : []).sort().flatMap((name) => {
        const p = join(dir, name);
        const st = statSync(p, { throwIfNoEntry: false });
        const rel = `${prefix}${name}`;
        if (st?.isDirectory()) return [`${rel}/`, ...walk(p, `${rel}/`)];
        if (st?.isFile()) return [`${rel} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`];
        return [`${rel} -> ${readlinkSync(p)}`];
      });
    const nodes = (await h.cloud.list()).filter((n) => n.kind === 'agent' && n.serviceId === serviceId);
    return Object.fromEntries(
      nodes.map((n) => [n.nodeId, walk(join(h.dir, 'cloud', 'nodes', n.nodeId, 'work', 'code'))]),
    );
  };

  /** What must not change: the recorded archive, the object store, the nodes' code. */
  const recorded = async () => ({
    archive: (await alice.get(svc)).body.archive,
    bucket: await bucketSeq(),
    nodes: await nodeCode(),
  });

  const expectRefused = async (archive: Buffer, path: string, code: string) => {
    const r = await alice.put(`${svc}/archive`, archive);
    expect(r.status, r.text).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ code: 'validation' });
    expect(r.body.issues).toEqual([{ path, code, message: expect.any(String) }]);
  };

  beforeAll(async () => {
    const src = mkdtempSync(join(tmpdir(), 'cps-upload-'));
    for (const [name, body] of Object.entries(SCRIPTS)) writeFileSync(join(src, name), body, { mode: 0o755 });
    await tarCreate({ gzip: true, file: join(src, 'code.tgz'), cwd: src }, Object.keys(SCRIPTS));
    good = readFileSync(join(src, 'code.tgz'));
    rmSync(src, { recursive: true, force: true });
    h = await DirectorHarness.start();
    d = await h.startDirector();
    alice = await h.user(d, 'alice');
    await eventually(
      async () => d.leading,
      (l) => l,
      10_000,
    );
    expect((await alice.post('/v1/applications', { name: 'site' })).status).toBe(201);
    const s = await alice.post('/v1/applications/site/services', { type: 'generic', name: 'web' });
    expect(s.status, s.text).toBe(201);
    serviceId = s.body.serviceId as string;
  });
  afterAll(async () => h?.cleanup());

  it('refuses garbage uploaded to a service not started, storing nothing', async () => {
    await expectRefused(Buffer.alloc(20_000_000, 'a'), '$.archive', 'unknown_format');
    await expectRefused(Buffer.from('PK\x03\x04garbage'), '$.archive', 'corrupt');
    await expectRefused(zip([{ name: '../evil.sh', data: 'x' }]), '$.archive.../evil.sh', 'parent_segment');
    expect((await alice.get(svc)).body.archive).toBeUndefined();
    expect(await bucketSeq()).toBe(0);
  });

  it('takes a good archive, and its running node unpacks it', async () => {
    const r = await alice.put(`${svc}/archive`, good);
    expect(r.status, r.text).toBe(200);
    const start = await alice.post(`${svc}/start`);
    expect(start.status, start.text).toBe(202);
    await operation(start.headers.location as string);
    const nodes = await eventually(
      nodeCode,
      (n) => Object.values(n).some((files) => files.length === 2),
      20_000,
    );
    expect(Object.values(nodes)).toEqual([
      [
        `init.sh ${createHash('sha256').update(SCRIPTS['init.sh']!).digest('hex')}`,
        `run.sh ${createHash('sha256').update(SCRIPTS['run.sh']!).digest('hex')}`,
      ],
    ]);
    expect((await alice.get(svc)).body.archive).toEqual({
      version: r.body.version,
      size: good.length,
      digest: createHash('sha256').update(good).digest('hex'),
    });
  });

  it.each(REFUSED)(
    'refuses %s with its issue; the archive, the store and the node are unchanged',
    async (_, archive, path, code) => {
      const before = await recorded();
      await expectRefused(archive(), path, code);
      expect(await recorded()).toEqual(before);
    },
  );

  it('refuses a zip of 100,000 entries at once, from its central directory', async () => {
    const archive = zip(Array.from({ length: 100_000 }, (_, i) => ({ name: `f${i}`, data: 'x' })));
    const before = await recorded();
    const started = performance.now();
    await expectRefused(archive, '$.archive', 'too_many_entries');
    const ms = performance.now() - started;
    expect(ms, `a zip of ${archive.length} bytes, refused in ${Math.round(ms)} ms`).toBeLessThan(2_000);
    expect(await recorded()).toEqual(before);
  });

  it('refuses garbage uploaded to a stopped service, keeping its archive', async () => {
    const stop = await alice.post(`${svc}/stop`);
    await operation(stop.headers.location as string);
    expect((await alice.get(svc)).body.state).toBe('STOPPED');
    const before = (await recorded()).archive;
    const bucket = await bucketSeq();
    await expectRefused(Buffer.alloc(20_000_000, 'a'), '$.archive', 'unknown_format');
    await expectRefused(Buffer.from('PK\x03\x04garbage'), '$.archive', 'corrupt');
    expect((await alice.get(svc)).body.archive).toEqual(before);
    expect(await bucketSeq()).toBe(bucket);
  });
});
