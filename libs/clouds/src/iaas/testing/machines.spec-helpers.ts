import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOSTS, lowestFree, nodeAddress, nodeNamespace } from '../../host/address-plan.js';
import { AppNetworks, type NatsEndpoint } from '../../host/app-networks.js';
import { namespacePath } from '../../host/kernel.js';
import { sandboxed } from '../../host/node-sandbox.js';
import { NodeCgroups } from '../../local/cgroup.js';

/** Where a machine's disk is mounted inside it: the boot script's default `CPS_HOME`. */
export const MACHINE_DISK = '/var/lib/cps';
const MACHINE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The machine's first process (PID 1 of its PID namespace): runs the boot script as cloud-init or
 * OpenNebula's contextualization would (it starts the node in the background and returns), then
 * stays, reaping what is left to it, until the machine is halted.
 */
const MACHINE_INIT = `sh -c "$1" user-data || echo "cps machine: the boot script failed with status $?" >&2
while :; do sleep 3600 & wait; done`;

export interface StandInMachinesOptions {
  /** Names the machines' network (one per stand-in cloud); must be a valid id (`ec2`, `opennebula`). */
  readonly name: string;
  /** What the machines may connect to beyond their network: endpoints on one root-namespace address. */
  readonly reach: NatsEndpoint | readonly NatsEndpoint[];
}

/** A booted machine as the host sees it. */
export interface Machine {
  readonly id: string;
  /** Its one address, `198.18.<network>.<host>`: what the stand-in reports as the instance's. */
  readonly address: string;
  readonly namespace: string;
  /** Its disk on the host: mounted at {@link MACHINE_DISK} inside the machine. */
  readonly disk: string;
  /** The output of its first process and of the boot script. */
  readonly console: string;
}

interface Running extends Machine {
  readonly network: number;
  readonly host: number;
  readonly cgroup: string | undefined;
}

const netnsLink = (pid: string): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
};

/** Pids (of this PID namespace) of every process whose network namespace is `namespace`. */
const processesIn = (namespace: string): number[] => {
  let inode: number;
  try {
    inode = statSync(namespacePath(namespace)).ino;
  } catch {
    return [];
  }
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e) && netnsLink(e) === `net:[${inode}]`)
    .map(Number);
};

/** SIGKILLs every process in `namespace` until none is left (what a cgroup did not end). */
const killAllIn = async (namespace: string): Promise<void> => {
  const deadline = Date.now() + 5_000;
  for (let pids = processesIn(namespace); pids.length > 0; pids = processesIn(namespace)) {
    if (Date.now() > deadline)
      throw new Error(`processes ${pids.join(', ')} of ${namespace} outlive SIGKILL`);
    for (const pid of pids)
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    await sleep(20);
  }
};

/**
 * Real machines for the IaaS stand-ins (host mode's primitives, root only): each booted instance is
 * a network namespace with an address of the stand-in's network, new mount and PID namespaces, and
 * a cgroup of its own when the machine allows one; its disk (a directory of this helper's) is
 * mounted at `/var/lib/cps` (a mount point the sandbox makes on the host when missing, and leaves
 * there empty), and this helper's directory is hidden from it. The machine runs its
 * boot script there and keeps running until it is halted (stopped or terminated), which ends every
 * process of it and deletes its namespace; the network goes with the last machine. Calls are
 * serialized.
 */
export class StandInMachines {
  /** Names the kernel objects of these machines (the alias of their links). */
  readonly tag: string;
  private readonly networks: AppNetworks;
  private readonly cgroups: NodeCgroups | undefined;
  private readonly running = new Map<string, Running>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly name: string,
    reach: StandInMachinesOptions['reach'],
  ) {
    this.tag = `cps-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`;
    this.networks = new AppNetworks(join(dir, 'networks'), this.tag, reach);
    this.cgroups = NodeCgroups.detect(dir);
  }

  static create(o: StandInMachinesOptions): StandInMachines {
    return new StandInMachines(mkdtempSync(join(tmpdir(), 'cps-machines-')), o.name, o.reach);
  }

  /** Boots machine `id` (a stopped one on its disk as it was) and starts `script` in it. */
  boot(id: string, script: string): Promise<Machine> {
    return this.serial(async () => {
      if (this.running.has(id)) throw new Error(`machine ${id} runs already`);
      const network = await this.networks.up(this.name);
      const host = lowestFree(HOSTS, new Set([...this.running.values()].map((m) => m.host)));
      if (host === undefined) throw new Error(`every address of the ${this.name} network is taken`);
      const at = join(this.dir, 'machines', id);
      const machine: Running = {
        id,
        address: nodeAddress(network, host),
        namespace: nodeNamespace(network, host),
        disk: join(at, 'disk'),
        console: join(at, 'console.log'),
        network,
        host,
        cgroup: await this.cgroups?.create(id),
      };
      try {
        await this.networks.attach(network, host);
        mkdirSync(machine.disk, { recursive: true, mode: 0o755 });
        await this.start(machine, script);
      } catch (e) {
        await this.end(machine);
        throw e;
      }
      this.running.set(id, machine);
      return machine;
    });
  }

  private async start(m: Running, script: string): Promise<void> {
    const { command, args } = sandboxed({
      namespace: m.namespace,
      ...(m.cgroup === undefined ? {} : { cgroup: m.cgroup }),
      nodeDir: m.disk,
      hide: this.dir,
      at: MACHINE_DISK,
      command: '/bin/sh',
      args: ['-c', MACHINE_INIT, 'cps-machine', script],
    });
    const out = openSync(m.console, 'a', 0o600);
    try {
      const child = spawn(command, args, {
        cwd: m.disk,
        env: { PATH: MACHINE_PATH },
        detached: true,
        stdio: ['ignore', out, out],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      child.unref();
    } finally {
      closeSync(out);
    }
  }

  /** Halts machine `id`: ends all its processes and deletes its namespace (its disk stays). */
  halt(id: string): Promise<void> {
    return this.serial(async () => {
      const m = this.running.get(id);
      if (!m) return;
      await this.end(m);
      this.running.delete(id);
    });
  }

  private async end(m: Running): Promise<void> {
    if (m.cgroup !== undefined) await NodeCgroups.kill(m.cgroup);
    await killAllIn(m.namespace);
    await this.networks.leave(m.network, m.host);
    if ([...this.running.values()].every((r) => r.id === m.id)) await this.networks.release(this.name);
  }

  /** Machine `id` while it runs. */
  machine(id: string): Machine | undefined {
    return this.running.get(id);
  }

  /** Pids (as this process sees them) of every process of machine `id`; none once it is halted. */
  processes(id: string): number[] {
    const m = this.running.get(id);
    return m ? processesIn(m.namespace) : [];
  }

  /** Halts every machine, which takes the network down, and removes the disks. */
  async close(): Promise<void> {
    for (const id of [...this.running.keys()]) await this.halt(id);
    await this.serial(async () => this.networks.release(this.name));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
