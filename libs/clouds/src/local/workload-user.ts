import { readFileSync } from 'node:fs';

/** The unprivileged account workloads run as (created by `scripts/setup.sh` when running as root). */
export const WORKLOAD_USER = 'cps-work';

/** A numeric account: what `spawn({ uid, gid })` and `chown` take. */
export interface WorkloadUser {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Looks `name` up in the passwd database file (no NSS: local accounts only, as `useradd --system`
 * makes them). Undefined when the account does not exist or the file cannot be read.
 */
export const workloadUser = (name = WORKLOAD_USER, passwdFile = '/etc/passwd'): WorkloadUser | undefined => {
  let passwd: string;
  try {
    passwd = readFileSync(passwdFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user !== name || uid === undefined || gid === undefined) continue;
    const u = Number(uid);
    const g = Number(gid);
    if (uid !== '' && gid !== '' && Number.isInteger(u) && Number.isInteger(g)) return { uid: u, gid: g };
  }
  return undefined;
};
