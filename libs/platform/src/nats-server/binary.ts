import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CpsError } from '@cps/core';

const isExecutable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Finds the nats-server binary: `CPS_NATS_SERVER`, then PATH, then /usr/sbin (Debian installs it
 * there, often off a non-root PATH).
 */
export const findNatsServer = (env: NodeJS.ProcessEnv = process.env): string => {
  const explicit = env['CPS_NATS_SERVER'];
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    throw new CpsError('unavailable', `CPS_NATS_SERVER=${explicit} is not an executable file`);
  }
  const dirs = [...(env['PATH'] ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = join(d, 'nats-server');
    if (isExecutable(p)) return p;
  }
  throw new CpsError(
    'unavailable',
    'nats-server not found on PATH, in /usr/sbin or at CPS_NATS_SERVER: install the Debian package `nats-server` (apt-get install -y nats-server)',
  );
};
