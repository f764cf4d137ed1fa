// (t) The storage service (MooseFS, host mode): a real platform (`cps up` on a fresh CPS_HOME) runs
// examples/storage (a master, two chunk servers, the volume `shared` with 2 replicas, mounted by the
// generic service's nodes). On one of those nodes, as its workload user:
//  - sequential write of 200 MB (dd, fsync) and read back with cold caches;
//  - create, stat and delete 5,000 small files;
// through the platform's mount, next to the same MooseFS set up by hand (a master and two chunk
// servers in the same storage nodes' namespaces, goal 2, mounted by hand in the same node), and next
// to the node's local disk (its work directory; a ratio only, no target).
import { mkdirSync, mkdtempSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { LocalCloud, WORKLOAD_USER, workloadUser } from '@cps/clouds';
import { freePort, PlatformHome } from '@cps/platform';
import { must, onPath, run, until } from '../lib/processes.mjs';
import { now, sleep } from '../lib/stats.mjs';

const CLI = join(process.cwd(), 'tools', 'cli', 'bin', 'cps.js');
const MANIFEST = join(process.cwd(), 'examples', 'storage', 'manifest.json');
const MB = 200;
const FILES = 5_000;
/** The hand-made MooseFS's ports in the storage nodes' namespaces (the platform's are 20000-20003). */
const HAND = { metaloggers: 21_400, chunkservers: 21_401, clients: 21_402, chunkserver: 21_403 };

const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

const unavailable = () => {
  const why = LocalCloud.hostModeUnavailable();
  if (why) return `needs root/host mode (${why})`;
  if (!workloadUser()) return `needs the workload user ${WORKLOAD_USER}`;
  const missing = ['/usr/sbin/mfsmaster', '/usr/sbin/mfschunkserver', '/usr/bin/mfsmount'].filter(
    (f) => !existsSync(f),
  );
  if (!onPath('nsenter') || !onPath('setpriv')) missing.push('util-linux');
  return missing.length ? `missing ${missing.join(', ')}` : undefined;
};

const cps = (s, args, timeoutMs = 180_000) =>
  must(`cps ${args.join(' ')}`, process.execPath, [CLI, ...args], { env: s.env, timeoutMs });
const cpsJson = async (s, args) => JSON.parse(await cps(s, ['--json', ...args]));

/** The pid that holds node `nodeId`'s namespaces. */
const pidOf = async (s, nodeId) => {
  const node = (await new LocalCloud({ dir: join(s.home, 'cloud'), command: () => ({}) }).list()).find(
    (n) => n.nodeId === nodeId,
  );
  if (!node) throw new Error(`no node ${nodeId}`);
  return node.instanceId;
};

/** Runs a shell script in a node's mount, network and PID namespaces: as root, or as the workload user. */
const inNode = (pid, script, o = {}) =>
  must(
    `in node ${pid}: ${script.slice(0, 80)}`,
    'nsenter',
    [
      '-t',
      String(pid),
      '-m',
      '-n',
      '-p',
      ...(o.tenant
        ? ['setpriv', `--reuid=${WORKLOAD_USER}`, `--regid=${WORKLOAD_USER}`, '--clear-groups']
        : []),
      '/bin/sh',
      '-c',
      script,
    ],
    { timeoutMs: o.timeoutMs ?? 300_000 },
  );

/** A daemon started by hand in a node's namespaces (foreground), ended by its pid. */
const daemonIn = (pid, command, args) => {
  const child = spawn('nsenter', ['-t', String(pid), '-m', '-n', '-p', command, ...args], {
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
  });
  return child;
};

const cfg = (entries) =>
  Object.entries(entries)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n') + '\n';

/** MooseFS by hand: a master on the storage master's node, chunk servers on every storage node. */
const startHand = async (s, storage) => {
  const dir = join(s.root, 'hand');
  const master = storage.find((n) => n.role === 'master');
  const procs = [];
  const user = workloadUser();
  for (const n of storage) {
    const d = join(dir, n.nodeId);
    mkdirSync(join(d, 'hdd'), { recursive: true });
    const files = {
      'cs.cfg': cfg({
        WORKING_USER: WORKLOAD_USER,
        WORKING_GROUP: WORKLOAD_USER,
        DATA_PATH: d,
        HDD_CONF_FILENAME: join(d, 'hdd.cfg'),
        LOCK_FILE: join(d, 'cs.lock'),
        MASTER_HOST: master.address,
        MASTER_PORT: HAND.chunkservers,
        CSSERV_LISTEN_HOST: n.address,
        CSSERV_LISTEN_PORT: HAND.chunkserver,
        HDD_LEAVE_SPACE_DEFAULT: '64MiB',
      }),
      'hdd.cfg': `${join(d, 'hdd')}\n`,
    };
    if (n === master)
      Object.assign(files, {
        'master.cfg': cfg({
          WORKING_USER: WORKLOAD_USER,
          WORKING_GROUP: WORKLOAD_USER,
          DATA_PATH: d,
          EXPORTS_FILENAME: join(d, 'exports.cfg'),
          LOCK_FILE: join(d, 'master.lock'),
          MATOML_LISTEN_HOST: master.address,
          MATOML_LISTEN_PORT: HAND.metaloggers,
          MATOCS_LISTEN_HOST: master.address,
          MATOCS_LISTEN_PORT: HAND.chunkservers,
          MATOCL_LISTEN_HOST: master.address,
          MATOCL_LISTEN_PORT: HAND.clients,
          EMPTY_TRASH_PERIOD: 1,
        }),
        'exports.cfg': '* / rw,alldirs,maproot=0:0\n',
      });
    for (const [name, text] of Object.entries(files))
      await must('write', 'sh', ['-c', 'cat > "$1"', 'sh', join(d, name)], { input: text });
    if (n === master)
      await must('metadata', 'cp', ['/var/lib/mfs/metadata.mfs.empty', join(d, 'metadata.mfs')]);
    await must('chown', 'chown', ['-R', `${user.uid}:${user.gid}`, d]);
  }
  const mdir = join(dir, master.nodeId);
  procs.push(
    daemonIn(await pidOf(s, master.nodeId), '/usr/sbin/mfsmaster', ['-f', '-c', join(mdir, 'master.cfg')]),
  );
  await sleep(1_000);
  for (const n of storage)
    procs.push(
      daemonIn(await pidOf(s, n.nodeId), '/usr/sbin/mfschunkserver', [
        '-f',
        '-c',
        join(dir, n.nodeId, 'cs.cfg'),
      ]),
    );
  s.hand = { procs, dir };
  return { master: master.address, port: HAND.clients };
};

const stopHand = async (s) => {
  if (!s.hand) return;
  for (const p of s.hand.procs) {
    try {
      process.kill(-p.pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
  await sleep(2_000);
  s.hand = undefined;
};

/** The workload, timed from here, in `dir` of the node: write, read cold, create, stat, delete. */
const workload = async (pid, dir) => {
  const f = {};
  const timed = async (key, script, o = {}) => {
    const t = now();
    await inNode(pid, `cd '${dir}' && ${script}`, { tenant: true, ...o });
    f[key] = now() - t;
  };
  await inNode(pid, `rm -rf '${dir}/bench' && mkdir -p '${dir}/bench'`, { tenant: true });
  await timed('write', `dd if=/dev/zero of=bench/big bs=1M count=${MB} conv=fsync status=none`);
  await must('drop caches', 'sh', ['-c', 'sync && echo 3 > /proc/sys/vm/drop_caches']);
  await timed('read', 'cat bench/big > /dev/null');
  await timed(
    'create',
    `mkdir bench/small && cd bench/small && i=0; while [ $i -lt ${FILES} ]; do : > f$i; i=$((i+1)); done`,
  );
  await must('drop caches', 'sh', ['-c', 'sync && echo 3 > /proc/sys/vm/drop_caches']);
  await timed('stat', 'ls -l bench/small > /dev/null');
  await timed('delete', 'rm -rf bench');
  return {
    writeMBs: (MB * 1000) / f.write,
    readMBs: (MB * 1000) / f.read,
    createS: f.create / 1000,
    statS: f.stat / 1000,
    deleteS: f.delete / 1000,
  };
};

const FIGS = [
  ['writeMBs', `sequential write of ${MB} MB (fsync)`, 'MB/s', '>='],
  ['readMBs', `sequential read of ${MB} MB, cold cache`, 'MB/s', '>='],
  ['createS', `create ${FILES} empty files`, 's', '<='],
  ['statS', `stat ${FILES} files, cold cache`, 's', '<='],
  ['deleteS', `delete ${FILES} files and the ${MB} MB one`, 's', '<='],
];

export default {
  id: 'storage',
  letter: 't',
  title:
    'the storage service (host mode, a real platform and `cps`): MooseFS volume mounted by a node, next to MooseFS set up by hand on the same namespaces and to the local disk',
  fixture: 'none',
  unavailable,
  prepareTimeoutMs: 300_000,
  runTimeoutMs: 600_000,
  allowance: { prepareS: 300, runS: 300 },
  figures: [
    // the ratio is the service over the hand setup; for seconds, lower is better, so the target
    // is on the service's time over the hand's time
    ...FIGS.map(([key, label, unit, op]) => ({
      key,
      label: `t. ${label}: the service's volume vs MooseFS by hand`,
      unit,
      target: { on: 'ratio', op, value: op === '>=' ? 0.9 : 1.11 },
    })),
    ...FIGS.map(([key, label, unit]) => ({
      key: `${key}Local`,
      label: `t. ${label}: the service's volume vs the node's local disk`,
      unit,
      target: null,
    })),
  ],

  async prepare() {
    const root = mkdtempSync(join('/var/tmp', 'cps-bench-storage-'));
    chmodSync(root, 0o755);
    const home = join(root, 'home');
    const s = { root, home, env: { ...process.env, CPS_HOME: home, CPS_CONFIG_DIR: join(root, 'config') } };
    try {
      await PlatformHome.init(home, {
        env: s.env,
        natsPort: await freePort(),
        directorPort: await freePort(),
      });
      s.up = true;
      await cps(s, ['up']);
      await cps(s, ['deploy', MANIFEST], 300_000);
      await until(
        () => cpsJson(s, ['storage', 'volumes', 'files', '--app', 'storage']),
        (v) => v.volumes?.[0]?.mounts === 2,
        120_000,
        'the volume mounted by both nodes',
      );
      const storage = (await cpsJson(s, ['service', 'nodes', 'files', '--app', 'storage'])).nodes;
      const consumer = (await cpsJson(s, ['service', 'nodes', 'jobs', '--app', 'storage'])).nodes.find(
        (n) => n.role === 'master',
      );
      s.pid = await pidOf(s, consumer.nodeId);
      s.work = join(home, 'cloud', 'nodes', consumer.nodeId, 'work');
      const hand = await startHand(s, storage);
      s.handMount = join(root, 'hand-mount');
      mkdirSync(s.handMount);
      await until(
        () =>
          inNode(
            s.pid,
            `mountpoint -q '${s.handMount}' || mfsmount '${s.handMount}' -H ${hand.master} -P ${hand.port} -o allow_other >/dev/null 2>&1; mfssetgoal -r 2 '${s.handMount}' >/dev/null && chown ${WORKLOAD_USER}: '${s.handMount}' && echo ok`,
          ),
        (out) => out.includes('ok'),
        60_000,
        'the hand-made MooseFS mounted',
      );
      log(`platform and hand-made MooseFS ready under ${root}`);
      return s;
    } catch (e) {
      await this.dispose(s);
      throw e;
    }
  },

  async run(s, runIndex) {
    // the service and the hand setup take turns going first (a first write warms the chunk servers)
    const measure = {
      service: () => workload(s.pid, join(s.work, 'shared')),
      hand: () => workload(s.pid, s.handMount),
    };
    const order = runIndex % 2 === 0 ? ['service', 'hand'] : ['hand', 'service'];
    const got = {};
    for (const k of order) got[k] = await measure[k]();
    const { service, hand } = got;
    const local = await workload(s.pid, s.work);
    const out = {};
    for (const [key] of FIGS) {
      out[key] = { cps: service[key], raw: hand[key] };
      out[`${key}Local`] = { cps: service[key], raw: local[key] };
    }
    return out;
  },

  async dispose(s) {
    if (s.handMount && s.pid)
      await inNode(s.pid, `umount '${s.handMount}'`).catch((e) => log(`unmounting: ${e}`));
    await stopHand(s);
    if (s.up) {
      const r = await run(process.execPath, [CLI, 'down'], { env: s.env, timeoutMs: 120_000 });
      if (r.code !== 0) log(`cps down: ${r.stderr.slice(-400)}`);
    }
    rmSync(s.root, { recursive: true, force: true });
  },
};
