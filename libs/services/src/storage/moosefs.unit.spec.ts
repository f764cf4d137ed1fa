import { describe, expect, it } from 'vitest';
import {
  chunkConfig,
  drained,
  exportsConfig,
  hddConfig,
  isRestoreFile,
  lastChange,
  masterConfig,
  metaloggerConfig,
  mountArgs,
  parseChunkClasses,
  parseChunkMatrix,
  parseChunkServers,
  parseDirInfo,
  parseDisks,
  parseGoal,
  parseMounts,
  parseQuota,
} from './moosefs.js';

// what MooseFS 3.0.117's tools printed on this project's test nodes (198.18.0.0/15)
const CS = `chunk servers:|198.18.1.2|20003|1|-|3.0.117|0|maintenance_off|1|25380331520|108944293888|-|0|0|0
chunk servers:|198.18.1.3|20003|2|-|3.0.117|0|maintenance_off|3|1024|2048|-|0|0|0`;
const MS = `active mounts, parameters:|1|198.18.1.2|node/state/admin|1|1|3.0.117|/|rw|yes|no|no|0|0|-|-|-|-|-|-|000|00000000
active mounts, parameters:|2|198.18.1.4|node/volumes/v|0|1|3.0.117|/files|rw|yes|no|no|0|0|-|-|-|-|-|-|000|00000000`;
const IC = `all chunks matrix:|goal/copies/chunks:|2|1|2
all chunks matrix:|chunkclass missing:|0
all chunks matrix:|chunkclass endangered:|2
all chunks matrix:|chunkclass undergoal:|0
all chunks matrix:|chunkclass pending deletion:|1`;
const HD = `disks:|198.18.1.3:20003:node/data/chunks/hdd/|13|no errors|marked for removal (not ready)|0|2247356957|0|44|0|0|62|0|25865125888|108944293888
disks:|198.18.1.2:20003:node/data/chunks/hdd/|14|no errors|ok|-|-|-|-|-|-|-|-|25884676096|108944293888`;
const CS3 = `chunk servers:|198.18.1.2|20003|1|-|3.0.117|0|maintenance_off|9|25887080448|108944293888|-|0|0|0
chunk servers:|198.18.1.3|20003|3|-|3.0.117|0|maintenance_off|13|25887080448|108944293888|-|0|0|0
chunk servers:|198.18.1.4|20003|2|-|3.0.117|0|maintenance_off|15|25887080448|108944293888|-|0|0|0`;
const ALL = `all chunks matrix:|goal/copies/chunks:|1|1|13
all chunks matrix:|goal/copies/chunks:|1|2|7
all chunks matrix:|goal/copies/chunks:|3|3|2
all chunks matrix:|chunkclass missing:|0`;
const REGULAR = `regular chunks matrix:|goal/copies/chunks:|1|1|20
regular chunks matrix:|goal/copies/chunks:|3|2|2
regular chunks matrix:|chunkclass undergoal:|2`;
const DIRINFO = `files:
 inodes:                          2
  directories:                    1
  files:                          1
 chunks:                          1
 length:                    3145728
 size:                      3153920
 realsize:                  6307840`;
const QUOTA = `files: (current values | soft quota | hard quota) ; soft quota grace period: default
 inodes   |                    1 |                    - |                    - |
 length   |              3145728 |                    - |           1073741824 |
 size     |              3153920 |                    - |                    - |`;

describe('MooseFS files and tool output', () => {
  it('configures the master and a chunk server on the node’s address and ports only', () => {
    const m = masterConfig({
      dataPath: 'node-dir/data/master',
      exportsPath: 'node-dir/x.cfg',
      address: '198.18.1.2',
      firstPort: 20000,
    });
    expect(m).toContain('MATOCL_LISTEN_HOST = 198.18.1.2\nMATOCL_LISTEN_PORT = 20002');
    expect(m).toContain('DATA_PATH = node-dir/data/master');
    const c = chunkConfig({
      dataPath: 'node-dir/data/chunks',
      hddConfPath: 'node-dir/hdd.cfg',
      address: '198.18.1.3',
      firstPort: 20000,
      master: { address: '198.18.1.2', port: 20001 },
    });
    expect(c).toContain('MASTER_HOST = 198.18.1.2\nMASTER_PORT = 20001');
    expect(c).toContain('CSSERV_LISTEN_HOST = 198.18.1.3\nCSSERV_LISTEN_PORT = 20003');
    expect(hddConfig('hdd', false)).toBe('hdd\n');
    expect(hddConfig('hdd', true)).toBe('*hdd\n');
  });

  it('exports the root to the master’s node alone, and to others only with the clients’ password', () => {
    const lines = exportsConfig({ masterAddress: '198.18.1.2', password: 'pw' }).trim().split('\n');
    expect(lines).toEqual([
      '198.18.1.2 / rw,alldirs,admin,maproot=0:0',
      '* / rw,alldirs,maproot=0:0,password=pw',
    ]);
  });

  it('mounts a volume as a sub-folder, the password as an option', () => {
    expect(
      mountArgs({
        dir: 'mnt',
        master: { address: '198.18.1.2', port: 20002 },
        volume: 'files',
        password: 'pw',
      }),
    ).toEqual([
      'mnt',
      '-H',
      '198.18.1.2',
      '-P',
      '20002',
      '-S',
      '/files',
      '-o',
      'allow_other,mfscachemode=AUTO,mfspassword=pw',
    ]);
    expect(mountArgs({ dir: 'mnt', master: { address: 'a', port: 1 } })).toContain('/');
  });

  it('reads chunk servers, mounts, chunk classes, directory figures, goals and quotas', () => {
    expect(parseChunkServers(CS)).toEqual([
      { address: '198.18.1.2', port: 20003, chunks: 1, usedBytes: 25380331520, totalBytes: 108944293888 },
      { address: '198.18.1.3', port: 20003, chunks: 3, usedBytes: 1024, totalBytes: 2048 },
    ]);
    expect(parseChunkServers('master info:|x|y\n')).toEqual([]);
    expect(parseMounts(MS)).toEqual([
      { address: '198.18.1.2', path: '/' },
      { address: '198.18.1.4', path: '/files' },
    ]);
    expect(parseChunkClasses(IC)).toEqual({ missing: 0, endangered: 2, undergoal: 0, pending_deletion: 1 });
    expect(parseDirInfo(DIRINFO)).toEqual({ files: 1, length: 3145728, size: 3153920 });
    expect(parseGoal('files: 2\n')).toBe(2);
    expect(parseGoal('nothing')).toBeUndefined();
    expect(parseQuota(QUOTA)).toBe(1073741824);
    expect(parseQuota(QUOTA.replace('1073741824', '         -'))).toBeUndefined();
  });
});

describe('the metadata kept elsewhere', () => {
  it('runs a metalogger against the master’s metalogger port, downloading the metadata every hour', () => {
    const c = metaloggerConfig({
      dataPath: 'node/data/metalogger',
      master: { address: '198.18.1.2', port: 20000 },
    });
    expect(c).toContain('MASTER_HOST = 198.18.1.2\nMASTER_PORT = 20000\n');
    expect(c).toContain('DATA_PATH = node/data/metalogger\n');
    expect(c).toContain('META_DOWNLOAD_FREQ = 1\n');
  });

  it('restores a master from the metadata and change logs only, and knows the last change', () => {
    const names = [
      'metadata_ml.mfs.back',
      'changelog_ml.0.mfs',
      'changelog_ml_back.1.mfs',
      'metadata_ml.tmp',
      '.mfsmetalogger.lock',
      '../x',
      'changelog_ml.0.mfs/..',
    ];
    expect(names.filter(isRestoreFile)).toEqual([
      'metadata_ml.mfs.back',
      'changelog_ml.0.mfs',
      'changelog_ml_back.1.mfs',
    ]);
    // as a metalogger wrote it
    expect(lastChange('20: 1796637469|UNLOCK(3)\n21: 1796637469|SETSCLASS(2,0,1,1,4):4,0,0\n')).toBe(21);
    expect(lastChange('')).toBe(0);
  });
});

describe('a drain', () => {
  const disks = parseDisks(HD);
  const servers = parseChunkServers(CS3);
  const marked = '198.18.1.3:20003';
  const gone = servers.map((c) => (`${c.address}:${c.port}` === marked ? { ...c, chunks: 0 } : c));
  const cells = (...rows: [number, number, number][]) =>
    rows.map(([goal, copies, chunks]) => ({ goal, copies, chunks }));

  it('reads the chunk servers’ disks and the goal/copies matrices', () => {
    expect(disks).toEqual([
      {
        server: '198.18.1.3:20003',
        path: 'node/data/chunks/hdd/',
        chunks: 13,
        status: 'marked for removal (not ready)',
      },
      { server: '198.18.1.2:20003', path: 'node/data/chunks/hdd/', chunks: 14, status: 'ok' },
    ]);
    expect(parseChunkMatrix(REGULAR)).toEqual(cells([1, 1, 20], [3, 2, 2]));
    expect(parseChunkMatrix(ALL)).toEqual(cells([1, 1, 13], [1, 2, 7], [3, 3, 2]));
  });

  it('is over once no chunk needs a copy on the marked disk to keep what the servers left can hold', () => {
    // as seen at the end of a drain: the goal-1 chunks moved; two chunks of goal 3 have their 2
    // copies on the two servers left, which can hold no more
    const over = {
      disks,
      servers: gone,
      matrix: parseChunkMatrix(ALL),
      regularMatrix: parseChunkMatrix(REGULAR),
    };
    expect(drained(over, marked)).toBe(true);
    // under way: 3 chunks of goal 2 with one copy besides the marked one
    const under = {
      ...over,
      matrix: cells([2, 2, 7], [2, 3, 13]),
      regularMatrix: cells([2, 1, 3], [2, 2, 17]),
    };
    expect(drained(under, marked)).toBe(false);
    // goal 1: a chunk whose only copy is on the marked disk
    expect(
      drained({ ...over, matrix: cells([1, 1, 20]), regularMatrix: cells([1, 0, 5], [1, 1, 15]) }, marked),
    ).toBe(false);
    // short of its goal with or without the marked copies (another node down): not the drain's to wait for
    const down = cells([2, 1, 2], [2, 2, 18]);
    expect(drained({ ...over, matrix: down, regularMatrix: down }, marked)).toBe(true);
    // the master still counts the server's chunks as regular: the marking has not reached it
    expect(drained({ ...over, servers }, marked)).toBe(false);
    // a disk not marked (the chunk server has not read its configuration again)
    expect(drained(over, '198.18.1.2:20003')).toBe(false);
  });
});

describe('the storage type', () => {
  it('says why a node cannot run it: no root, or a loopback address', async () => {
    const { storageService } = await import('./storage.js');
    expect(storageService.checkNode?.({ address: '198.18.1.2', privileged: true })).toBeUndefined();
    expect(storageService.checkNode?.({ address: '198.18.1.2', privileged: false })).toMatch(/root/);
    expect(storageService.checkNode?.({ address: '127.0.0.1', privileged: true })).toMatch(
      /loopback.*host mode/,
    );
  });

  it('declares the volumes of a manifest entry, ConPaaS’s VolumeStartup included', async () => {
    const { storageService } = await import('./storage.js');
    expect(
      storageService.volumes?.declared({
        Volumes: [{ Name: 'a', Replicas: 2 }, { Name: 'b' }],
        VolumeStartup: { volumeName: 'c', owner: 'x' },
      }),
    ).toEqual(['a', 'b', 'c']);
    expect(storageService.volumes?.declared({ Volumes: 'nonsense' })).toEqual([]);
  });
});
