import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { ownerTag } from '../host/address-plan.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const cgroup2Mount = (): string | undefined => {
  try {
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mountPoint, type] = line.split(' ');
      if (type === 'cgroup2' && mountPoint) return mountPoint;
    }
  } catch {
    // no procfs
  }
  return undefined;
};

const ownCgroup = (): string | undefined => {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line?.slice(3);
  } catch {
    return undefined;
  }
};

const procsOf = (path: string): number[] => {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/**
 * One cgroup (v2) per local node, under a group of this cloud's own (named after its directory,
 * beside this process's cgroup). A node's process is started inside it, so every process it or its
 * workloads ever start (a script's `setsid` loop included) is in it too, and cannot leave it
 * without root; destroying the node kills the whole group. Needs root and a writable cgroup2
 * hierarchy: {@link NodeCgroups.detect} answers undefined otherwise, and nodes are then ended by
 * their process groups only.
 */
export class NodeCgroups {
  private constructor(private readonly base: string) {}

  static detect(cloudDir: string): NodeCgroups | undefined {
    if (process.getuid?.() !== 0) return undefined;
    const mount = cgroup2Mount();
    const own = ownCgroup();
    if (mount === undefined || own === undefined) return undefined;

    const parent = join(mount, own);
    try {
      accessSync(join(parent, 'cgroup.procs'), constants.W_OK);
      return new NodeCgroups(join(parent, ownerTag(cloudDir)));
    } catch {
      return undefined;
    }
  }

  /** Creates the node's group (again: a leftover one is emptied first) and returns its path. */
  async create(nodeId: string): Promise<string> {
    const path = join(this.base, nodeId);
    if (existsSync(path)) await NodeCgroups.kill(path);
    mkdirSync(path, { recursive: true });
    return path;
  }

  /**
   * Moves a process that was just spawned into the group `path`. Called as soon as the spawn
   * returns: the program (a node runtime) starts nothing of its own for many milliseconds after,
   * so everything it starts is in the group.
   */
  static join(path: string, pid: number): void {
    writeFileSync(join(path, 'cgroup.procs'), String(pid));
  }

  /**
   * Kills every process in the group and removes it, and the cloud's group with it once it holds
   * no node; a group that is gone already is fine.
   */
  static async kill(path: string): Promise<void> {
    if (!existsSync(path)) return;
    const killFile = join(path, 'cgroup.kill');
    const deadline = Date.now() + 5_000;
    while (procsOf(path).length > 0 && Date.now() < deadline) {
      if (existsSync(killFile)) writeFileSync(killFile, '1');
      else
        for (const pid of procsOf(path))
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
      await sleep(20);
    }
    for (;;) {
      try {
        rmdirSync(path);
        try {
          rmdirSync(dirname(path));
        } catch {
          // other nodes still run
        }
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' || Date.now() > deadline) throw e;
        await sleep(20);
      }
    }
  }
}
