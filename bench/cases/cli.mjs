// (k, l) The cps command: start-up of `cps --help` and `cps app list --json` next to `node -e 0`, and
// `cps up` to ready on a fresh data directory and on one with history (200 applications), each
// process started the way a user starts it.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import { freePort, PlatformHome } from '@cps/platform';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'tools', 'cli', 'bin', 'cps.js');

const timed = async (args, env) => {
  const t0 = performance.now();
  await run(process.execPath, args, { env, timeout: 120_000 });
  return performance.now() - t0;
};

const freshHome = async (root, name) => {
  const home = join(root, name);
  const env = { ...process.env, CPS_HOME: home, CPS_CONFIG_DIR: join(root, `${name}-config`) };
  await PlatformHome.init(home, { env, natsPort: await freePort(), directorPort: await freePort() });
  return { home, env };
};

export default {
  id: 'cli',
  letter: 'k',
  title: 'cps start-up, and cps up to ready (fresh, and with history)',
  fixture: 'none',
  figures: [
    { key: 'help', label: 'k. cps --help', unit: 'ms', target: { on: 'cps', op: '<=', value: 300 } },
    { key: 'list', label: 'k. cps app list --json', unit: 'ms', target: { on: 'cps', op: '<=', value: 300 } },
    {
      key: 'upFresh',
      label: 'l. cps up, fresh data directory',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 5000 },
    },
    {
      key: 'upHistory',
      label: 'l. cps up, 200 applications of history',
      unit: 'ms',
      target: { on: 'cps', op: '<=', value: 5000 },
    },
  ],

  async prepare() {
    const root = mkdtempSync(join(tmpdir(), 'cps-bench-cli-'));
    const platform = await freshHome(root, 'platform');
    await run(process.execPath, [CLI, 'up'], { env: platform.env, timeout: 120_000 });
    for (let i = 0; i < 200; i++)
      await run(process.execPath, [CLI, 'app', 'create', `app-${i}`], { env: platform.env, timeout: 60_000 });
    await run(process.execPath, [CLI, 'down'], { env: platform.env, timeout: 60_000 });
    return { root, platform };
  },

  async run(s, runIndex) {
    const env = s.platform.env;
    const raw = await timed(['-e', '0'], env);
    // with history: the platform of `prepare`, brought up from its data
    const upHistory = await timed([CLI, 'up'], env);
    const help = await timed([CLI, '--help'], env);
    const list = await timed([CLI, '--json', 'app', 'list'], env);
    await run(process.execPath, [CLI, 'down'], { env, timeout: 60_000 });
    const fresh = await freshHome(s.root, `fresh-${runIndex}`);
    const upFresh = await timed([CLI, 'up'], fresh.env);
    await run(process.execPath, [CLI, 'down'], { env: fresh.env, timeout: 60_000 });
    rmSync(fresh.home, { recursive: true, force: true });
    return {
      help: { cps: help, raw },
      list: { cps: list, raw },
      upFresh: { cps: upFresh, raw },
      upHistory: { cps: upHistory, raw },
    };
  },

  async dispose(s) {
    await run(process.execPath, [CLI, 'down'], { env: s.platform.env, timeout: 60_000 }).catch(
      () => undefined,
    );
    rmSync(s.root, { recursive: true, force: true });
  },
};
