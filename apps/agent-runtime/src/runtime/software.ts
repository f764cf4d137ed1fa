import { spawnSync } from 'node:child_process';

/**
 * The Debian packages of `packages` that are not installed on this machine (asked of dpkg). On a
 * machine without dpkg nothing can be checked, and nothing is reported missing: the workload's own
 * start then says what is wrong.
 */
export const missingPackages = (packages: readonly string[]): string[] =>
  packages.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8', timeout: 10_000 });
    if (r.error) return false;
    return !(r.status === 0 && r.stdout.includes('install ok installed'));
  });
