import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { CpsError } from '@cps/core';
import { anonymous, call } from './director-client.js';
import { saveContext } from './config.js';
import { json } from './output.js';
import { appCommands } from './commands/apps.js';
import { authCommands } from './commands/auth.js';
import { mysqlCommands } from './commands/mysql.js';
import { storageCommands } from './commands/storage.js';
import { observeCommands } from './commands/observe.js';
import { phpCommands } from './commands/php.js';
import { examples, type GlobalFlags } from './commands/shared.js';
import type { PlatformHealth, PlatformHome } from '@cps/platform';
import { defaultHome } from './config.js';

/** The platform library, loaded by the commands that need it (the others start faster). */
const platformLib = () => import('@cps/platform');
const localCloud = async (home: PlatformHome) => {
  const { LocalCloud } = await import('@cps/clouds');
  const network = home.network();
  return new LocalCloud({
    dir: join(home.dir, 'cloud'),
    command: () => ({ command: process.execPath, args: [] }),
    ...(network.mode === 'host'
      ? { host: { nats: { address: network.address ?? '', port: home.info().natsPort }, hide: home.dir } }
      : {}),
  });
};

/**
 * The mode of the local cloud `cps up` starts: `CPS_LOCAL_MODE` (`host` or `process`) when set,
 * else host mode when this machine allows it (root, and the tools of iproute2, nftables and
 * util-linux). Asking for host mode where it cannot run is an error, not a silent fallback.
 */
const chooseMode = async (): Promise<{ mode: 'host' | 'process'; why?: string }> => {
  const { LocalCloud } = await import('@cps/clouds');
  const asked = process.env['CPS_LOCAL_MODE'];
  if (asked !== undefined && asked !== 'host' && asked !== 'process')
    throw new CpsError('validation', `CPS_LOCAL_MODE must be host or process, not ${JSON.stringify(asked)}`, [
      { path: 'CPS_LOCAL_MODE', code: 'invalid_value', message: 'host or process' },
    ]);
  const unavailable = LocalCloud.hostModeUnavailable();
  if (asked === 'host' && unavailable)
    throw new CpsError('unavailable', `host mode was asked for (CPS_LOCAL_MODE=host) but ${unavailable}`);
  if (asked === 'process') return { mode: 'process', why: 'CPS_LOCAL_MODE=process' };
  return unavailable ? { mode: 'process', why: `host mode ${unavailable}` } : { mode: 'host' };
};

const describeMode = (home: PlatformHome): string => {
  const n = home.network();
  return n.mode === 'host'
    ? `host mode: each node a network namespace with its own address in 198.18.0.0/15; NATS at ${n.address ?? '?'}`
    : 'process mode: nodes are processes on 127.0.0.1';
};

/** The CLI's entry (main.js, beside this file): `up` starts the supervisor with it. */
const entry = fileURLToPath(new URL('./main.js', import.meta.url));
/** The director process, beside this CLI in the repository. */
const directorEntry = fileURLToPath(new URL('../../../apps/director/dist/main.js', import.meta.url));

/**
 * The admin the director created on this platform's first start, as it left it for `cps up`: with
 * the generated password (shown once, then the file is removed), or without one when it took
 * `CPS_ADMIN_PASSWORD`, which this process then has too.
 */
const createdAdmin = (
  home: PlatformHome,
): { username: string; password?: string; generated: boolean } | undefined => {
  const file = join(home.runDir, 'admin.json');
  if (!existsSync(file)) return undefined;
  const left = JSON.parse(readFileSync(file, 'utf8')) as { username: string; password?: string };
  rmSync(file, { force: true });
  const password = left.password ?? process.env['CPS_ADMIN_PASSWORD'];
  return {
    username: left.username,
    generated: left.password !== undefined,
    ...(password ? { password } : {}),
  };
};

const show = (h: PlatformHealth, json: boolean): void => {
  if (json) {
    console.log(JSON.stringify(h, null, 2));
    return;
  }
  console.log(`platform ${h.platformId}: healthy`);
  console.log(`  nats-server ${h.server.version} (${h.server.name}) at ${h.urls.join(', ')}`);
  console.log(
    `  mTLS: ${h.server.tlsRequired && h.server.tlsVerify ? 'required, client certificates verified' : 'NOT ENFORCED'}`,
  );
  console.log(`  identity: ${h.director} via operator-mode JWT in account ${h.account.slice(0, 12)}...`);
  console.log(
    `  JetStream: ${h.jetstream.streams} streams, ${h.jetstream.events} commits in CPS_EVENTS, snapshots ${h.jetstream.snapshotBucket ? 'ready' : 'missing'}`,
  );
  console.log(`  round trip: ${h.roundTripMs.toFixed(2)} ms`);
};

/** A port flag's value: an integer 1..65535, or a validation error naming the flag. */
const port = (flag: string, value: string): number => {
  const n = /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 65535))
    throw new CpsError('validation', `${flag} needs a port number, got ${JSON.stringify(value)}`, [
      { path: flag, code: 'invalid_port', message: 'an integer from 1 to 65535' },
    ]);
  return n;
};

/** The `cps` command tree, built without parsing anything (main.ts parses; tests read the help). */
export const buildProgram = (): Command => {
  const program = new Command()
    .name('cps')
    .description('cps: a platform-as-a-service on NATS JetStream')
    .option(
      '--home, --data <dir>',
      'platform data directory of `up`/`down`/`status` (CPS_HOME)',
      defaultHome(),
    )
    .option('--json', 'print JSON')
    .option('--context <name>', 'the director context to use (CPS_CONTEXT)')
    .option('--url <url>', "the director's URL (CPS_URL)")
    .option('--token <token>', 'a session or API token (CPS_TOKEN)')
    .option('--ca <file>', "the CA bundle the director's certificate chains to (CPS_CA)")
    .option('--cert <file>', 'a client certificate (PEM) to sign in with, instead of a token (CPS_CERT)')
    .option('--key <file>', "the client certificate's private key (PEM) (CPS_KEY)")
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  examples(program, ['cps up', 'cps app create shop', 'cps --context prod --json app list']);

  const opts = (): GlobalFlags => {
    const o = program.opts<{ home?: string; data?: string } & Omit<GlobalFlags, 'home'>>();
    return { ...o, home: o.data ?? o.home ?? defaultHome() };
  };

  examples(program.command('up'), ['cps up', 'CPS_ADMIN_PASSWORD="$ADMIN_PASSWORD" cps up --home /srv/cps'])
    .description(
      'create the local platform if needed, start it in the background and wait until it is healthy',
    )
    .action(async () => {
      const { PlatformHome, up, supervisorPid } = await platformLib();
      // checked before anything is written: a bad CPS_LOCAL_MODE leaves no home behind
      const mode = await chooseMode();
      const home = await PlatformHome.init(opts().home);
      // the mode is chosen when the platform starts; a running one keeps its own
      const chosen = supervisorPid(home) === undefined ? mode : undefined;
      if (chosen) home.setNetwork({ mode: chosen.mode });
      const r = await up(home, entry);
      const admin = createdAdmin(home);
      // first start: the CLI keeps an admin API token of its own (like a kubeconfig), mode 0600
      if (admin?.password && r.directorUrl) {
        const url = r.directorUrl;
        const login = { username: admin.username, password: admin.password };
        const s = await call(url, anonymous(home, url).POST('/v1/sessions', { body: login }));
        const t = await call(
          url,
          anonymous(home, url, s.token).POST('/v1/tokens', {
            body: { name: 'cps-cli', scopes: ['read', 'write', 'admin'], ttlDays: 3650 },
          }),
        );
        // the CLI is signed in to its own platform: a context named after the data directory
        saveContext(basename(home.dir), { url, token: t.token, user: 'admin', ca: join(home.dir, 'ca.pem') });
      }
      // a password the user chose is not printed back
      const shown = admin?.generated ? { username: admin.username, password: admin.password } : undefined;
      if (opts().json) {
        console.log(
          JSON.stringify(
            {
              ...r,
              localCloud: home.network(),
              ...(admin ? { admin: shown ?? { username: admin.username } } : {}),
            },
            null,
            2,
          ),
        );
        return;
      }
      console.log(
        r.started
          ? `started supervisor (pid ${r.pid})${r.adopted ? `; it took over the ${r.adopted.join(' and ')} that kept running` : ''}`
          : `already running (supervisor pid ${r.pid})`,
      );
      show(r.health, false);
      console.log(`  local cloud: ${describeMode(home)}${chosen?.why ? ` (${chosen.why})` : ''}`);
      if (r.directorUrl) {
        console.log(`  director: ${r.directorUrl} (CA: ${join(home.dir, 'ca.pem')})`);
        console.log(
          `  dashboard: ${r.directorUrl}/ (a browser warns until it trusts the CA above; sign in as admin)`,
        );
        console.log(
          shown
            ? `  admin login: admin / ${shown.password}  (shown once: keep it, or set CPS_ADMIN_PASSWORD before the first start)`
            : admin
              ? '  admin login: admin, with the password of CPS_ADMIN_PASSWORD'
              : '  admin login: admin (password shown at the first start, or CPS_ADMIN_PASSWORD)',
        );
        if (admin && !admin.password)
          console.log('  the CLI is not signed in: `cps login --user admin --password-stdin`');
      }
    });

  examples(program.command('status'), ['cps status', 'cps status --home /srv/cps --json'])
    .description('health of the local platform')
    .action(async () => {
      const { PlatformHome, supervisorPid, checkHealth, readyInfo, platformProcesses } = await platformLib();
      const home = PlatformHome.open(opts().home);
      const pid = supervisorPid(home);
      // nats-server and director that a killed supervisor left running: nobody restarts them
      const left = pid === undefined ? platformProcesses(home) : {};
      const unsupervised = left.nats !== undefined || left.director !== undefined;
      const cloud = await localCloud(home);
      const nodes = await cloud.list();
      // a joined director's home has no supervisor of its own: its platform may still answer
      const health = await checkHealth(home).catch((e: unknown) => {
        if (pid !== undefined || unsupervised) throw e;
        return undefined;
      });
      if (!health) {
        // not running is an answer, not a failure of this command; the exit code still says so
        process.exitCode = 1;
        if (opts().json) return json({ home: home.dir, supervisor: null, running: false, nodes });
        console.log(`platform in ${home.dir}: not running (start it with \`cps up\`)`);
        if (nodes.length > 0) console.log(`  local nodes left running: ${nodes.length}`);
        return;
      }
      const director = readyInfo(home)?.directorUrl;
      if (opts().json)
        return json({
          home: home.dir,
          supervisor: pid ?? null,
          running: true,
          ...(unsupervised ? { unsupervised: left } : {}),
          health,
          directorUrl: director ?? null,
          nodes,
        });
      const running = [
        ...(left.nats !== undefined ? [`nats-server (pid ${left.nats})`] : []),
        ...(left.director !== undefined ? [`the director (pid ${left.director})`] : []),
      ].join(' and ');
      console.log(
        pid !== undefined
          ? `supervisor: pid ${pid}, data in ${home.dir}`
          : unsupervised
            ? `supervisor: none: ${running} run without one (it was stopped or killed), so nothing restarts them if they die; run \`cps up\` to supervise them again. Data in ${home.dir}`
            : `supervisor: none here (a joined director), data in ${home.dir}`,
      );
      show(health, false);
      if (director) console.log(`  director: ${director}`);
      console.log(`  local cloud: ${describeMode(home)}`);
      console.log(
        `  local nodes: ${nodes.length} (${nodes.filter((n) => n.kind === 'manager').length} managers, ${nodes.filter((n) => n.kind === 'agent').length} agents)`,
      );
    });

  examples(program.command('down'), ['cps down', 'cps down --keep-nodes'])
    .description(
      'stop the local platform and its nodes (their data stays on disk: the next `up` starts them again)',
    )
    .option('--keep-nodes', "leave the local cloud's nodes running")
    .action(async (o: { keepNodes?: boolean }) => {
      const { PlatformHome, down } = await platformLib();
      const home = PlatformHome.open(opts().home);
      const stopped = await down(home);
      console.log(stopped ? 'stopped' : 'not running');
      if (!o.keepNodes) {
        const cloud = await localCloud(home);
        const running = (await cloud.list()).filter((n) => n.state === 'running');
        for (const n of running) await cloud.stop(n.nodeId);
        // host mode: namespaces of nodes killed from outside, networks without a running node, and
        // the platform address, once no node dials it any more
        await cloud.tidy();
        if (home.network().mode === 'host') {
          const { releasePlatformAddress } = await import('@cps/clouds');
          await releasePlatformAddress(home.tag);
        }
        console.log(`stopped ${running.length} node(s)`);
      }
    });

  program
    .command('supervisor', { hidden: true })
    .description('run the nats-server supervisor in the foreground')
    .action(async () => {
      const { PlatformHome, runSupervisor } = await platformLib();
      await runSupervisor(
        PlatformHome.open(opts().home),
        (l) => console.log(`${new Date().toISOString()} ${l}`),
        { directorEntry },
      );
    });

  authCommands(program, opts);
  appCommands(program, opts);
  observeCommands(program, opts);
  mysqlCommands(program, opts);
  phpCommands(program, opts);
  storageCommands(program, opts);
  examples(program.command('completion <shell>'), [
    'source <(cps completion bash)',
    'source <(cps completion zsh)',
    'cps completion bash > ~/.local/share/bash-completion/completions/cps',
  ])
    .description('a completion script for bash or zsh: `source <(cps completion bash)`')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new CpsError('validation', 'bash or zsh');
      console.log(completion(program, shell));
    });

  const platform = examples(
    program
      .command('platform')
      .description(
        'platform material: a home, the configs of a NATS cluster, join bundles for more directors',
      ),
    [
      'cps platform init --nats tls://nats-1:4222,tls://nats-2:4222',
      'cps platform nats-config --servers nats-1,nats-2 --out ./nats',
      'cps platform export-join --out director-2.bundle',
    ],
  );
  examples(platform.command('export-join'), [
    'CPS_JOIN_PASSPHRASE="$JOIN_PASSPHRASE" cps platform export-join --out director-2.bundle',
    'cps platform export-join --home /srv/cps --out /tmp/director-2.bundle',
  ])
    .description('write a join bundle sealed with the passphrase in CPS_JOIN_PASSPHRASE')
    .requiredOption('--out <file>', 'bundle file (mode 0600)')
    .action(async (o: { out: string }) => {
      const pass = process.env['CPS_JOIN_PASSPHRASE'] ?? '';
      const { PlatformHome, exportJoinBundle } = await platformLib();
      writeFileSync(o.out, exportJoinBundle(PlatformHome.open(opts().home), pass), { mode: 0o600 });
      console.log(`wrote ${o.out}; hand it and the passphrase to the new director separately`);
    });
  examples(platform.command('init'), [
    'cps platform init',
    'cps platform init --home /srv/cps --nats tls://nats-1:4222,tls://nats-2:4222',
  ])
    .description('create the platform home (CAs, operator, the first director) without starting anything')
    .option('--nats <urls>', 'comma-separated URLs of the NATS cluster the platform runs on')
    .action(async (o: { nats?: string }) => {
      const { PlatformHome } = await platformLib();
      const home = await PlatformHome.init(opts().home, o.nats ? { natsUrls: o.nats.split(',') } : {});
      console.log(`platform ${home.info().platformId} in ${home.dir} (NATS: ${home.natsUrls().join(', ')})`);
    });
  examples(platform.command('nats-config'), [
    'cps platform nats-config --servers nats-1,nats-2,nats-3 --out ./nats',
    'cps --home /srv/cps platform nats-config --servers nats-1,nats-2,nats-3 --data-dir /var/lib/cps/data --out /srv/nats',
    'cps --json platform nats-config --servers nats-1 --client-port 4223 --out /tmp/nats',
  ])
    .description(
      "write each nats-server's configuration of a cluster run elsewhere (mTLS, operator mode, JetStream, TLS routes): <out>/<name>/server.conf, certificate naming <name>, key, CA",
    )
    .requiredOption('--servers <names>', 'comma-separated host names of the servers (also their server_name)')
    .option('--client-port <n>', 'client port of every server', '4222')
    .option('--cluster-port <n>', 'route port of every server', '6222')
    .option('--monitor-port <n>', 'monitoring port of every server (on 127.0.0.1 only)', '8222')
    .option(
      '--data-dir <dir>',
      'resolver and JetStream directory, as the servers see it',
      '/var/lib/cps/data',
    )
    .option('--listen <addr>', 'address the client and route ports listen on', '0.0.0.0')
    .requiredOption('--out <dir>', 'where the files go: one directory per server')
    .action(
      async (o: {
        servers: string;
        clientPort: string;
        clusterPort: string;
        monitorPort: string;
        dataDir: string;
        listen: string;
        out: string;
      }) => {
        const clientPort = port('--client-port', o.clientPort);
        const clusterPort = port('--cluster-port', o.clusterPort);
        const monitorPort = port('--monitor-port', o.monitorPort);
        const { PlatformHome, writeClusterConfig } = await platformLib();
        const written = await writeClusterConfig(PlatformHome.open(opts().home), {
          servers: o.servers.split(',').map((name) => ({ name: name.trim() })),
          out: resolve(o.out),
          clientPort,
          clusterPort,
          monitorPort,
          dataDir: o.dataDir,
          listen: o.listen,
        });
        if (opts().json) return json(written);
        for (const w of written) console.log(`${w.name}  ${w.configFile}  ${w.url}`);
        console.log(
          `the directors must list these URLs: cps platform init --nats ${written.map((w) => w.url).join(',')}`,
        );
      },
    );
  examples(platform.command('join'), [
    'CPS_JOIN_PASSPHRASE="$JOIN_PASSPHRASE" cps platform join --bundle director-2.bundle --director-id director-2',
    'cps platform join --bundle director-2.bundle --director-id director-2 --nats tls://nats-1:4222',
  ])
    .description('create this home from a join bundle (passphrase in CPS_JOIN_PASSPHRASE)')
    .requiredOption('--bundle <file>', 'bundle file')
    .requiredOption('--director-id <id>', 'id of the new director')
    .option('--nats <urls>', 'comma-separated NATS URLs of the platform')
    .action(async (o: { bundle: string; directorId: string; nats?: string }) => {
      const { joinPlatform } = await platformLib();
      const home = await joinPlatform(
        opts().home,
        readFileSync(o.bundle, 'utf8'),
        process.env['CPS_JOIN_PASSPHRASE'] ?? '',
        {
          directorId: o.directorId,
          ...(o.nats ? { natsUrls: o.nats.split(',') } : {}),
        },
      );
      console.log(`joined platform ${home.info().platformId} as director ${o.directorId}`);
    });
  return program;
};

/** A completion script: the commands and their subcommands, by position. */
const completion = (root: Command, shell: 'bash' | 'zsh'): string => {
  // what help shows: hidden commands (the supervisor cps up starts) and `help` are not offered
  const help = root.createHelp();
  const visible = (c: Command): Command[] => help.visibleCommands(c).filter((s) => s.name() !== 'help');
  const top = visible(root).map((c) => c.name());
  const cases = visible(root)
    .filter((c) => visible(c).length > 0)
    .map(
      (c) =>
        `    ${c.name()}) words="${visible(c)
          .map((s) => s.name())
          .join(' ')}" ;;`,
    )
    .join('\n');
  const body = `_cps() {
  local cur=\${COMP_WORDS[COMP_CWORD]} words="${top.join(' ')}"
  if [ "$COMP_CWORD" -ge 2 ]; then
    case "\${COMP_WORDS[1]}" in
${cases}
      *) words="" ;;
    esac
  fi
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _cps cps`;
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${body}` : body;
};
