import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalCloud } from '@cps/clouds';
import { freePort, PlatformHome } from '@cps/platform';

/** Runs a program, resolving with its output (rejecting with its exit code and output). */
export const run = promisify(execFile);
/** The built `cps` command. */
export const CLI = join(process.cwd(), 'tools', 'cli', 'bin', 'cps.js');

/**
 * A local platform of a test file's own, driven by the built `cps` command as a user runs it: a fresh
 * data directory (`home`) and CLI configuration under a temporary `root`. `init` (in `beforeAll`) creates
 * the platform home on free ports instead of the defaults, so tests never meet a user's platform;
 * `cleanup` (in `afterAll`) brings it down and removes `root`.
 */
export const cliPlatform = (prefix: string) => {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const home = join(root, 'home');
  const env: NodeJS.ProcessEnv = { ...process.env, CPS_HOME: home, CPS_CONFIG_DIR: join(root, 'config') };
  const cps = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, timeout: 60_000 });
  /** The local cloud's nodes, as its directory shows them (also while the platform is down). */
  const localNodes = () =>
    new LocalCloud({ dir: join(home, 'cloud'), command: () => ({ command: 'none', args: [] }) }).list();
  return {
    root,
    home,
    env,
    cps,
    /** Runs a `cps` command that must fail; answers its exit code and outputs. */
    fails: async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      (await cps(...args).then(
        () => {
          throw new Error(`cps ${args.join(' ')} should have failed`);
        },
        (e: unknown) => e,
      )) as { code: number; stdout: string; stderr: string },
    init: async (): Promise<void> => {
      await PlatformHome.init(home, { env, natsPort: await freePort(), directorPort: await freePort() });
    },
    localNodes,
    /**
     * Runs `script` as a tenant would: the workload user (`cps-work`), in the mount, network and PID
     * namespaces of host-mode node `nodeId`, from its work directory. Answers whether it exited 0,
     * and its outputs.
     */
    asTenant: async (nodeId: string, script: string): Promise<{ ok: boolean; out: string }> => {
      const node = (await localNodes()).find((n) => n.nodeId === nodeId);
      if (!node) throw new Error(`no node ${nodeId}`);
      const args = ['-t', node.instanceId, '-m', '-n', '-p'];
      const user = ['setpriv', '--reuid=cps-work', '--regid=cps-work', '--clear-groups'];
      return run('nsenter', [...args, ...user, '/bin/sh', '-c', `cd "$CPS_WORK" && ${script}`], {
        env: { ...process.env, CPS_WORK: join(home, 'cloud', 'nodes', nodeId, 'work') },
        timeout: 60_000,
      }).then(
        (r) => ({ ok: true, out: r.stdout + r.stderr }),
        (e: { stdout?: string; stderr?: string }) => ({
          ok: false,
          out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
        }),
      );
    },
    cleanup: async (): Promise<void> => {
      await cps('down').catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
};
