import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { CpsError } from '@cps/core';

/**
 * The kernel objects host mode makes (network namespaces, links, routes, nftables rulesets), through
 * the tools Debian ships for them (`ip` of iproute2, `nft`). Each call runs one tool once; a failure
 * is an `unavailable` CpsError carrying the tool's own message.
 */

const NETNS_DIR = '/run/netns';

interface Ran {
  readonly stdout: string;
  readonly stderr: string;
}

const run = (file: string, args: readonly string[], input?: string): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const child = execFile(file, [...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error)
        reject(
          new CpsError('unavailable', `${file} ${args.join(' ')}: ${stderr.trim() || error.message}`, [], {
            cause: error,
          }),
        );
      else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });

const exists = (e: unknown): boolean => e instanceof Error && /File exists|already exists/.test(e.message);
const missing = (e: unknown): boolean =>
  e instanceof Error && /No such file|Cannot find device|does not exist|not found/i.test(e.message);

/** The path a process enters the namespace `name` by (`nsenter --net=<path>`). */
export const namespacePath = (name: string): string => `${NETNS_DIR}/${name}`;

export const namespaceExists = (name: string): boolean => existsSync(namespacePath(name));

/** Creates the network namespace `name`; false when it exists already (someone holds the name). */
export const addNamespace = async (name: string): Promise<boolean> => {
  try {
    await run('ip', ['netns', 'add', name]);
    return true;
  } catch (e) {
    if (exists(e)) return false;
    throw e;
  }
};

/**
 * Deletes the network namespace `name` and with it every link, address, route and ruleset it holds
 * (a veth's peer in another namespace goes too); deleting a namespace that is gone is fine.
 */
export const deleteNamespace = async (name: string): Promise<void> => {
  if (!namespaceExists(name)) return;
  try {
    await run('ip', ['netns', 'delete', name]);
  } catch (e) {
    if (!missing(e)) throw e;
  }
};

/** Names of the network namespaces whose names start with `prefix`. */
export const namespaces = (prefix: string): string[] => {
  try {
    return readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
};

/**
 * Runs `ip` commands (one per line, as `ip -batch` reads them) in the namespace `ns`, or in this
 * process's own when `ns` is undefined.
 */
export const ip = async (ns: string | undefined, ...commands: string[]): Promise<void> => {
  await run('ip', [...(ns === undefined ? [] : ['-n', ns]), '-batch', '-'], commands.join('\n') + '\n');
};

/** Like {@link ip}, but false when a command failed because what it adds exists already. */
export const ipAdding = async (ns: string | undefined, ...commands: string[]): Promise<boolean> => {
  try {
    await ip(ns, ...commands);
    return true;
  } catch (e) {
    if (exists(e)) return false;
    throw e;
  }
};

/**
 * Deletes the link `name` of the namespace `ns` (or of this process's) and, for a veth, its peer,
 * at once; a missing link is fine. Deleting a namespace deletes its links too, but later (the
 * kernel tears namespaces down in the background): links are deleted first, so that a name is free
 * again when the call returns.
 */
export const deleteLink = async (ns: string | undefined, name: string): Promise<void> => {
  if (ns !== undefined && !namespaceExists(ns)) return;
  try {
    await run('ip', [...(ns === undefined ? [] : ['-n', ns]), 'link', 'delete', name]);
  } catch (e) {
    if (!missing(e)) throw e;
  }
};

/** The alias of link `name` in `ns` (host mode writes its owner's tag there), or undefined. */
export const linkAlias = async (ns: string | undefined, name: string): Promise<string | undefined> => {
  try {
    const { stdout } = await run('ip', [...(ns === undefined ? [] : ['-n', ns]), '-j', 'link', 'show', name]);
    const [link] = JSON.parse(stdout) as { ifalias?: string }[];
    return link?.ifalias;
  } catch {
    return undefined;
  }
};

/** Names of this process's namespace's links that start with `prefix`. */
export const links = async (prefix: string): Promise<string[]> => {
  const { stdout } = await run('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith(prefix));
};

/** Loads an nftables ruleset (`nft -f` syntax) into the namespace `ns`. */
export const loadRuleset = async (ns: string, ruleset: string): Promise<void> => {
  await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], ruleset);
};

/** Turns IPv4 forwarding on inside `ns` only (the setting is per namespace). */
export const enableForwarding = async (ns: string): Promise<void> => {
  await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
};

/** Which of the tools host mode needs are missing from `PATH` (`ip`, `nft`, `nsenter`, `unshare`, `sysctl`). */
export const missingTools = (): string[] => {
  const dirs = (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  return ['ip', 'nft', 'nsenter', 'unshare', 'sysctl'].filter(
    (t) => !dirs.some((d) => d !== '' && existsSync(`${d}/${t}`)),
  );
};
