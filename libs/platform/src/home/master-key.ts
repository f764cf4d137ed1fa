import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpsError, newSealingKeyMaterial, sealingKeyFrom, type SealingKey } from '@cps/core';

/**
 * The key that seals private keys at rest: `CPS_MASTER_KEY` (the material itself), else the file
 * `CPS_MASTER_KEY_FILE`, else `<home>/master.key`, created 0600 on first use.
 */
export const loadMasterKey = (
  home: string,
  env: NodeJS.ProcessEnv = process.env,
  create = false,
): SealingKey => {
  const inline = env['CPS_MASTER_KEY'];
  if (inline) return sealingKeyFrom(inline);
  const file = env['CPS_MASTER_KEY_FILE'] ?? join(home, 'master.key');
  if (!existsSync(file)) {
    if (!create)
      throw new CpsError(
        'unauthenticated',
        `master key not found at ${file}: set CPS_MASTER_KEY or CPS_MASTER_KEY_FILE`,
      );
    writeFileSync(file, newSealingKeyMaterial() + '\n', { mode: 0o600 });
  }
  if ((statSync(file).mode & 0o077) !== 0) {
    throw new CpsError('forbidden', `master key file ${file} is readable by others: chmod 600 it`);
  }
  return sealingKeyFrom(readFileSync(file, 'utf8'));
};
