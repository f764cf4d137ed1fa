// The mysql service in host mode (root), next to the same MariaDB work done by hand:
// (n) sysbench oltp_read_write against the service's primary vs a mariadbd started by hand with the
//     plugin's own server arguments;
// (o) add_nodes of one replica until it is in sync with the primary (~100 MB of data) vs a dump piped
//     into a second hand-started server, then GTID replication until in sync;
// (q) backup of ~100 MB (mariadb-backup through the node's spool into the object store) and
//     point-in-time restore vs mariadb-dump | gzip and gunzip | mariadb by hand (the issue's baseline),
//     and the backup vs mariadb-backup | gzip to a local file by hand;
// (p) kill -9 of every process of the primary's node while a client writes: time to the first
//     accepted write, and until the manager recorded the new primary (no baseline).
// The hand-started servers run as the workload user, on 127.0.0.1, in a temp dir under /tmp; every
// server, harness and directory is registered with the runner's `servers` so that a failure, a
// timeout or a signal stops it. Processes are ended by pid only.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { addNodes, getLogs, removeNodes } from '@cps/bus';
import { LocalCloud, namespaceOfAddress, WORKLOAD_USER, workloadUser } from '@cps/clouds';
import { ServiceHarness } from '@cps/testing';
import { servers, stopNats } from '../lib/fixtures.mjs';
import { must, onPath, portRange, Server, signalPid, until } from '../lib/processes.mjs';
import { now, sleep } from '../lib/stats.mjs';

const MARIADBD = '/usr/sbin/mariadbd';
const TOOLS = ['sysbench', 'mariadb', 'mariadb-dump', 'mariadb-install-db', 'ip'];
const TABLES = 4;
const THREADS = 4;
/** InnoDB data + indexes per sysbench row (measured: 4 x 108,300 rows hold 104.3 MB). */
const ROW_BYTES = 252;

const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

/** Why these benchmarks cannot run here, or undefined. */
const unavailable = () => {
  const why = LocalCloud.hostModeUnavailable();
  if (why) return why === 'needs root' ? 'needs root/host mode' : `needs root/host mode (${why})`;
  if (!workloadUser()) return `needs the workload user ${WORKLOAD_USER}`;
  const missing = TOOLS.filter((t) => !onPath(t));
  if (!existsSync(MARIADBD)) missing.push(MARIADBD);
  return missing.length ? `missing ${missing.join(', ')}` : undefined;
};

// ---- processes

// Programs run through `run`/`must` of ../lib/processes.mjs get only PATH (and `env`): passwords go
// in MYSQL_PWD, never in arguments, except sysbench's, which has no other way.

/** `at`: { host, port, user, password? }. Answers the output lines (tab-separated fields). */
const sql = async (at, statements, o = {}) =>
  (
    await must(
      `mariadb ${at.host}:${at.port}`,
      'mariadb',
      [
        '--no-defaults',
        '--protocol=TCP',
        `--host=${at.host}`,
        `--port=${at.port}`,
        `--user=${at.user}`,
        '--connect-timeout=5',
        '--batch',
        '--raw',
        ...(o.header ? [] : ['--skip-column-names']),
      ],
      {
        env: at.password ? { MYSQL_PWD: at.password } : {},
        input: statements,
        timeoutMs: o.timeoutMs ?? 30_000,
      },
    )
  )
    .split('\n')
    .filter((l) => l.length > 0);

/** One row with a header (SHOW SLAVE STATUS) as a record; undefined when there is none. */
const row = async (at, statement) => {
  const [header, values] = await sql(at, statement, { header: true });
  if (!header || values === undefined) return undefined;
  const fields = values.split('\t');
  return Object.fromEntries(header.split('\t').map((n, i) => [n, fields[i] ?? '']));
};

const literal = (s) => `'${String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const shellQuote = (a) => `'${a.replace(/'/g, `'\\''`)}'`;
/** A password the service's rules accept (lower, upper, other characters). */
const newPassword = () => `Bench-${randomBytes(9).toString('hex')}`;

// ---- sysbench

const sysbench = async (at, load, command) =>
  must(
    `sysbench ${command} on ${at.host}:${at.port}`,
    'sysbench',
    [
      'oltp_read_write',
      '--db-driver=mysql',
      `--mysql-host=${at.host}`,
      `--mysql-port=${at.port}`,
      `--mysql-user=${at.user}`,
      `--mysql-password=${at.password}`,
      '--mysql-db=sbtest',
      `--tables=${load.tables}`,
      `--table-size=${load.rows}`,
      `--threads=${THREADS}`,
      ...(command === 'run' ? [`--time=${load.seconds}`, '--report-interval=0'] : []),
      command,
    ],
    { timeoutMs: command === 'run' ? (load.seconds + 60) * 1000 : 600_000 },
  );

/** "transactions: N (X per sec.)" of sysbench's report. */
const tpsOf = (out) => {
  const m = /transactions:\s+\d+\s+\(([\d.]+) per sec\.\)/.exec(out);
  if (!m) throw new Error(`no transaction rate in sysbench's output: ${out.slice(-500)}`);
  return Number(m[1]);
};

/** Megabytes of InnoDB data and indexes in `sbtest`. */
const sizeMb = async (at) =>
  Number(
    (
      await sql(
        at,
        "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest'",
      )
    )[0],
  ) /
  (1024 * 1024);

// ---- the plugin's servers

/** Every process of the host-mode node at `address` (its network namespace), by pid. */
const pidsOfNode = (address) => {
  const ns = namespaceOfAddress(address);
  if (!ns) throw new Error(`${address} is not a host-mode node address`);
  return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map(Number);
};

/** The arguments the plugin started the mariadbd of the node at `address` with (its command line). */
const serviceServerArgs = (address) => {
  for (const pid of pidsOfNode(address)) {
    let argv;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.at(-1) === '') argv.pop();
    if (argv[0] === MARIADBD) return argv.slice(1);
  }
  throw new Error(`no ${MARIADBD} among the processes of the node at ${address}`);
};

/** The arguments that name one server; every other argument is the plugin's, as it is. */
const PER_SERVER = ['--datadir', '--port', '--bind-address', '--server-id', '--secure-file-priv'];
const keyOf = (arg) => (arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg);

/** The plugin's server arguments with this server's data directory, port, address and id. */
const handArgs = (template, values) => {
  for (const key of PER_SERVER) {
    const n = template.filter((a) => keyOf(a) === key).length;
    if (n !== 1)
      throw new Error(`the plugin's server arguments hold ${key} ${n} times: update bench/cases/mysql.mjs`);
  }
  return template.map((a) => (keyOf(a) in values ? `${keyOf(a)}=${values[keyOf(a)]}` : a));
};

// ---- servers started by hand

/** The hand servers' ports (php.mjs takes 22000-22999). */
const ports = portRange(21_000, 21_999);

/**
 * One mariadbd started by hand: a data directory made by mariadb-install-db, then the plugin's
 * arguments (this server's directory, port, 127.0.0.1 and id in place of the node's), run as the
 * workload user. Administered as root over TCP (no password; loopback only). The accounts
 * mariadb-install-db made for the machine's host name are dropped: --skip-name-resolve ignores
 * them, and mariadb-dump --system=users stops at them.
 */
class HandServer {
  constructor(dir, port, serverId) {
    this.dir = dir;
    this.port = port;
    this.serverId = serverId;
    this.process = undefined;
  }

  get at() {
    return { host: '127.0.0.1', port: this.port, user: 'root' };
  }

  static async start(root, name, template, serverId) {
    const user = workloadUser();
    const dir = join(root, name);
    mkdirSync(join(dir, 'files'), { recursive: true, mode: 0o755 });
    for (const d of [dir, join(dir, 'files')]) chownSync(d, user.uid, user.gid);
    const server = new HandServer(dir, await ports.take(), serverId);
    try {
      await must(
        'mariadb-install-db',
        'mariadb-install-db',
        [
          '--no-defaults',
          `--datadir=${join(dir, 'db')}`,
          '--auth-root-authentication-method=normal',
          '--skip-test-db',
        ],
        { user: workloadUser(), cwd: dir, timeoutMs: 120_000 },
      );
      const args = handArgs(template, {
        '--datadir': join(dir, 'db'),
        '--port': server.port,
        '--bind-address': '127.0.0.1',
        '--server-id': serverId,
        '--secure-file-priv': join(dir, 'files'),
      });
      server.args = args;
      await server.launch(name);
      const local = "('localhost', '127.0.0.1', '::1', '%', '')";
      await sql(
        server.at,
        [
          'SET SESSION sql_log_bin = 0',
          `DELETE FROM mysql.global_priv WHERE Host NOT IN ${local}`,
          `DELETE FROM mysql.proxies_priv WHERE Host NOT IN ${local} OR Proxied_host NOT IN ${local}`,
          'FLUSH PRIVILEGES',
          '',
        ].join(';\n'),
      );
      return server;
    } catch (e) {
      await server.stop();
      throw e;
    }
  }

  /** Starts mariadbd with this server's arguments as the workload user; resolves once it answers. */
  async launch(name) {
    this.process = new Server(name, MARIADBD, this.args, {
      logFile: join(this.dir, 'mariadbd.log'),
      cwd: this.dir,
      user: workloadUser(),
    });
    const until = Date.now() + 60_000;
    for (;;) {
      if (!this.process.running) throw new Error(`${name}: mariadbd exited: ${this.process.tail(600)}`);
      try {
        await sql(this.at, 'SELECT 1', { timeoutMs: 5_000 });
        break;
      } catch (e) {
        if (Date.now() > until) throw new Error(`${name}: mariadbd did not answer in 60 s: ${e.message}`);
        await sleep(100);
      }
    }
  }

  /** SIGTERM by pid, SIGKILL after 60 s; then its directory and port are given back. */
  async stop() {
    await this.process?.stop(60_000);
    rmSync(this.dir, { recursive: true, force: true });
    ports.release(this.port);
  }
}

// ---- what a case holds: a harness, hand servers, a temp dir; all ended by `cleanup`

const openScope = () => {
  const root = mkdtempSync(join('/tmp', 'cps-bench-mysql-'));
  chmodSync(root, 0o755);
  const scope = {
    root,
    harness: undefined,
    hand: new Set(),
    closed: false,
    async server(name, template, serverId) {
      if (scope.closed) throw new Error('the benchmark was stopped');
      const s = await HandServer.start(root, name, template, serverId);
      scope.hand.add(s);
      if (scope.closed) {
        await scope.stopServer(s);
        throw new Error('the benchmark was stopped');
      }
      return s;
    },
    async stopServer(s) {
      scope.hand.delete(s);
      await s.stop();
    },
    async cleanup() {
      scope.closed = true;
      await Promise.allSettled([...scope.hand].map((s) => scope.stopServer(s)));
      if (scope.harness) await scope.harness.cleanup().catch((e) => log(`stopping the mysql harness: ${e}`));
      rmSync(root, { recursive: true, force: true });
    },
  };
  servers.add(scope);
  return scope;
};
const closeScope = (scope) => stopNats(scope);

// ---- the service

const replication = (h) => h.call('get_replication', {}, { timeoutMs: 20_000 });
const connectionInfo = (h) => h.call('get_connection_info', {}, { timeoutMs: 5_000 });

const primaryOk = (r, n) =>
  n.nodeId === r.primary && n.role === 'primary' && n.epoch === r.epoch && n.readOnly === false;
const replicaOk = (r, n) =>
  n.nodeId !== r.primary &&
  n.role === 'replica' &&
  n.epoch === r.epoch &&
  n.io === 'Yes' &&
  n.sqlThread === 'Yes';
/** `count` running nodes: the primary taking writes, every other one replicating. */
const replicating = (r, count) =>
  r.nodes.length === count &&
  r.nodes.every((n) => (n.nodeId === r.primary ? primaryOk(r, n) : replicaOk(r, n)));

/** A mysql service in host mode, started, its primary taking writes (and `replicas` replicas). */
const startService = async (scope, replicas = 0) => {
  const t0 = now();
  scope.harness = await ServiceHarness.start({ type: 'mysql', hostMode: true });
  const h = scope.harness;
  await h.startup();
  if (replicas > 0) await h.request(addNodes, { nodes: { replica: replicas } }, { timeoutMs: 30_000 });
  await until(
    () => replication(h),
    (r) => replicating(r, 1 + replicas),
    240_000,
    'the mysql service',
    { scope },
  );
  log(`mysql service with ${1 + replicas} node(s) running in ${((now() - t0) / 1000).toFixed(1)} s`);
  return h;
};

/** A user of the service (create_user: ALL on `database`), and where it connects. */
const serviceUser = async (h, database) => {
  const password = newPassword();
  await h.call('create_user', { name: 'bench', password, database }, { timeoutMs: 30_000 });
  const info = await connectionInfo(h);
  return { host: info.host, port: info.port, user: 'bench', password };
};

/** The same user on a hand-started server, which then takes writes as the service's primary does. */
const handUser = async (server, database, password) => {
  await sql(
    server.at,
    [
      'SET GLOBAL read_only = 0',
      `CREATE DATABASE IF NOT EXISTS ${database}`,
      `CREATE USER 'bench'@'%' IDENTIFIED BY ${literal(password)}`,
      `GRANT ALL PRIVILEGES ON ${database}.* TO 'bench'@'%'`,
      '',
    ].join(';\n'),
  );
  return { ...server.at, user: 'bench', password };
};

const budget = { prepareMs: 900_000, runMs: 600_000 };
const secondsText = (ms) => `${(ms / 1000).toFixed(1)} s`;

/**
 * The service (its primary alone) and a primary started by hand with its arguments, each loaded with
 * ~`mb` MB of sysbench tables, the same user on both.
 */
const twinPrimaries = async (scope, mb) => {
  const load = { tables: TABLES, rows: Math.round((mb * 1024 * 1024) / ROW_BYTES / TABLES / 100) * 100 };
  const h = await startService(scope);
  const cps = await serviceUser(h, 'sbtest');
  const template = serviceServerArgs(cps.host);
  const primary = await scope.server('primary', template, 1001);
  const raw = await handUser(primary, 'sbtest', cps.password);
  const size = {};
  for (const [which, at] of [
    ['cps', cps],
    ['raw', raw],
  ]) {
    const t0 = now();
    await sysbench(at, load, 'prepare');
    size[which] = await sizeMb(at);
    log(
      `sysbench prepare (${load.tables} x ${load.rows} rows) on the ${which === 'cps' ? 'service' : 'hand'} primary: ` +
        `${secondsText(now() - t0)}, ${size[which].toFixed(1)} MB`,
    );
  }
  return { h, cps, template, primary, size };
};

// ---- (n) sysbench oltp_read_write

export const mysqlTps = {
  id: 'mysqltps',
  letter: 'n',
  title: 'sysbench oltp_read_write on the mysql service primary vs a mariadbd started by hand (host mode)',
  fixture: 'none',
  unavailable,
  prepareTimeoutMs: budget.prepareMs,
  runTimeoutMs: budget.runMs,
  allowance: { prepareS: 300, runS: 150 },
  figures: [
    {
      key: 'tps',
      label: `n. sysbench oltp_read_write, ${THREADS} threads, tps`,
      unit: 'tps',
      target: { on: 'ratio', op: '>=', value: 0.9 },
    },
  ],

  async prepare(_fx, opts) {
    const scope = openScope();
    try {
      const load = opts.quick
        ? { tables: TABLES, rows: 10_000, seconds: 10 }
        : { tables: TABLES, rows: 100_000, seconds: 30 };
      const h = await startService(scope);
      const cps = await serviceUser(h, 'sbtest');
      const template = serviceServerArgs(cps.host);
      log(`the plugin's mariadbd arguments: ${template.join(' ')}`);
      const hand = await scope.server('tps', template, 1001);
      const raw = await handUser(hand, 'sbtest', cps.password);
      for (const [which, at] of [
        ['service', cps],
        ['hand', raw],
      ]) {
        const t0 = now();
        await sysbench(at, load, 'prepare');
        log(
          `sysbench prepare (${load.tables} x ${load.rows} rows) on the ${which} server: ${secondsText(now() - t0)}`,
        );
      }
      log(`${load.seconds} s of oltp_read_write per side and run`);
      return { scope, cps, raw, load };
    } catch (e) {
      await closeScope(scope);
      throw e;
    }
  },

  async run(state, runIndex) {
    const tps = {};
    for (const which of runIndex % 2 === 0 ? ['cps', 'raw'] : ['raw', 'cps'])
      tps[which] = tpsOf(await sysbench(state[which], state.load, 'run'));
    return { tps };
  },

  dispose: (state) => closeScope(state.scope),
};

// ---- (o) a new replica in sync with ~100 MB

export const mysqlReplica = {
  id: 'mysqlreplica',
  letter: 'o',
  title:
    'add_nodes of a replica until in sync with ~100 MB vs mariadb-dump | mariadb and GTID replication by hand (host mode)',
  fixture: 'none',
  unavailable,
  prepareTimeoutMs: budget.prepareMs,
  runTimeoutMs: budget.runMs,
  allowance: { prepareS: 300, runS: 300 },
  figures: [
    {
      key: 'copy',
      label: 'o. a new replica in sync with the primary',
      unit: 'ms',
      target: { on: 'ratio', op: '<=', value: 1.5 },
    },
    { key: 'size', label: 'o. data copied (InnoDB data + indexes)', unit: 'MB', target: null },
  ],

  async prepare(_fx, opts) {
    const scope = openScope();
    try {
      const { h, template, primary, size } = await twinPrimaries(scope, opts.quick ? 10 : 100);
      const replPassword = newPassword();
      await sql(
        primary.at,
        [
          `CREATE USER 'repl'@'%' IDENTIFIED BY ${literal(replPassword)}`,
          "GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO 'repl'@'%'",
          '',
        ].join(';\n'),
      );
      return { scope, h, template, primary, replPassword, size, quick: opts.quick };
    } catch (e) {
      await closeScope(scope);
      throw e;
    }
  },

  async run(state, runIndex) {
    const { scope, h } = state;
    const waitMs = state.quick ? 180_000 : 400_000;
    const cps = async () => {
      // from a settled service: the primary alone (the replica of the last run removed)
      await until(
        () => replication(h),
        (r) => replicating(r, 1),
        120_000,
        'the primary alone',
        { scope },
      );
      const before = new Set((await h.nodes()).map((n) => n.nodeId));
      const t0 = now();
      await h.request(addNodes, { nodes: { replica: 1 } }, { timeoutMs: 30_000 });
      let added;
      await until(
        () => replication(h),
        (r) => {
          const p = r.nodes.find((n) => n.nodeId === r.primary);
          const n = r.nodes.find((x) => !before.has(x.nodeId));
          if (n) added = n.nodeId;
          return !!p && !!n && primaryOk(r, p) && replicaOk(r, n) && !!p.current && n.current === p.current;
        },
        waitMs,
        'the new replica in sync',
        { scope },
      );
      const ms = now() - t0;
      await h.request(removeNodes, { nodeIds: [added] }, { timeoutMs: 30_000 });
      await until(
        () => replication(h),
        (r) => replicating(r, 1),
        120_000,
        'the replica removed',
        { scope },
      );
      return ms;
    };
    const raw = async () => {
      const p = state.primary.at;
      const t0 = now();
      const replica = await scope.server(`replica${runIndex}`, state.template, 2001 + runIndex);
      try {
        const started = now();
        const client = (program, at, extra) =>
          [
            program,
            '--no-defaults',
            '--protocol=TCP',
            `--host=${at.host}`,
            `--port=${at.port}`,
            `--user=${at.user}`,
            ...extra,
          ]
            .map(shellQuote)
            .join(' ');
        const dump = client('mariadb-dump', p, [
          '--single-transaction',
          '--gtid',
          '--master-data=1',
          '--all-databases',
          '--ignore-database=mysql',
          '--ignore-database=sys',
          '--system=users',
          '--insert-ignore',
        ]);
        const load = client('mariadb', replica.at, ['--init-command=SET SESSION sql_log_bin=0']);
        await must('mariadb-dump | mariadb', 'bash', ['-c', `set -o pipefail; ${dump} | ${load}`], {
          timeoutMs: waitMs,
        });
        const copied = now();
        await sql(
          replica.at,
          [
            `CHANGE MASTER TO MASTER_HOST=${literal(p.host)}, MASTER_PORT=${p.port}, MASTER_USER='repl', ` +
              `MASTER_PASSWORD=${literal(state.replPassword)}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`,
            'START SLAVE',
            '',
          ].join(';\n'),
        );
        await until(
          async () => {
            const st = await row(replica.at, 'SHOW SLAVE STATUS');
            const [mine] = await sql(replica.at, 'SELECT @@gtid_current_pos');
            const [theirs] = await sql(p, 'SELECT @@gtid_current_pos');
            return { io: st?.Slave_IO_Running, sqlThread: st?.Slave_SQL_Running, mine, theirs };
          },
          (v) => v.io === 'Yes' && v.sqlThread === 'Yes' && !!v.theirs && v.mine === v.theirs,
          waitMs,
          'the hand replica in sync',
          { scope },
        );
        const ms = now() - t0;
        log(
          `hand replica: install + start ${secondsText(started - t0)}, dump | load ${secondsText(copied - started)}, ` +
            `replicating ${secondsText(now() - copied)}`,
        );
        return ms;
      } finally {
        await scope.stopServer(replica);
      }
    };
    const copy = {};
    for (const which of runIndex % 2 === 0 ? ['cps', 'raw'] : ['raw', 'cps'])
      copy[which] = await (which === 'cps' ? cps() : raw());
    return { copy, size: state.size };
  },

  dispose: (state) => closeScope(state.scope),
};

// ---- (q) backup and restore

export const mysqlBackup = {
  id: 'mysqlbackup',
  letter: 'q',
  title:
    'backup and point-in-time restore of ~100 MB through the service (mariadb-backup, the object store on the way) vs mariadb-dump | gzip and gunzip | mariadb by hand, and vs mariadb-backup to a local file by hand (host mode)',
  fixture: 'none',
  unavailable,
  prepareTimeoutMs: budget.prepareMs,
  runTimeoutMs: budget.runMs,
  allowance: { prepareS: 300, runS: 600 },
  figures: [
    {
      key: 'backup',
      label: 'q. backup: the service vs mariadb-dump | gzip by hand',
      unit: 'ms',
      target: null,
    },
    {
      key: 'backupTool',
      label: 'q. backup: the service vs mariadb-backup | gzip to a file by hand',
      unit: 'ms',
      target: null,
    },
    {
      key: 'restore',
      label: 'q. point-in-time restore, server taking queries again: the service vs gunzip | mariadb by hand',
      unit: 'ms',
      target: null,
    },
    { key: 'size', label: 'q. stored: the service backup vs the gzipped dump', unit: 'MB', target: null },
    { key: 'data', label: 'q. data (InnoDB data + indexes)', unit: 'MB', target: null },
  ],

  async prepare(_fx, opts) {
    const scope = openScope();
    try {
      const { h, cps, primary, size: data } = await twinPrimaries(scope, opts.quick ? 10 : 100);
      return { scope, h, cps, primary, data };
    } catch (e) {
      await closeScope(scope);
      throw e;
    }
  },

  async run(state, runIndex) {
    const { scope, h, primary } = state;
    const dir = primary.dir;
    const asRoot = ['--protocol=TCP', '--host=127.0.0.1', `--port=${primary.port}`, '--user=root'];
    const f = { backup: {}, backupTool: {}, restore: {}, size: {} };
    const cpsRound = async () => {
      let t0 = now();
      const b = await h.call('backup', {}, { timeoutMs: 1_800_000 });
      f.backup.cps = f.backupTool.cps = now() - t0;
      f.size.cps = b.size / 1024 / 1024;
      // a moment after the backup, then a write after it that the restore must leave out
      const info = await connectionInfo(h);
      const at = { ...state.cps, host: info.host, port: info.port };
      await sql(at, `UPDATE sbtest.sbtest1 SET c = 'before' WHERE id = 1`);
      await sleep(1_100);
      const moment = new Date().toISOString();
      await sleep(1_100);
      await sql(at, `UPDATE sbtest.sbtest1 SET c = 'after' WHERE id = 1`);
      t0 = now();
      await h.call('restore', { at: moment, yes: true }, { timeoutMs: 1_800_000 });
      f.restore.cps = now() - t0;
      const [c] = await sql(at, 'SELECT c FROM sbtest.sbtest1 WHERE id = 1');
      if (c !== 'before') throw new Error(`the point-in-time restore gave ${c}, not the row of its moment`);
      const { text } = await h.request(getLogs, { tailBytes: 30_000 });
      log(
        text
          .split('\n')
          .filter((l) => /backup stored|object stored|object sent/.test(l))
          .slice(-5)
          .join('\n'),
      );
      await until(
        () => replication(h),
        (r) => replicating(r, 1),
        120_000,
        'the restored primary',
        { scope },
      );
      await h.call('delete_backup', { id: b.id }, { timeoutMs: 60_000 });
    };
    const rawRound = async () => {
      const dump = join(dir, 'dump.sql.gz');
      let t0 = now();
      await must(
        'mariadb-dump',
        'bash',
        [
          '-c',
          `set -o pipefail; ${[
            'mariadb-dump',
            '--no-defaults',
            '--single-transaction',
            '--databases',
            'sbtest',
            ...asRoot,
          ]
            .map(shellQuote)
            .join(' ')} | gzip -1 > ${shellQuote(dump)}`,
        ],
        { user: workloadUser(), cwd: dir, timeoutMs: 1_800_000 },
      );
      f.backup.raw = now() - t0;
      f.size.raw = statSync(dump).size / 1024 / 1024;
      const file = join(dir, 'backup.mbs.gz');
      t0 = now();
      await must(
        'mariadb-backup',
        'bash',
        [
          '-c',
          `set -o pipefail; ${[
            'mariadb-backup',
            '--no-defaults',
            '--backup',
            '--stream=mbstream',
            `--target-dir=${join(dir, 'backup.tmp')}`,
            `--datadir=${join(dir, 'db')}`,
            ...asRoot,
          ]
            .map(shellQuote)
            .join(' ')} | gzip -1 > ${shellQuote(file)}`,
        ],
        { user: workloadUser(), cwd: dir, timeoutMs: 1_800_000 },
      );
      f.backupTool.raw = now() - t0;
      rmSync(file, { force: true });
      t0 = now();
      await must(
        'gunzip | mariadb',
        'bash',
        [
          '-c',
          `set -o pipefail; gunzip < ${shellQuote(dump)} | ${['mariadb', '--no-defaults', ...asRoot].map(shellQuote).join(' ')}`,
        ],
        { user: workloadUser(), cwd: dir, timeoutMs: 1_800_000 },
      );
      f.restore.raw = now() - t0;
      rmSync(dump, { force: true });
    };
    for (const which of runIndex % 2 === 0 ? ['cps', 'raw'] : ['raw', 'cps'])
      await (which === 'cps' ? cpsRound() : rawRound());
    return { ...f, data: state.data };
  },

  dispose: (state) => closeScope(state.scope),
};

// ---- (p) failover

/**
 * A client writing numbered rows one after another through whatever the service says its primary
 * is; remembers when each acknowledged write began and ended.
 */
class Writer {
  constructor(where, write) {
    this.where = where;
    this.write = write;
    this.acks = [];
    this.stopped = false;
    this.done = Promise.resolve();
  }

  start() {
    this.done = (async () => {
      for (let id = 1; !this.stopped; id++) {
        const started = now();
        try {
          await this.write(await this.where(), id);
          this.acks.push({ id, started, at: now() });
        } catch {
          await sleep(50);
        }
      }
    })();
    return this;
  }

  async stop() {
    this.stopped = true;
    await this.done;
  }

  /** When the first write begun after `t` was acknowledged. */
  async firstAckAfter(t, ms) {
    const deadline = now() + ms;
    for (;;) {
      const ack = this.acks.find((a) => a.started > t);
      if (ack) return ack.at;
      if (now() > deadline) throw new Error(`no write acknowledged within ${ms} ms of the kill`);
      await sleep(10);
    }
  }
}

/**
 * When the manager recorded a primary other than `old`, in ms after `t0`: `get_replication` sent
 * every 200 ms without waiting for the answers (while the lost node still counts as running, its
 * answer waits for the agent that will never reply), and the earliest poll that names a new primary.
 * The manager reads its state before it asks the nodes, so that poll's send time bounds the record.
 */
const newPrimaryRecorded = async (scope, h, old, t0, ms) => {
  const naming = [];
  const inFlight = new Set();
  const deadline = now() + ms;
  while (naming.length === 0 && now() < deadline && !scope.closed) {
    const sent = now();
    const poll = replication(h).then(
      (r) => {
        if (r.primary && r.primary !== old) naming.push(sent);
      },
      () => undefined,
    );
    inFlight.add(poll);
    void poll.finally(() => inFlight.delete(poll));
    await sleep(200);
  }
  await Promise.allSettled([...inFlight]);
  if (naming.length === 0) throw new Error(`no new primary recorded within ${ms} ms`);
  return Math.min(...naming) - t0;
};

export const mysqlFailover = {
  id: 'mysqlfailover',
  letter: 'p',
  title:
    "kill -9 of the mysql primary's node under writes: first accepted write, new primary recorded (host mode)",
  fixture: 'none',
  unavailable,
  prepareTimeoutMs: budget.prepareMs,
  runTimeoutMs: budget.runMs,
  allowance: { prepareS: 240, runS: 240 },
  figures: [
    {
      key: 'resume',
      label: "p. kill -9 of the primary's node: first accepted write",
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 10_000 },
      baseline: false,
    },
    {
      key: 'elected',
      label: 'p. new primary recorded (detection + election)',
      unit: 'ms',
      target: null,
      baseline: false,
    },
  ],

  async prepare() {
    const scope = openScope();
    try {
      const h = await startService(scope, 1);
      const user = await serviceUser(h, 'bench');
      return { scope, h, password: user.password };
    } catch (e) {
      await closeScope(scope);
      throw e;
    }
  },

  async run(state, runIndex) {
    const { scope, h } = state;
    // from a settled service: the lost node of the last run replaced by a replica in sync
    const r0 = await until(
      () => replication(h),
      (r) => replicating(r, 2),
      300_000,
      'a primary and a replica',
      { scope },
    );
    const info = await connectionInfo(h);
    const as = (where) => ({ host: where.host, port: where.port, user: 'bench', password: state.password });
    const table = `bench.w${runIndex}_${Date.now().toString(36)}`;
    await sql(as(info), `CREATE TABLE ${table} (id INT PRIMARY KEY)`);
    const writer = new Writer(
      () => connectionInfo(h),
      (where, id) => sql(as(where), `INSERT INTO ${table} VALUES (${id})`, { timeoutMs: 10_000 }),
    ).start();
    try {
      await sleep(1_500);
      if (writer.acks.length === 0) throw new Error('the writer got no write through before the kill');
      const pids = pidsOfNode(info.host);
      const t0 = now();
      for (const pid of pids) signalPid(pid, 'SIGKILL');
      const recorded = newPrimaryRecorded(scope, h, r0.primary, t0, 60_000);
      recorded.catch(() => undefined);
      const resumed = (await writer.firstAckAfter(t0, 60_000)) - t0;
      const elected = await recorded;
      await sleep(500);
      await writer.stop();
      const held = new Set((await sql(as(await connectionInfo(h)), `SELECT id FROM ${table}`)).map(Number));
      const lost = writer.acks.filter((a) => !held.has(a.id)).length;
      log(
        `failover from ${r0.primary}: ${writer.acks.length} writes acknowledged` +
          (lost ? `, ${lost} of them LOST` : ', all held by the new primary'),
      );
      return { resume: { cps: resumed, raw: NaN }, elected: { cps: elected, raw: NaN } };
    } finally {
      await writer.stop();
    }
  },

  dispose: (state) => closeScope(state.scope),
};
