import { fileURLToPath } from 'node:url';
import { namespacePath } from './kernel.js';

/** This checkout of the platform (the programs nodes run and their packages), from `libs/clouds/<src|dist>/host`. */
const CODE = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');

/**
 * Runs inside the node's new mount and PID namespaces, as PID 1 of the latter: gives the node a
 * private `/tmp` and `/dev/shm`, hides `hide` (the platform's directory: every node's files, the
 * platform's keys) under an empty tmpfs (over its top-most ancestor others may not search, when it has
 * one, `/root` say: so the node's path, made again in the tmpfs, is one the workload user can walk,
 * and servers that want absolute paths, mariadbd, get them), mounts the platform's code back (read-only) when one of those
 * covered it (a checkout under `/tmp`), mounts the node's own directory back at its path (or at
 * `at`: a stand-in machine's disk at `/var/lib/cps`), and
 * becomes the node's program there. The node directory is entered before anything is hidden and
 * mounted back from the working directory, the code from a descriptor opened before
 * (`--no-canonicalize`: `.` and `/proc/self/fd/3` must stay the directories themselves, not paths
 * that now lead into the tmpfs). Nothing here touches the root namespace's mounts
 * (`--propagation private`).
 */
const SANDBOX = `set -e
node_dir=$1; hide=$2; at=$3; code=$4; shift 4
cd "$node_dir"
exec 3<"$code"
mount -t tmpfs -o mode=1777,size=256m,nosuid,nodev cps-tmp /tmp
mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev cps-shm /dev/shm
cover=$hide; d=; IFS=/
for part in $hide; do
  [ -n "$part" ] || continue
  d="$d/$part"
  if [ -d "$d" ] && [ $(( $(stat -c %a "$d") % 2 )) -eq 0 ]; then cover=$d; break; fi
done
unset IFS
if [ -d "$cover" ]; then mount -t tmpfs -o mode=0755,size=1m cps-hidden "$cover"; fi
if [ ! -d "$code" ]; then
  mkdir -p "$code"
  mount --no-canonicalize --bind /proc/self/fd/3 "$code"
  mount -o remount,bind,ro "$code"
fi
exec 3<&-
(umask 022; mkdir -p "$at")
mount --no-canonicalize --bind . "$at"
cd "$at"
exec "$@"`;

/**
 * Runs in the root namespace as the node's first process: joins the node's cgroup before anything
 * else (so every process the node ever starts is in it), then enters the node's network namespace
 * and new mount, PID, IPC and UTS namespaces (`unshare --fork`: this process stays as the node's
 * handle, its child becomes PID 1 there, with a `/proc` of its own: a node sees only its own
 * processes, and no other node's System V IPC objects or POSIX message queues).
 */
const ENTER = `cgroup_procs=$1; netns=$2; sandbox=$3; shift 3
if [ -n "$cgroup_procs" ]; then echo $$ > "$cgroup_procs"; fi
exec nsenter --net="$netns" -- unshare --mount --pid --ipc --uts --fork --mount-proc --propagation private -- /bin/sh -c "$sandbox" cps-node "$@"`;

export interface SandboxedCommand {
  /** The node's network namespace. */
  readonly namespace: string;
  /** The node's cgroup (its `cgroup.procs` is joined first), when the cloud has one. */
  readonly cgroup?: string;
  readonly nodeDir: string;
  /** Hidden from the node: the directory of every node of the cloud, the platform's own files. */
  readonly hide: string;
  /** Where the node sees its directory; its own path by default. */
  readonly at?: string;
  /** The platform's code, which the node's program runs from: always visible to it. Default: this checkout. */
  readonly code?: string;
  readonly command: string;
  readonly args: readonly string[];
}

/** The program and arguments that start `command` as a host-mode node (see ENTER and SANDBOX). */
export const sandboxed = (c: SandboxedCommand): { command: string; args: string[] } => ({
  command: '/bin/sh',
  args: [
    '-c',
    ENTER,
    'cps-enter',
    c.cgroup === undefined ? '' : `${c.cgroup}/cgroup.procs`,
    namespacePath(c.namespace),
    SANDBOX,
    c.nodeDir,
    c.hide,
    c.at ?? c.nodeDir,
    c.code ?? CODE,
    c.command,
    ...c.args,
  ],
});
