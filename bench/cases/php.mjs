// (r) The php service in host mode (root), through a real local platform started by the bench and
// driven by the `cps` command as a user drives it, next to the same work done by hand on this
// machine (nginx, php-fpm with 4 static children and opcache, MariaDB, each started by hand on
// 127.0.0.1):
//  - a 13-byte static file through the service's proxy vs the same file from nginx by hand;
//  - `cps deploy examples/wordpress/manifest.json` until /wp-admin/install.php answers 200, in phases,
//    vs the same archive served by hand from nothing (unpack, mariadb-install-db, servers started);
//  - WordPress's front page (installed over HTTP, 10 posts) with one backend (the proxy's own php-fpm)
//    vs nginx + one php-fpm by hand on a copy of the service's database, then with two backend nodes
//    (add_nodes) vs nginx round robin over two php-fpm pools by hand, then with the proxy's micro-cache
//    (set_cache) vs the uncached service;
//  - where the front page's CPU goes: the hand setup once more on the service's own php.ini;
//  - a new code version of a small app enabled while wrk runs: failed requests, p99 and max latency
//    vs the same window without a switch, and failed requests vs nginx reloaded by hand with the new
//    version's directory.
// Every measurement logs the CPU each kind of process used meanwhile (from /proc).
// Every server started by hand runs from a temp dir under /tmp, is stopped by its pid, and the
// platform is brought down with `cps down` on the bench's own CPS_HOME, whatever happens.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { LocalCloud, namespaceOfAddress, WORKLOAD_USER, workloadUser } from '@cps/clouds';
import { freePort as platformPort, PlatformHome } from '@cps/platform';
import { servers, stopNats } from '../lib/fixtures.mjs';
import { must, onPath, portRange, run, Server, until } from '../lib/processes.mjs';
import { now, sleep } from '../lib/stats.mjs';

const CLI = join(process.cwd(), 'tools', 'cli', 'bin', 'cps.js');
const WORDPRESS = join(process.cwd(), 'examples', 'wordpress');
const MANIFEST = join(WORDPRESS, 'manifest.json');
const ARCHIVE = join(WORDPRESS, 'build', 'wordpress.tar.gz');
const MARIADBD = '/usr/sbin/mariadbd';
const NGINX = '/usr/sbin/nginx';
const TOOLS = ['wrk', 'mariadb', 'mariadb-install-db', 'tar', 'ip'];
/** The static file of (r): 13 bytes, as in the reference figures. */
const STATIC_BODY = 'Hello, world\n';
const WRK = { threads: 2, connections: 20 };
/** Seconds of wrk per measurement: static, front page, micro-cache, each code-switch window. */
const SECONDS = { static: 10, page: 15, cache: 10, switch: 8, warm: 3 };
const QUICK = { static: 5, page: 6, cache: 5, switch: 6, warm: 2 };
const POSTS = 9; // with WordPress's own "Hello world!", a front page of 10 posts
const CACHE_SECONDS = 10;

const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

const fpmBinary = () =>
  readdirSync('/usr/sbin')
    .filter((f) => /^php-fpm\d+(\.\d+)?$/.test(f))
    .sort()
    .map((f) => `/usr/sbin/${f}`)
    .pop();

/** Why this benchmark cannot run here, or undefined. */
const unavailable = () => {
  const why = LocalCloud.hostModeUnavailable();
  if (why) return why === 'needs root' ? 'needs root/host mode' : `needs root/host mode (${why})`;
  if (!workloadUser()) return `needs the workload user ${WORKLOAD_USER}`;
  const missing = TOOLS.filter((t) => !onPath(t));
  for (const f of [MARIADBD, NGINX]) if (!existsSync(f)) missing.push(f);
  if (!fpmBinary()) missing.push('php-fpm');
  if (!existsSync(ARCHIVE) && !existsSync('/usr/share/wordpress/wp-settings.php'))
    missing.push("Debian's wordpress (examples/wordpress/build.sh)");
  return missing.length ? `missing ${missing.join(', ')}` : undefined;
};

// ---- processes

/** The hand servers' ports (mysql.mjs takes 21000-21999). */
const ports = portRange(22_000, 22_999);

const status = (url, ms = 10_000) =>
  fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(ms) }).then(
    async (r) => {
      await r.arrayBuffer();
      return r.status;
    },
    () => 0,
  );

// ---- wrk

const UNITS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const msOf = (text) => {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`not a wrk duration: ${text}`);
  return Number(m[1]) * UNITS[m[2]];
};

/** wrk's report: req/s, p99 and max (ms), requests, non-2xx/3xx answers, socket errors, script lines. */
const parseWrk = (out) => {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p99 = /^\s*99%\s+(\S+)/m.exec(out);
  const max = /^[ \t]*Latency[ \t]+\S+[ \t]+\S+[ \t]+(\S+)/m.exec(out);
  const requests = /(\d+) requests in/.exec(out);
  if (!rps || !p99 || !requests) throw new Error(`wrk's output not understood: ${out.slice(-800)}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = sock ? sock.slice(1).reduce((s, n) => s + Number(n), 0) : 0;
  const counts = {};
  for (const m of out.matchAll(/^count (\w+) (\d+)$/gm)) counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[2]);
  return {
    rps: Number(rps[1]),
    p99: msOf(p99[1]),
    max: max ? msOf(max[1]) : NaN,
    requests: Number(requests[1]),
    non2xx,
    socketErrors,
    socketText: sock?.[0] ?? 'no socket errors',
    counts,
  };
};

/** wrk against `url`; `o.netns`: run inside that network namespace (`ip netns exec`). */
const wrk = async (url, seconds, o = {}) =>
  parseWrk(
    await must(
      `wrk ${url}`,
      o.netns ? 'ip' : 'wrk',
      [
        ...(o.netns ? ['netns', 'exec', o.netns, 'wrk'] : []),
        `-t${WRK.threads}`,
        `-c${WRK.connections}`,
        `-d${seconds}s`,
        '--timeout',
        '10s',
        '--latency',
        ...(o.script ? ['-s', o.script] : []),
        url,
        ...(o.scriptArgs ? ['--', ...o.scriptArgs] : []),
      ],
      { timeoutMs: (seconds + 60) * 1000, cwd: o.cwd },
    ),
  );

/**
 * A wrk script that counts answers: 200s whose body holds the marker given after `--` (the new
 * version), other 200s, and the rest; each thread's counts are printed at the end.
 */
const COUNT_SCRIPT = `local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  marker = args[1]
  fresh, old, bad = 0, 0, 0
end
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  elseif string.find(body, marker, 1, true) then
    fresh = fresh + 1
  else
    old = old + 1
  end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("count fresh %d\\ncount old %d\\ncount bad %d\\n", t:get("fresh"), t:get("old"), t:get("bad")))
  end
end
`;

// ---- what the case holds: the platform, the servers started by hand, a temp dir

const openScope = () => {
  const root = mkdtempSync(join('/tmp', 'cps-bench-php-'));
  chmodSync(root, 0o755);
  const home = join(root, 'home');
  const scope = {
    root,
    home,
    env: { ...process.env, CPS_HOME: home, CPS_CONFIG_DIR: join(root, 'config') },
    up: false,
    closed: false,
    hand: undefined,
    addresses: new Set(),
    async cleanup() {
      scope.closed = true;
      if (scope.hand) await stopHand(scope.hand).catch((e) => log(`stopping the hand servers: ${e}`));
      if (scope.up) {
        const r = await run(process.execPath, [CLI, 'down'], { env: scope.env, timeoutMs: 120_000 }).catch(
          (e) => ({ code: 1, stderr: String(e) }),
        );
        if (r.code !== 0) log(`cps down: exit ${r.code}: ${r.stderr?.trim().slice(-400)}`);
        scope.up = false;
      }
      // every namespace of the nodes this case saw must be gone with `cps down`
      const left = await run('ip', ['netns', 'list']).then(
        (r) => r.stdout,
        () => '',
      );
      const listed = new Set(left.split('\n').map((l) => l.split(' ')[0]));
      const still = [...scope.addresses].map(namespaceOfAddress).filter((ns) => ns && listed.has(ns));
      // (the numbering is the machine's: another platform may have taken a freed name meanwhile)
      if (still.length)
        log(`warning: namespaces named as this benchmark's nodes still there: ${still.join(', ')}`);
      rmSync(root, { recursive: true, force: true });
    },
  };
  servers.add(scope);
  return scope;
};
const closeScope = (scope) => stopNats(scope);

const cps = async (scope, args, o = {}) => {
  if (scope.closed) throw new Error('the benchmark was stopped');
  return must(`cps ${args.join(' ')}`, process.execPath, [CLI, ...args], {
    env: scope.env,
    timeoutMs: o.timeoutMs ?? 120_000,
    onLine: o.onLine,
  });
};
const cpsJson = async (scope, args, o) => JSON.parse(await cps(scope, ['--json', ...args], o));

/** The service's URL (`http://address:port`), from `cps service info`. */
const urlOf = async (scope, app, svc = 'web') => {
  const info = await cpsJson(scope, ['service', 'info', svc, '--app', app]);
  const e = info.endpoints?.http;
  if (!e) throw new Error(`${app}/${svc} has no http endpoint yet`);
  scope.addresses.add(e.address);
  return `http://${e.address}:${e.port}`;
};

const nodesOf = async (scope, app, svc) => {
  const { nodes } = await cpsJson(scope, ['service', 'nodes', svc, '--app', app]);
  for (const n of nodes) if (n.address) scope.addresses.add(n.address);
  return nodes;
};

// ---- WordPress: the install's second step over HTTP, then posts through the REST API

const PASSWORD = `Bench-${randomBytes(6).toString('hex')}`;

const paragraph = (i, j) =>
  `<!-- wp:paragraph --><p>Post ${i}, paragraph ${j}: a benchmark of the php service, where a front page ` +
  'is rendered by WordPress from its database on every request, as a blog without a page cache is, ' +
  'and the figures are set beside the same work done by hand.</p><!-- /wp:paragraph -->';

const installWordPress = async (base) => {
  const form = (o) => new URLSearchParams(o);
  let r = await fetch(`${base}/wp-admin/install.php?step=2`, {
    method: 'POST',
    body: form({
      weblog_title: 'cps bench',
      user_name: 'admin',
      admin_password: PASSWORD,
      admin_password2: PASSWORD,
      pw_weak: 'on',
      admin_email: 'admin@example.test',
      blog_public: '0',
    }),
    redirect: 'manual',
  });
  const body = await r.text();
  if (r.status !== 200 || !body.includes('<h1>Success!</h1>'))
    throw new Error(`WordPress install: HTTP ${r.status}: ${body.slice(0, 300)}`);
  r = await fetch(`${base}/wp-login.php`, {
    method: 'POST',
    headers: { cookie: 'wordpress_test_cookie=WP%20Cookie%20check' },
    body: form({
      log: 'admin',
      pwd: PASSWORD,
      'wp-submit': 'Log In',
      redirect_to: `${base}/wp-admin/`,
      testcookie: '1',
    }),
    redirect: 'manual',
  });
  await r.arrayBuffer();
  if (r.status !== 302) throw new Error(`WordPress login: HTTP ${r.status}`);
  const cookie = r.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const nonce = await (
    await fetch(`${base}/wp-admin/admin-ajax.php?action=rest-nonce`, { headers: { cookie } })
  ).text();
  if (!/^[0-9a-f]{10}$/.test(nonce)) throw new Error(`WordPress REST nonce: ${nonce.slice(0, 100)}`);
  for (let i = 1; i <= POSTS; i++) {
    r = await fetch(`${base}/wp-json/wp/v2/posts`, {
      method: 'POST',
      headers: { cookie, 'X-WP-Nonce': nonce, 'content-type': 'application/json' },
      body: JSON.stringify({
        title: `Bench post ${i}`,
        content: [1, 2, 3].map((j) => paragraph(i, j)).join('\n'),
        status: 'publish',
      }),
    });
    await r.arrayBuffer();
    if (r.status !== 201) throw new Error(`WordPress post ${i}: HTTP ${r.status}`);
  }
  const front = await fetch(`${base}/`);
  const html = await front.text();
  if (front.status !== 200 || !html.includes(`Bench post ${POSTS}`))
    throw new Error(`the front page after the posts: HTTP ${front.status}`);
  return html.length;
};

// ---- the service side

/**
 * `cps deploy examples/wordpress/manifest.json`, its output lines timestamped here: the upload, the
 * db and web services RUNNING, the command's end, then /wp-admin/install.php answering 200 (polled
 * every 50 ms from the moment the web service is RUNNING).
 */
const deployWordPress = async (scope) => {
  const t0 = now();
  const marks = {};
  const lines = [];
  await cps(scope, ['deploy', MANIFEST], {
    timeoutMs: 300_000,
    onLine: (l) => {
      const t = now() - t0;
      lines.push(`${(t / 1000).toFixed(2).padStart(6)} s  ${l.trimEnd()}`);
      if (/\bweb: uploaded\b/.test(l)) marks.upload ??= t;
      if (/^\s*db is RUNNING/.test(l)) marks.db ??= t;
      if (/^\s*web is RUNNING/.test(l)) marks.web ??= t;
    },
  });
  marks.command = now() - t0;
  const base = await until(() => urlOf(scope, 'wordpress'), Boolean, 60_000, 'the WordPress URL', {
    scope,
    every: 100,
  });
  await until(
    () => status(`${base}/wp-admin/install.php`, 5_000),
    (s) => s === 200,
    120_000,
    'install.php',
    { scope, every: 50 },
  );
  marks.served = now() - t0;
  lines.push(`${(marks.served / 1000).toFixed(2).padStart(6)} s  (bench) /wp-admin/install.php answers 200`);
  log(`cps deploy examples/wordpress/manifest.json:\n${lines.join('\n')}`);
  return { base, marks };
};

/** The arguments the plugin started the service's mariadbd with (from its command line). */
const serviceServerArgs = async (scope, address) => {
  const ns = namespaceOfAddress(address);
  if (!ns) throw new Error(`${address} is not a host-mode node address`);
  const pids = (await must('ip netns pids', 'ip', ['netns', 'pids', ns])).split('\n').filter(Boolean);
  for (const pid of pids) {
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

// ---- the servers by hand

const sqlAt = (port, statements, o = {}) =>
  must(
    `mariadb 127.0.0.1:${port}`,
    'mariadb',
    [
      '--no-defaults',
      '--protocol=TCP',
      '--host=127.0.0.1',
      `--port=${port}`,
      '--user=root',
      '--batch',
      '--skip-column-names',
    ],
    { input: statements, timeoutMs: o.timeoutMs ?? 60_000 },
  );

const literal = (s) => `'${String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The plugin's server arguments with this server's data directory, port, address, id and files. */
const PER_SERVER = ['--datadir', '--port', '--bind-address', '--server-id', '--secure-file-priv', '--socket'];
const keyOf = (a) => (a.includes('=') ? a.slice(0, a.indexOf('=')) : a);
const handDbArgs = (template, values) => {
  const kept = template.filter((a) => !PER_SERVER.includes(keyOf(a)) && keyOf(a) !== '--tmpdir');
  return [...kept, ...Object.entries(values).map(([k, v]) => `${k}=${v}`)];
};

const PHP_MODULES = [
  'mysqlnd',
  'pdo',
  'xml',
  'ctype',
  'curl',
  'dom',
  'exif',
  'fileinfo',
  'gd',
  'iconv',
  'intl',
  'mbstring',
  'mysqli',
  'pdo_mysql',
  'posix',
  'simplexml',
  'sockets',
  'tokenizer',
  'xmlreader',
  'xmlwriter',
  'zip',
];

const fastcgiBlock = (pass) => `    location ~ \\.php$ {
      try_files $uri =404;
      fastcgi_pass ${pass};
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param DOCUMENT_ROOT $document_root;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param REQUEST_SCHEME $scheme;
      fastcgi_param HTTPS $https if_not_empty;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param SERVER_SOFTWARE nginx;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param REMOTE_PORT $remote_port;
      fastcgi_param SERVER_ADDR $server_addr;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param SERVER_NAME $host;
      fastcgi_param REDIRECT_STATUS 200;
      fastcgi_param HTTP_PROXY "";
    }`;

/** The first lines of an nginx by hand in directory `ngx`, up to its `http {` block's servers. */
const handNginxHead = (ngx) => [
  'worker_processes auto;',
  `pid ${join(ngx, 'nginx.pid')};`,
  `error_log ${join(ngx, 'error.log')} warn;`,
  'events { worker_connections 1024; }',
  'http {',
  '  include /etc/nginx/mime.types;',
  '  default_type application/octet-stream;',
  '  sendfile on;',
  '  tcp_nopush on;',
  '  keepalive_timeout 65s;',
  `  access_log ${join(ngx, 'access.log')} combined buffer=4k flush=1s;`,
  ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
    (t) => `  ${t}_temp_path ${join(ngx, 'tmp', t)};`,
  ),
];

const site = (port, root, pass, address = '127.0.0.1') => `  server {
    listen ${address}:${port} backlog=4096;
    root ${root};
    index index.php index.html;
    location / {
      try_files $uri $uri/ /index.php$is_args$args;
    }
    location ~ /\\.(?!well-known/) {
      deny all;
    }
${fastcgiBlock(pass)}
  }`;

/**
 * WordPress by hand, from nothing: the archive unpacked, a MariaDB data directory made and its
 * server started with the plugin's arguments (as the workload user), the database and its user,
 * three php-fpm pools (4 static children each, opcache on, the workers as the workload user; the
 * third on the service's own php.ini, `serviceIni`, with this directory in place of its node's) and
 * one nginx (2 workers) serving the WordPress copy through the first pool (`wp1`), the first two
 * round robin (`wp2`) or the third (`wp3`), and the small app's first version (`small`, for the
 * static file). Timed until install.php answers 200; `stopHand` ends it.
 */
const startHand = async (scope, name, template, serviceIni) => {
  const user = workloadUser();
  const dir = join(scope.root, name);
  const hand = { dir, servers: [], ports: [] };
  scope.hand = hand;
  const port = async () => {
    const p = await ports.take();
    hand.ports.push(p);
    return p;
  };
  const t0 = now();
  const phases = {};
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  // the code
  const wp = join(dir, 'wp');
  mkdirSync(wp, { mode: 0o755 });
  await must('tar -xzf', 'tar', ['-xzf', ARCHIVE, '-C', wp], { timeoutMs: 120_000 });
  phases.unpack = now() - t0;
  // the database
  const db = join(dir, 'db');
  for (const d of [db, join(db, 'tmp'), join(db, 'files')]) {
    mkdirSync(d, { mode: 0o750 });
    chownSync(d, user.uid, user.gid);
  }
  const dbPort = await port();
  await must(
    'mariadb-install-db',
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${join(db, 'data')}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ],
    {
      user,
      cwd: db,
      env: { PATH: process.env.PATH, TMPDIR: join(db, 'tmp') },
      timeoutMs: 120_000,
    },
  );
  const args = handDbArgs(template, {
    '--datadir': join(db, 'data'),
    '--port': dbPort,
    '--bind-address': '127.0.0.1',
    '--server-id': 4242,
    '--secure-file-priv': join(db, 'files'),
    '--socket': join(db, 'mysqld.sock'),
    '--tmpdir': join(db, 'tmp'),
  });
  const mariadbd = new Server('mariadbd', MARIADBD, args, {
    logFile: join(db, 'mariadbd.log'),
    cwd: db,
    user,
    env: { TMPDIR: join(db, 'tmp') },
  });
  hand.servers.push(mariadbd);
  await until(
    async () => {
      if (!mariadbd.running) throw new Error(`mariadbd exited: ${mariadbd.tail()}`);
      return sqlAt(dbPort, 'SELECT 1', { timeoutMs: 5_000 });
    },
    (out) => out.trim() === '1',
    60_000,
    'the hand mariadbd',
    { scope, every: 50 },
  );
  const dbPassword = randomBytes(12).toString('hex');
  await sqlAt(
    dbPort,
    [
      'SET GLOBAL read_only = 0',
      'CREATE DATABASE web',
      `CREATE USER 'wp'@'127.0.0.1' IDENTIFIED BY ${literal(dbPassword)}`,
      "GRANT ALL PRIVILEGES ON web.* TO 'wp'@'127.0.0.1'",
      '',
    ].join(';\n'),
  );
  phases.db = now() - t0;
  // php-fpm
  const php = join(dir, 'php');
  for (const d of [php, join(php, 'conf.d')]) mkdirSync(d, { mode: 0o755 });
  mkdirSync(join(php, 'tmp'), { mode: 0o700 });
  chownSync(join(php, 'tmp'), user.uid, user.gid);
  const extDir = readdirSync('/usr/lib/php')
    .filter((d) => /^\d{8}$/.test(d) && existsSync(join('/usr/lib/php', d, 'opcache.so')))
    .sort()
    .pop();
  writeFileSync(
    join(php, 'php.ini'),
    [
      'memory_limit = 128M',
      'max_execution_time = 30',
      'display_errors = Off',
      'log_errors = On',
      'error_reporting = E_ALL & ~E_DEPRECATED & ~E_STRICT',
      'expose_php = Off',
      'date.timezone = UTC',
      `sys_temp_dir = ${join(php, 'tmp')}`,
      `upload_tmp_dir = ${join(php, 'tmp')}`,
      `session.save_path = ${join(php, 'tmp')}`,
      ...PHP_MODULES.filter((m) => existsSync(join('/usr/lib/php', extDir, `${m}.so`))).map(
        (m) => `extension = ${m}`,
      ),
      'zend_extension = opcache',
      'opcache.enable = 1',
      'opcache.memory_consumption = 128',
      'opcache.max_accelerated_files = 20000',
      '',
    ].join('\n'),
  );
  const secret = randomBytes(24).toString('hex');
  const fpmPorts = [];
  // the third pool runs on the service's own php.ini, its node's directory replaced by this one
  for (const d of ['tmp', 'sessions']) {
    mkdirSync(join(dir, d), { mode: 0o700 });
    chownSync(join(dir, d), user.uid, user.gid);
  }
  writeFileSync(join(php, 'service.ini'), serviceIni.text.replaceAll(serviceIni.work, dir));
  for (const i of [1, 2, 3]) {
    const p = await port();
    fpmPorts.push(p);
    const conf = join(php, `fpm-${i}.conf`);
    writeFileSync(
      conf,
      [
        '[global]',
        `pid = ${join(php, `fpm-${i}.pid`)}`,
        `error_log = ${join(php, `fpm-${i}.log`)}`,
        'daemonize = no',
        '',
        '[wp]',
        `listen = 127.0.0.1:${p}`,
        `user = ${WORKLOAD_USER}`,
        `group = ${WORKLOAD_USER}`,
        'pm = static',
        'pm.max_children = 4',
        'clear_env = yes',
        'catch_workers_output = yes',
        `env[CPS_SECRET] = ${secret}`,
        'env[CPS_SERVICE] = web',
        'env[MYSQL_HOST] = 127.0.0.1',
        `env[MYSQL_PORT] = ${dbPort}`,
        'env[MYSQL_DATABASE] = web',
        'env[MYSQL_USER] = wp',
        `env[MYSQL_PASSWORD] = ${dbPassword}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    hand.servers.push(
      new Server(
        `php-fpm ${i}`,
        fpmBinary(),
        ['-F', '-y', conf, '-c', join(php, i === 3 ? 'service.ini' : 'php.ini')],
        {
          logFile: join(php, `fpm-${i}.out`),
          cwd: php,
          env: { PHP_INI_SCAN_DIR: join(php, 'conf.d') },
        },
      ),
    );
  }
  // nginx
  const ngx = join(dir, 'nginx');
  mkdirSync(join(ngx, 'tmp'), { recursive: true, mode: 0o755 });
  hand.web = { small: await port(), wp1: await port(), wp2: await port(), wp3: await port() };
  const nginxConf = (smallRoot) =>
    [
      ...handNginxHead(ngx),
      `  upstream php_two { server 127.0.0.1:${fpmPorts[0]}; server 127.0.0.1:${fpmPorts[1]}; }`,
      site(hand.web.small, smallRoot, `127.0.0.1:${fpmPorts[0]}`),
      site(hand.web.wp1, wp, `127.0.0.1:${fpmPorts[0]}`),
      site(hand.web.wp2, wp, 'php_two'),
      site(hand.web.wp3, wp, `127.0.0.1:${fpmPorts[2]}`),
      '}',
      '',
    ].join('\n');
  writeFileSync(join(ngx, 'nginx.conf'), nginxConf(scope.smallRoot));
  const nginx = new Server(
    'nginx',
    NGINX,
    ['-p', ngx, '-c', join(ngx, 'nginx.conf'), '-e', join(ngx, 'error.log'), '-g', 'daemon off;'],
    { logFile: join(ngx, 'nginx.out'), cwd: ngx },
  );
  hand.servers.push(nginx);
  /** A code switch by hand: the small app's root changed in nginx.conf, then nginx reloaded (HUP). */
  hand.switchSmall = (root) => {
    writeFileSync(join(ngx, 'nginx.conf'), nginxConf(root));
    process.kill(nginx.child.pid, 'SIGHUP');
  };
  hand.base = `http://127.0.0.1:${hand.web.wp1}`;
  await until(
    async () => {
      const dead = hand.servers.find((s) => !s.running);
      if (dead) throw new Error(`${dead.name} exited: ${dead.tail()}`);
      return status(`${hand.base}/wp-admin/install.php`, 5_000);
    },
    (s) => s === 200,
    60_000,
    'install.php by hand',
    { scope, every: 50 },
  );
  phases.served = now() - t0;
  hand.ms = phases.served;
  hand.dbPort = dbPort;
  log(
    `by hand: unpacked ${(phases.unpack / 1000).toFixed(2)} s, database ready ${(phases.db / 1000).toFixed(2)} s, ` +
      `install.php 200 at ${(phases.served / 1000).toFixed(2)} s`,
  );
  return hand;
};

/**
 * nginx by hand inside a node's network namespace (`ip netns exec`: its network only, the host's
 * files), serving `root` on the node's `address:port` with the hand configuration's settings: the
 * same server on the same path from the host as the service's proxy. `stop()` ends it by pid.
 */
const startHandOnNode = async (scope, ns, address, port, root) => {
  const ngx = join(scope.root, 'nginx-on-node');
  mkdirSync(join(ngx, 'tmp'), { recursive: true, mode: 0o755 });
  const conf = [...handNginxHead(ngx), site(port, root, '127.0.0.1:9', address), '}', ''].join('\n');
  writeFileSync(join(ngx, 'nginx.conf'), conf);
  const nginx = new Server(
    'nginx',
    'ip',
    [
      'netns',
      'exec',
      ns,
      NGINX,
      '-p',
      ngx,
      '-c',
      join(ngx, 'nginx.conf'),
      '-e',
      join(ngx, 'error.log'),
      '-g',
      'daemon off;',
    ],
    { logFile: join(ngx, 'nginx.out'), cwd: ngx },
  );
  const url = `http://${address}:${port}/hello.txt`;
  await until(
    async () => {
      if (!nginx.running) throw new Error(`nginx on the node exited: ${nginx.tail()}`);
      return status(url, 2_000);
    },
    (st) => st === 200,
    20_000,
    "nginx by hand on the proxy's node",
    { scope, every: 50 },
  );
  return {
    url,
    stop: async () => {
      await nginx.stop();
      rmSync(ngx, { recursive: true, force: true });
    },
  };
};

/** Every server by hand stopped by its pid (nginx first, the database last), its directory removed. */
const stopHand = async (hand) => {
  for (const s of [...hand.servers].reverse()) await s.stop();
  hand.servers = [];
  for (const p of hand.ports) ports.release(p);
  rmSync(hand.dir, { recursive: true, force: true });
};

// ---- the small app of the static file and the code switch

const writeSmallApp = (dir, version) => {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'hello.txt'), STATIC_BODY, { mode: 0o644 });
  writeFileSync(
    join(dir, 'index.php'),
    `<?php\nheader('Content-Type: text/plain');\necho "small app, version ${version}\\n";\n`,
    { mode: 0o644 },
  );
};

// ---- where the CPU goes: every process's CPU time (from /proc) before and after a measurement

const TICK_MS = 10; // USER_HZ is 100 on Linux
/**
 * What a process is, for the CPU breakdown: a server, wrk, the access log's reader, or a process of
 * the platform; ours when it runs from this case's directory (`mine`: every node's work directory,
 * every server by hand and wrk are there), else someone else's.
 */
const kindOf = (pid, comm, mine) => {
  let kind = 'other';
  if (comm.startsWith('php-fpm')) kind = 'php-fpm';
  else if (['nginx', 'mariadbd', 'wrk', 'cat'].includes(comm)) kind = comm;
  else if (comm === 'node' || comm.startsWith('node')) kind = 'node';
  else return 'other';
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  if (kind === 'node') {
    if (cmdline.includes('bench/run.mjs')) return 'bench';
    if (cmdline.includes('agent-runtime')) kind = 'agents';
    else if (cmdline.includes('manager-runtime')) kind = 'managers';
    else if (cmdline.includes('director')) kind = 'director';
  }
  let cwd = '';
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {}
  return mine && (cwd.startsWith(mine) || cmdline.includes(mine)) ? kind : `${kind} (not ours)`;
};

const cpuSnapshot = (mine, previous) => {
  const procs = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ticks = Number(fields[11]) + Number(fields[12]);
      procs.set(pid, { ticks, kind: previous?.procs.get(pid)?.kind ?? kindOf(pid, comm, mine) });
    } catch {}
  }
  const [, ...cpu] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7];
  return { procs, busy, softirq: cpu[5] + cpu[6], at: now() };
};

/** CPU ms by kind of process between two snapshots. */
const cpuBy = (a, b) => {
  const by = {};
  for (const [pid, p] of b.procs) {
    const d = (p.ticks - (a.procs.get(pid)?.ticks ?? 0)) * TICK_MS;
    if (d > 0) by[p.kind] = (by[p.kind] ?? 0) + d;
  }
  return by;
};

/** CPU seconds by kind of process between two snapshots, and the whole machine's busy seconds. */
const cpuText = (a, b) => {
  const by = cpuBy(a, b);
  const wall = (b.at - a.at) / 1000;
  const parts = Object.entries(by)
    .filter(([, ms]) => ms >= 50)
    .sort(([, x], [, y]) => y - x)
    .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)}`);
  const sec = (ticks) => ((ticks * TICK_MS) / 1000).toFixed(1);
  return `CPU s over ${wall.toFixed(1)} s: machine busy ${sec(b.busy - a.busy)} of ${(2 * wall).toFixed(1)} (irq+softirq ${sec(b.softirq - a.softirq)}); ${parts.join(', ')}`;
};

/** CPU ms of `kind` per request answered in a measurement's CPU window. */
const cpuPer = (w, kind) => (w.cpu?.[kind] ?? NaN) / (w.rps * w.cpuWindowS);

// ---- one side of a pair at a time, the order alternating with the run

const pair = async (runIndex, sides) => {
  const out = {};
  for (const which of runIndex % 2 === 0 ? ['cps', 'raw'] : ['raw', 'cps']) out[which] = await sides[which]();
  return out;
};

/** A short wrk (warm-up, not counted), then the measured one; its figures and CPU use logged. */
const measure = async (what, url, s, seconds, o = {}) => {
  o = { ...o, cwd: s.mine };
  await wrk(url, s.warm, o);
  // the CPU counted while wrk runs (from 0.5 s after its start to 0.5 s before its end)
  const started = now();
  const running = wrk(url, seconds, o);
  running.catch(() => undefined);
  await sleep(500);
  const a = cpuSnapshot(s.mine);
  await sleep(Math.max(0, seconds * 1000 - 500 - (now() - started)));
  const b = cpuSnapshot(s.mine, a);
  const w = await running;
  w.cpu = cpuBy(a, b);
  w.cpuWindowS = (b.at - a.at) / 1000;
  log(
    `${what}: ${w.rps.toFixed(1)} req/s, p99 ${w.p99.toFixed(1)} ms` +
      (w.non2xx || w.socketErrors ? `, ${w.non2xx} non-2xx, ${w.socketText}` : '') +
      `; ${cpuText(a, b)}`,
  );
  return w;
};

const budget = { prepareMs: 300_000, runMs: 720_000 };

export const phpBench = {
  id: 'php',
  letter: 'r',
  title:
    'the php service (host mode, a real platform and `cps`): static file, deploy of WordPress, its front page with 1 and 2 backends and the micro-cache, a code switch under load; next to nginx + php-fpm + MariaDB by hand',
  fixture: 'none',
  unavailable,
  prepareTimeoutMs: budget.prepareMs,
  runTimeoutMs: budget.runMs,
  allowance: { prepareS: 300, runS: 480 },
  figures: [
    {
      key: 'staticRps',
      label: 'r. static 13 B file from the host: proxy vs nginx by hand on the host (loopback)',
      unit: 'req/s',
      target: { on: 'ratio', op: '>=', value: 0.9 },
    },
    { key: 'staticP99', label: 'r. static 13 B file, p99', unit: 'ms', target: null },
    { key: 'staticCpu', label: 'r. static 13 B file: nginx CPU per request', unit: 'µs', target: null },
    {
      key: 'staticInside',
      label: "r. static 13 B file, wrk inside the proxy node's namespace: vs nginx by hand",
      unit: 'req/s',
      target: null,
    },
    {
      key: 'staticSamePath',
      label: "r. static 13 B file from the host: proxy vs nginx by hand on the proxy's node (same path)",
      unit: 'req/s',
      target: { on: 'ratio', op: '>=', value: 0.9 },
    },
    {
      key: 'deploy',
      label: 'r. deploy of WordPress to install.php 200: cps deploy vs by hand from nothing',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 5_000 },
    },
    {
      key: 'deployUpload',
      label: 'r. deploy phase: archive uploaded',
      unit: 'ms',
      target: null,
      baseline: false,
    },
    { key: 'deployDb', label: 'r. deploy phase: db RUNNING', unit: 'ms', target: null, baseline: false },
    { key: 'deployWeb', label: 'r. deploy phase: web RUNNING', unit: 'ms', target: null, baseline: false },
    {
      key: 'deployCommand',
      label: 'r. deploy phase: cps deploy returned',
      unit: 'ms',
      target: null,
      baseline: false,
    },
    {
      key: 'wp1Rps',
      label: 'r. WordPress front page, one backend: vs nginx + php-fpm (4) by hand',
      unit: 'req/s',
      target: { on: 'ratio', op: '>=', value: 0.9 },
    },
    { key: 'wp1P99', label: 'r. WordPress front page, one backend, p99', unit: 'ms', target: null },
    { key: 'wp1Cpu', label: 'r. front page, one backend: php-fpm CPU per request', unit: 'ms', target: null },
    {
      key: 'wp1Ini',
      label: "r. front page by hand on the service's php.ini: vs by hand on its own",
      unit: 'req/s',
      target: null,
    },
    {
      key: 'wp1IniCpu',
      label: "r. the same, php-fpm CPU per request: service's php.ini vs its own",
      unit: 'ms',
      target: null,
    },
    {
      key: 'wp2Rps',
      label: 'r. front page, two backend nodes: vs two php-fpm pools round robin by hand',
      unit: 'req/s',
      target: null,
    },
    { key: 'wp2P99', label: 'r. front page, two backend nodes, p99', unit: 'ms', target: null },
    {
      key: 'addBackends',
      label: 'r. add_nodes of 2 backends to both serving PHP',
      unit: 'ms',
      target: null,
      baseline: false,
    },
    {
      key: 'cacheRps',
      label: `r. front page, micro-cache (set_cache ${CACHE_SECONDS} s): vs the service uncached (one backend)`,
      unit: 'req/s',
      target: null,
    },
    { key: 'cacheP99', label: 'r. front page, micro-cache, p99: vs uncached', unit: 'ms', target: null },
    {
      key: 'switchFailed',
      label: 'r. code switch under wrk: failed requests (non-2xx + socket errors): vs nginx reloaded by hand',
      unit: 'requests',
      target: { on: 'cps', op: '<=', value: 0 },
      ratio: false,
    },
    {
      key: 'switchP99',
      label: 'r. code switch under wrk, p99: the switch window vs a window without',
      unit: 'ms',
      target: null,
    },
    {
      key: 'switchMax',
      label: 'r. code switch under wrk, max latency: vs a window without',
      unit: 'ms',
      target: null,
    },
    {
      key: 'switchServed',
      label: 'r. code switch: enable called to the new version served',
      unit: 'ms',
      target: null,
      baseline: false,
    },
    {
      key: 'load',
      label: 'r. load average (1 min) at the run start, 2 cores',
      unit: 'load',
      target: null,
      baseline: false,
    },
  ],

  async prepare(_fx, opts) {
    const scope = openScope();
    try {
      const t0 = now();
      await must('examples/wordpress/build.sh', 'sh', [join(WORDPRESS, 'build.sh')], {
        env: process.env,
        timeoutMs: 240_000,
      });
      await PlatformHome.init(scope.home, {
        env: scope.env,
        natsPort: await platformPort(),
        directorPort: await platformPort(),
      });
      scope.up = true;
      await cps(scope, ['up'], { timeoutMs: 180_000 });
      log(`platform up in ${((now() - t0) / 1000).toFixed(1)} s (CPS_HOME under ${scope.root})`);
      // the small app: its first version deployed, served by the service and by hand
      const small = join(scope.root, 'small');
      writeSmallApp(join(small, 'v1'), 1);
      scope.smallRoot = join(small, 'v1');
      await must('tar', 'tar', ['-czf', join(small, 'v1.tar.gz'), '-C', join(small, 'v1'), '.']);
      writeFileSync(
        join(small, 'manifest.json'),
        JSON.stringify({
          Application: 'php-bench',
          Services: [{ ServiceName: 'web', Type: 'php', Start: 1, Archive: 'v1.tar.gz' }],
        }),
      );
      await cps(scope, ['deploy', join(small, 'manifest.json')], { timeoutMs: 300_000 });
      const smallUrl = await until(() => urlOf(scope, 'php-bench'), Boolean, 60_000, 'the small app URL', {
        scope,
      });
      await until(
        () => fetch(`${smallUrl}/hello.txt`).then((r) => r.text()),
        (b) => b === STATIC_BODY,
        120_000,
        'the static file',
        { scope },
      );
      log(`small app served at ${smallUrl}, ${((now() - t0) / 1000).toFixed(1)} s after the start`);
      return {
        scope,
        small,
        smallUrl,
        s: { ...(opts.quick ? QUICK : SECONDS), mine: scope.root },
        version: 1,
      };
    } catch (e) {
      await closeScope(scope);
      throw e;
    }
  },

  async run(state, runIndex) {
    const { scope, s } = state;
    const [load] = loadavg();
    log(
      `run ${runIndex + 1}: load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(', ')}`,
    );
    const f = { load: { cps: load, raw: NaN } };
    let hand;
    let deployed = false;
    try {
      // 5. deploy (the service), then the same from nothing by hand
      deployed = true;
      const d = await deployWordPress(scope);
      const dbInfo = await cpsJson(scope, ['service', 'info', 'db', '--app', 'wordpress']);
      const dbAddress = dbInfo.endpoints?.mysql?.address;
      scope.addresses.add(dbAddress);
      const template = await serviceServerArgs(scope, dbAddress);
      const webInfo = await cpsJson(scope, ['service', 'info', 'web', '--app', 'wordpress']);
      const work = join(scope.home, 'cloud', 'nodes', webInfo.endpoints.http.nodeId, 'work');
      const serviceIni = { work, text: readFileSync(join(work, 'php.ini'), 'utf8') };
      hand = await startHand(scope, `hand-${runIndex}`, template, serviceIni);
      f.deploy = { cps: d.marks.served, raw: hand.ms };
      f.deployUpload = { cps: d.marks.upload, raw: NaN };
      f.deployDb = { cps: d.marks.db, raw: NaN };
      f.deployWeb = { cps: d.marks.web, raw: NaN };
      f.deployCommand = { cps: d.marks.command, raw: NaN };

      // WordPress installed over HTTP with 10 posts, its database copied to the hand server
      let t = now();
      const size = await installWordPress(d.base);
      const dump = await cps(scope, ['mysql', 'dump', 'db', '--app', 'wordpress', '--database', 'web'], {
        timeoutMs: 120_000,
      });
      await sqlAt(hand.dbPort, `DROP DATABASE web;\nCREATE DATABASE web;\nUSE web;\n${dump}`, {
        timeoutMs: 120_000,
      });
      const handSize = (await fetch(`${hand.base}/`).then((r) => r.text())).length;
      log(
        `WordPress installed with ${POSTS + 1} posts and copied by hand (${(dump.length / 1024).toFixed(0)} KiB of dump) in ` +
          `${((now() - t) / 1000).toFixed(1)} s; front page ${size} B (service), ${handSize} B (by hand)`,
      );

      // 1. the static file
      const st = await pair(runIndex, {
        cps: () => measure('static, service', `${state.smallUrl}/hello.txt`, s, s.static),
        raw: () => measure('static, by hand', `http://127.0.0.1:${hand.web.small}/hello.txt`, s, s.static),
      });
      f.staticRps = { cps: st.cps.rps, raw: st.raw.rps };
      f.staticP99 = { cps: st.cps.p99, raw: st.raw.p99 };
      f.staticCpu = { cps: cpuPer(st.cps, 'nginx') * 1000, raw: cpuPer(st.raw, 'nginx') * 1000 };
      // the same proxy with wrk inside its node's network namespace: no veth or bridge on the way
      const inside = await measure(
        "static, service, wrk inside the proxy node's namespace",
        `${state.smallUrl}/hello.txt`,
        s,
        s.static,
        { netns: namespaceOfAddress(new URL(state.smallUrl).hostname) },
      );
      f.staticInside = { cps: inside.rps, raw: st.raw.rps };
      // the same nginx by hand on the proxy's own node: the same path from the host (two veths and the
      // bridge's namespace), so the ratio is the service's configuration alone
      const smallAt = new URL(state.smallUrl);
      const onNode = await startHandOnNode(
        scope,
        namespaceOfAddress(smallAt.hostname),
        smallAt.hostname,
        Number(smallAt.port) + 10,
        scope.smallRoot,
      );
      try {
        const same = await pair(runIndex, {
          cps: () => measure('static, service (again)', `${state.smallUrl}/hello.txt`, s, s.static),
          raw: () => measure("static, by hand on the proxy's node", onNode.url, s, s.static),
        });
        f.staticSamePath = { cps: same.cps.rps, raw: same.raw.rps };
      } finally {
        await onNode.stop();
      }

      // 2. the front page, one backend (the proxy's own php-fpm)
      const one = await pair(runIndex, {
        cps: () => measure('front page, service, one backend', `${d.base}/`, s, s.page),
        raw: () => measure('front page, by hand, one php-fpm', `${hand.base}/`, s, s.page),
      });
      f.wp1Rps = { cps: one.cps.rps, raw: one.raw.rps };
      f.wp1P99 = { cps: one.cps.p99, raw: one.raw.p99 };
      f.wp1Cpu = { cps: cpuPer(one.cps, 'php-fpm'), raw: cpuPer(one.raw, 'php-fpm') };
      // where the difference comes from: the hand setup on the service's php.ini
      const ini = await measure(
        "front page, by hand on the service's php.ini",
        `http://127.0.0.1:${hand.web.wp3}/`,
        s,
        s.page,
      );
      f.wp1Ini = { cps: ini.rps, raw: one.raw.rps };
      f.wp1IniCpu = { cps: cpuPer(ini, 'php-fpm'), raw: cpuPer(one.raw, 'php-fpm') };

      // 4. the micro-cache on the proxy, for anonymous requests
      t = now();
      await cps(scope, [
        'service',
        'call',
        'web',
        'set_cache',
        '--app',
        'wordpress',
        '--arg',
        `seconds=${CACHE_SECONDS}`,
      ]);
      await until(
        () => fetch(`${d.base}/`).then(async (r) => (await r.arrayBuffer(), r.headers.get('x-cache'))),
        (x) => x === 'HIT',
        60_000,
        'an X-Cache: HIT',
        { scope, every: 100 },
      );
      log(
        `set_cache ${CACHE_SECONDS}: answers from the cache ${((now() - t) / 1000).toFixed(1)} s after the call`,
      );
      const cached = await measure('front page, service, micro-cache', `${d.base}/`, s, s.cache);
      f.cacheRps = { cps: cached.rps, raw: one.cps.rps };
      f.cacheP99 = { cps: cached.p99, raw: one.cps.p99 };
      await cps(scope, ['service', 'call', 'web', 'set_cache', '--app', 'wordpress', '--arg', 'seconds=0']);
      await until(
        () => fetch(`${d.base}/`).then(async (r) => (await r.arrayBuffer(), r.headers.get('x-cache'))),
        (x) => x === null,
        60_000,
        'no X-Cache header',
        { scope, every: 100 },
      );

      // 3. two backend nodes
      t = now();
      await cps(scope, ['service', 'add-nodes', 'web', '--app', 'wordpress', '--backend', '2'], {
        timeoutMs: 300_000,
      });
      const added = now() - t;
      let running;
      const backends = await until(
        async () =>
          (await nodesOf(scope, 'wordpress', 'web')).filter(
            (n) => n.role === 'backend' && n.state === 'running',
          ),
        (b) => b.length === 2,
        120_000,
        'two running backends',
        { scope },
      );
      running = now() - t;
      // the proxy sends PHP to both: each backend's access log counts requests
      await until(
        async () => {
          await Promise.all(Array.from({ length: 8 }, () => status(`${d.base}/`)));
          const perf = await cpsJson(scope, [
            'service',
            'call',
            'web',
            'get_service_performance',
            '--app',
            'wordpress',
          ]);
          return perf.nodes.filter((n) => n.role === 'backend' && (n.http_requests_total ?? 0) > 0).length;
        },
        (n) => n === 2,
        120_000,
        'both backends serving',
        { scope, every: 500 },
      );
      const serving = now() - t;
      f.addBackends = { cps: serving, raw: NaN };
      log(
        `add_nodes backend 2: the command returned in ${(added / 1000).toFixed(1)} s, both backends ` +
          `(${backends.map((b) => b.address).join(', ')}) running at ${(running / 1000).toFixed(1)} s, ` +
          `serving by ${(serving / 1000).toFixed(1)} s after the call (polled every ~1-2 s)`,
      );
      const two = await pair(runIndex, {
        cps: () => measure('front page, service, two backend nodes', `${d.base}/`, s, s.page),
        raw: () =>
          measure('front page, by hand, two php-fpm pools', `http://127.0.0.1:${hand.web.wp2}/`, s, s.page),
      });
      f.wp2Rps = { cps: two.cps.rps, raw: two.raw.rps };
      f.wp2P99 = { cps: two.cps.p99, raw: two.raw.p99 };

      // 6. a new version of the small app enabled while wrk runs
      Object.assign(f, await codeSwitch(state, runIndex, hand));
      return f;
    } finally {
      if (hand) {
        await stopHand(hand).catch((e) => log(`stopping the hand servers: ${e}`));
        scope.hand = undefined;
      }
      if (deployed && !scope.closed) {
        const t = now();
        await cps(scope, ['app', 'delete', 'wordpress'], { timeoutMs: 180_000 }).then(
          () => log(`cps app delete wordpress: ${((now() - t) / 1000).toFixed(1)} s`),
          (e) => log(`cps app delete wordpress: ${e.message}`),
        );
      }
    }
  },

  dispose: (state) => closeScope(state.scope),
};

/**
 * A new version uploaded (not enabled), a window of wrk without a switch, then a window of the same
 * length during which `cps php enable` makes it the current code (2 s in). wrk's script counts the
 * answers of each version; a poller in this process notes when the new one is first served.
 */
const codeSwitch = async (state, runIndex, hand) => {
  const { scope, small, smallUrl, s } = state;
  const next = state.version + 1;
  const dir = join(small, `v${next}`);
  writeSmallApp(dir, next);
  const version = (await cps(scope, ['php', 'upload', 'web', dir, '--app', 'php-bench'])).trim();
  const script = join(small, 'count.lua');
  writeFileSync(script, COUNT_SCRIPT);
  const marker = `version ${next}\n`;
  const url = `${smallUrl}/`;
  await wrk(url, s.warm);
  const steady = await wrk(url, s.switch, { script, scriptArgs: [marker] });
  const t0 = now();
  const during = wrk(url, s.switch, { script, scriptArgs: [marker] });
  await sleep(2_000);
  const called = now();
  await cps(scope, ['php', 'enable', 'web', version, '--app', 'php-bench']);
  const enabled = now() - called;
  let served = NaN;
  const polled = { ok: 0, failed: 0 };
  while (now() - t0 < s.switch * 1000 + 30_000 && !scope.closed) {
    const body = await fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
      async (r) => (r.status === 200 ? r.text() : (polled.failed++, '')),
      () => (polled.failed++, ''),
    );
    if (body) polled.ok++;
    if (body === `small app, version ${next}\n`) {
      served = now() - called;
      break;
    }
    await sleep(50);
  }
  const w = await during;
  state.version = next;
  const failed = w.non2xx + w.socketErrors;
  // the same by hand: the new version's directory made nginx's root, nginx reloaded, under wrk
  const handUrl = `http://127.0.0.1:${hand.web.small}/`;
  await wrk(handUrl, s.warm);
  const handDuring = wrk(handUrl, s.switch, { script, scriptArgs: [marker] });
  await sleep(2_000);
  hand.switchSmall(dir);
  const hw = await handDuring;
  log(
    `code switch (run ${runIndex + 1}) to ${version}: enable returned in ${(enabled / 1000).toFixed(2)} s, new version ` +
      `served ${Number.isFinite(served) ? `${(served / 1000).toFixed(2)} s` : 'NOT seen'} after the call; wrk: ` +
      `${w.requests} requests (old ${w.counts.old ?? '?'}, new ${w.counts.fresh ?? '?'}, other ${w.counts.bad ?? '?'}), ` +
      `${w.non2xx} non-2xx, ${w.socketText}; without a switch: ${steady.requests} requests, ${steady.non2xx} non-2xx, ` +
      `${steady.socketText}; poller: ${polled.failed} failed; by hand (nginx reloaded with the new root): ` +
      `${hw.requests} requests (old ${hw.counts.old ?? '?'}, new ${hw.counts.fresh ?? '?'}, other ${hw.counts.bad ?? '?'}), ` +
      `${hw.non2xx} non-2xx, ${hw.socketText}, p99 ${hw.p99.toFixed(1)} ms, max ${hw.max.toFixed(1)} ms`,
  );
  if (!(w.counts.fresh > 0)) throw new Error('wrk saw no answer of the new version during the switch window');
  return {
    switchFailed: { cps: failed, raw: hw.non2xx + hw.socketErrors },
    switchP99: { cps: w.p99, raw: steady.p99 },
    switchMax: { cps: w.max, raw: steady.max },
    switchServed: { cps: served, raw: NaN },
  };
};
