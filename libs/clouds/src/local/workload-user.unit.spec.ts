import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { workloadUser } from '../index.js';

describe('workloadUser', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cps-passwd-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const passwd = (text: string): string => {
    const file = join(dir, `passwd-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, text);
    return file;
  };

  it('reads the uid and gid of cps-work from a passwd file', () => {
    const file = passwd(
      'root:x:0:0:root:/root:/bin/bash\ncps-work:x:999:995::/home/cps-work:/usr/sbin/nologin\n',
    );
    expect(workloadUser(undefined, file)).toEqual({ uid: 999, gid: 995 });
  });

  it('is undefined when the account, its ids or the file are missing', () => {
    expect(
      workloadUser(undefined, passwd('root:x:0:0:root:/root:/bin/bash\ncps-worker:x:5:5::/:/bin/sh\n')),
    ).toBe(undefined);
    expect(workloadUser(undefined, passwd('cps-work:x::995::/:/bin/sh\n'))).toBeUndefined();
    expect(workloadUser(undefined, join(dir, 'absent'))).toBeUndefined();
  });
});
