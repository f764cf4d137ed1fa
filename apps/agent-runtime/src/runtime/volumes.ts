import { spawn } from 'node:child_process';
import { chownSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, ValidationError } from '@cps/core';
import type { NodeConfig, PluginLogger, ServiceDefinition } from '@cps/services';
import { execAs } from './exec.js';
import type { WorkUser } from './work-dir.js';

const DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Runs a command as the agent (root), `fd` (if any) as its descriptor 3; rejects with its stderr. */
const asAgent = (command: string, args: readonly string[], fd?: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      stdio: ['ignore', 'ignore', 'pipe', ...(fd === undefined ? [] : [fd])],
      timeout: 60_000,
    });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 4_000) stderr += b.toString();
    });
    child.on('error', (e) => reject(new CpsError('unavailable', `${command}: ${e.message}`)));
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new CpsError('unavailable', `${command}: ${stderr.trim().slice(0, 400) || `exit ${code}`}`)),
    );
  });

/** The mount points of this process's mount namespace. */
const mountPoints = (): Set<string> =>
  new Set(
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter(Boolean),
  );

export interface VolumeMountsOptions {
  readonly nodeDir: string;
  readonly workDir: string;
  readonly address: string;
  /** The workload user, when the agent is root. */
  readonly user: WorkUser | undefined;
  /** The definition of a linked service's type (its `volumes`), by type name. */
  readonly types: (type: string) => ServiceDefinition | undefined;
  readonly env: () => Readonly<Record<string, string>>;
  readonly log: PluginLogger;
}

/**
 * The volumes a node mounts (`NodeConfig.volumes`). Each is mounted by the linked storage type's
 * command in `<node dir>/volumes/`, where no workload reaches, given to the workload user, then bound
 * onto its mount point in the work directory. The mount point is made by the workload user and
 * reached by the agent one name at a time, each opened without following a link (through the
 * directory opened before it), and the bind is made onto that opened directory: whatever the
 * workload renames or links meanwhile, the agent mounts inside what it opened and follows nothing.
 */
export class VolumeMounts {
  /** `<link>/<volume>` -> the mount point it is bound to, for this agent's mount namespace. */
  private readonly bound = new Map<string, string>();

  constructor(private readonly o: VolumeMountsOptions) {}

  /** Why this node cannot mount volumes, or undefined when it can. */
  unable(): string | undefined {
    if (process.getuid?.() !== 0)
      return 'mounting volumes needs root: run the platform in host mode (cps up as root)';
    if (this.o.address.startsWith('127.'))
      return 'volumes are mounted by nodes with addresses of their own: run the platform in host mode (cps up as root)';
    if (!existsSync('/dev/fuse')) return 'this machine has no /dev/fuse (FUSE): volumes cannot be mounted';
    return undefined;
  }

  /**
   * Mounts every volume of `config` not mounted yet, in order; the first failure stops it. The
   * caller checks {@link unable} first.
   */
  async apply(config: NodeConfig): Promise<void> {
    for (const v of config.volumes ?? []) {
      const key = `${v.link}/${v.volume}`;
      if (this.bound.get(key) === v.mount) continue;
      const link = config.links[v.link];
      const def = link?.type ? this.o.types(link.type) : undefined;
      if (!link || !def?.volumes)
        throw new ValidationError(`volume ${v.volume}: ${v.link} is not a linked storage service`, [
          { path: '$.volumes', code: 'not_storage', message: `${v.link} has no volumes` },
        ]);
      const source = join(this.o.nodeDir, 'volumes', `${v.link}.${v.volume}`);
      mkdirSync(source, { recursive: true, mode: 0o700 });
      if (!mountPoints().has(source)) {
        const { command, args } = def.volumes.mountCommand({ link, volume: v.volume, dir: source });
        await asAgent(command, args).catch((e: unknown) => {
          throw new CpsError(
            'unavailable',
            `volume ${v.volume} of ${v.link} could not be mounted (does it exist?): ${(e as Error).message}`,
          );
        });
      }
      // the volume's top belongs to the workload user (the agent's own path: nothing to follow)
      if (this.o.user) chownSync(source, this.o.user.uid, this.o.user.gid);
      await this.bind(source, v.mount);
      this.bound.set(key, v.mount);
      this.o.log.info('volume mounted', { link: v.link, volume: v.volume, mount: v.mount });
    }
  }

  private async bind(source: string, mount: string): Promise<void> {
    const made = await execAs('/bin/mkdir', ['-p', '--', mount], {
      cwd: this.o.workDir,
      env: this.o.env(),
      user: this.o.user,
      timeoutMs: 10_000,
    });
    if (made.code !== 0)
      throw new ValidationError(`mount point ${mount}: ${made.stderr.trim()}`, [
        { path: '$.volumes.mount', code: 'invalid_mount', message: 'a directory the workload can make' },
      ]);
    await this.atMountPoint(mount, (fd) =>
      asAgent('/bin/mount', ['--no-canonicalize', '--bind', source, '/proc/self/fd/3'], fd),
    );
  }

  /**
   * Runs `f` with a descriptor of the directory `mount` names in the work directory, reached one name
   * at a time, each opened through the one before it without following a link.
   */
  private async atMountPoint(mount: string, f: (fd: number) => Promise<void>): Promise<void> {
    let fd = openSync(this.o.workDir, DIR);
    try {
      for (const name of mount.split('/')) {
        let next: number;
        try {
          next = openSync(`/proc/self/fd/${fd}/${name}`, DIR);
        } catch (e) {
          throw new ValidationError(
            `mount point ${mount}: ${name} is not a directory (a link is never followed)`,
            [{ path: '$.volumes.mount', code: 'invalid_mount', message: (e as Error).message }],
          );
        }
        closeSync(fd);
        fd = next;
      }
      await f(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Unmounts every volume this agent mounted (the node stops): each bind through the directory it
   * covers, reached as when it was made, then the volume's own mount. What fails is logged: the
   * node's mount namespace ends with it anyway.
   */
  async unmountAll(): Promise<void> {
    for (const [key, mount] of this.bound) {
      await this.atMountPoint(mount, (fd) =>
        asAgent('/bin/umount', ['--no-canonicalize', '/proc/self/fd/3'], fd),
      ).catch((e: unknown) => this.o.log.warn('unmounting', { mount, error: String(e) }));
      const source = join(this.o.nodeDir, 'volumes', key.replace('/', '.'));
      if (mountPoints().has(source))
        await asAgent('/bin/umount', ['--lazy', source]).catch((e: unknown) =>
          this.o.log.warn('unmounting', { at: source, error: String(e) }),
        );
    }
    this.bound.clear();
  }
}
