import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { CpsError, isCpsError } from '@cps/core';
import { LocalCloud } from '@cps/clouds';
import { anonymous, call, saveCredentials, signedIn, waitFor } from './director-client.js';
import {
  checkHealth,
  defaultHome,
  down,
  exportJoinBundle,
  joinPlatform,
  PlatformHome,
  runSupervisor,
  supervisorPid,
  up,
  type PlatformHealth,
} from '@cps/platform';

const entry = fileURLToPath(import.meta.url);
/** The director process, beside this CLI in the repository. */
const directorEntry = fileURLToPath(new URL('../../../apps/director/dist/main.js', import.meta.url));

/** The admin's first password, left by the director that created it: shown once, then removed. */
const adminLogin = (home: PlatformHome): { username: string; password: string } | undefined => {
  const file = join(home.runDir, 'admin.json');
  if (!existsSync(file)) return undefined;
  const login = JSON.parse(readFileSync(file, 'utf8')) as { username: string; password: string };
  rmSync(file, { force: true });
  return login;
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

const program = new Command()
  .name('cps')
  .description('cps: a platform-as-a-service on NATS JetStream')
  .option('--home <dir>', 'platform data directory (CPS_HOME)', defaultHome())
  .option('--json', 'print JSON');

const opts = (): { home: string; json: boolean } =>
  program.opts<{ home: string; json?: boolean }>() as { home: string; json: boolean };

program
  .command('up')
  .description('create the local platform if needed, start it in the background and wait until it is healthy')
  .action(async () => {
    const home = await PlatformHome.init(opts().home);
    const r = await up(home, entry);
    const login = adminLogin(home);
    // first start: the CLI keeps an admin API token of its own (like a kubeconfig), mode 0600
    if (login && r.directorUrl) {
      const url = r.directorUrl;
      const s = await call(url, anonymous(home, url).POST('/v1/sessions', { body: login }));
      const t = await call(
        url,
        anonymous(home, url, s.token).POST('/v1/tokens', {
          body: { name: 'cps-cli', scopes: ['read', 'write', 'admin'], ttlDays: 3650 },
        }),
      );
      saveCredentials(home, { url, token: t.token });
    }
    if (opts().json) {
      console.log(JSON.stringify({ ...r, ...(login ? { admin: login } : {}) }, null, 2));
      return;
    }
    console.log(
      r.started ? `started supervisor (pid ${r.pid})` : `already running (supervisor pid ${r.pid})`,
    );
    show(r.health, false);
    if (r.directorUrl) {
      console.log(`  director: ${r.directorUrl} (CA: ${join(home.dir, 'ca.pem')})`);
      console.log(
        login
          ? `  admin login: admin / ${login.password}  (shown once: keep it, or set CPS_ADMIN_PASSWORD before the first start)`
          : '  admin login: admin (password shown at the first start, or CPS_ADMIN_PASSWORD)',
      );
    }
  });

program
  .command('status')
  .description('health of the local platform')
  .action(async () => {
    const home = PlatformHome.open(opts().home);
    if (supervisorPid(home) === undefined) console.log('supervisor: not running');
    show(await checkHealth(home), opts().json);
  });

program
  .command('down')
  .description('stop the local platform (its data stays; nodes keep running unless --nodes)')
  .option('--nodes', "also stop the local cloud's nodes (managers and agents)")
  .action(async (o: { nodes?: boolean }) => {
    const home = PlatformHome.open(opts().home);
    const stopped = await down(home);
    console.log(stopped ? 'stopped' : 'not running');
    if (o.nodes) {
      const cloud = new LocalCloud({
        dir: join(home.dir, 'cloud'),
        command: () => ({ command: process.execPath, args: [] }),
      });
      const nodes = await cloud.list();
      for (const n of nodes) await cloud.destroy(n.nodeId);
      console.log(`stopped ${nodes.length} node(s)`);
    }
  });

program
  .command('supervisor', { hidden: true })
  .description('run the nats-server supervisor in the foreground')
  .action(async () => {
    await runSupervisor(
      PlatformHome.open(opts().home),
      (l) => console.log(`${new Date().toISOString()} ${l}`),
      { directorEntry },
    );
  });

program
  .command('deploy')
  .description('deploy an application manifest (JSON or YAML, ConPaaS format) and wait until it runs')
  .argument('<manifest>', 'manifest file')
  .option('--if-missing', 'an application of that name already deployed is fine')
  .action(async (file: string, o: { ifMissing?: boolean }) => {
    const { url, cps } = signedIn(PlatformHome.open(opts().home));
    const text = readFileSync(file, 'utf8');
    // YAML travels as { yaml } (the route's documented form); JSON as the manifest itself
    const body: unknown = /\.ya?ml$/i.test(file) ? { yaml: text } : (JSON.parse(text) as unknown);
    try {
      const r = await call(url, cps.POST('/v1/manifests', { body: body as never }));
      console.log(`deploying application ${r.appId} (operation ${r.operationId})`);
      const op = await waitFor(url, cps, r.operationId);
      if (op.state !== 'succeeded') throw new CpsError('conflict', `deploy ${op.state}: ${op.reason ?? ''}`);
      console.log(`deployed: ${url}/v1/applications/${r.appId}`);
    } catch (e) {
      if (o.ifMissing && isCpsError(e) && e.code === 'name_taken') {
        console.log('already deployed');
        return;
      }
      throw e;
    }
  });

program
  .command('apps')
  .description('your applications and the state of their services')
  .action(async () => {
    const { url, cps } = signedIn(PlatformHome.open(opts().home));
    const r = await call(url, cps.GET('/v1/applications'));
    if (opts().json) return console.log(JSON.stringify(r, null, 2));
    for (const a of r.applications) {
      console.log(`${a.name} (${a.appId})`);
      for (const s of a.services) console.log(`  ${s.name}  ${s.type}  ${s.state}`);
    }
  });

const platform = program.command('platform').description('platform material for additional directors');
platform
  .command('export-join')
  .description('write a join bundle sealed with the passphrase in CPS_JOIN_PASSPHRASE')
  .requiredOption('--out <file>', 'bundle file (mode 0600)')
  .action((o: { out: string }) => {
    const pass = process.env['CPS_JOIN_PASSPHRASE'] ?? '';
    writeFileSync(o.out, exportJoinBundle(PlatformHome.open(opts().home), pass), { mode: 0o600 });
    console.log(`wrote ${o.out}; hand it and the passphrase to the new director separately`);
  });
platform
  .command('join')
  .description('create this home from a join bundle (passphrase in CPS_JOIN_PASSPHRASE)')
  .requiredOption('--bundle <file>', 'bundle file')
  .requiredOption('--director-id <id>', 'id of the new director')
  .option('--nats <urls>', 'comma-separated NATS URLs of the platform')
  .action(async (o: { bundle: string; directorId: string; nats?: string }) => {
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

program.parseAsync().catch((e: unknown) => {
  if (isCpsError(e)) {
    console.error(`error [${e.code}]: ${e.message}`);
    for (const i of e.issues) console.error(`  ${i.path}: ${i.message}`);
  } else console.error(`error: ${(e as Error).message ?? String(e)}`);
  process.exit(1);
});
