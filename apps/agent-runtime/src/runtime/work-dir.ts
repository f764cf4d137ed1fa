import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { extractArchive } from '@cps/archives';
import { ConflictError, CpsError, ValidationError } from '@cps/core';
import type { WorkFiles } from '@cps/services';

/** The account workloads run as; absent when the agent is not root (then the agent is that account). */
export interface WorkUser {
  readonly uid: number;
  readonly gid: number;
}

const NAME = /^(?!\.{1,2}$)[^/\0]{1,255}$/;
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

const checkName = (name: string): void => {
  if (!NAME.test(name))
    throw new ValidationError(`'${name}' is not one entry of the work directory`, [
      { path: '$.name', code: 'invalid', message: 'one name: no /, not . or ..' },
    ]);
};

const isErrno = (e: unknown, ...codes: string[]): boolean =>
  codes.includes((e as NodeJS.ErrnoException).code ?? '');

/**
 * {@link WorkFiles} over `<nodeDir>/work`: everything is prepared in `<nodeDir>/staging` (inside
 * the node's directory, which workloads cannot enter, and on the same file system), given to the
 * workload user there, and moved in with one `rename`, which replaces the last name and follows
 * nothing. The work directory itself cannot be swapped: its parent is the agent's. Deleting in the
 * work directory is done by `rm` running as the workload user, so a tree the workload rearranges
 * while it is deleted can only cost the workload its own files.
 */
export class WorkDir implements WorkFiles {
  private readonly staging: string;

  constructor(
    readonly path: string,
    nodeDir: string,
    private readonly archivePath: (version: string) => string,
    private readonly user?: WorkUser,
  ) {
    this.staging = join(nodeDir, 'staging');
  }

  async write(name: string, data: string | Uint8Array): Promise<void> {
    checkName(name);
    const tmp = await this.fresh();
    const fh = await open(tmp, CREATE, 0o600);
    try {
      await fh.writeFile(data);
      if (this.user) await fh.chown(this.user.uid, this.user.gid);
      await fh.chmod(0o644);
    } finally {
      await fh.close();
    }
    await this.moveIn(tmp, name);
  }

  async unpack(version: string, name: string): Promise<{ readonly entries: readonly string[] }> {
    checkName(name);
    const tmp = await this.fresh();
    try {
      await extractArchive(this.archivePath(version), tmp);
      const entries = (await readdir(tmp)).sort();
      await this.giveAway(tmp);
      await this.moveIn(tmp, name);
      return { entries };
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Makes the work directory (0700, the workload user's) when the node's cloud did not: the local
   * cloud makes it with the node's directory, an IaaS instance's boot script does not.
   */
  async ensure(): Promise<void> {
    try {
      await mkdir(this.path, { mode: 0o700 });
    } catch (e) {
      if (isErrno(e, 'EEXIST')) return;
      throw e;
    }
    if (this.user) await lchown(this.path, this.user.uid, this.user.gid);
  }

  async remove(name: string): Promise<void> {
    checkName(name);
    await new Promise<void>((resolve, reject) => {
      const child = spawn('/bin/rm', ['-rf', '--', name], {
        cwd: this.path,
        env: {},
        stdio: ['ignore', 'ignore', 'pipe'],
        ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
      });
      let err = '';
      child.stderr.on('data', (b: Buffer) => {
        if (err.length < 4096) err += b.toString();
      });
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0
          ? resolve()
          : reject(new CpsError('internal', `cannot remove ${name} from the work directory: ${err.trim()}`)),
      );
    });
  }

  async mkdir(name: string): Promise<void> {
    checkName(name);
    try {
      const st = await lstat(join(this.path, name));
      // the workload may swap it right after: it can only cost itself, nothing here follows it
      if (st.isDirectory() && (!this.user || st.uid === this.user.uid)) return;
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
    const tmp = await this.fresh();
    await mkdir(tmp, { mode: 0o750 });
    await this.giveAway(tmp);
    await this.moveIn(tmp, name);
  }

  /** A name in the staging directory that nothing uses yet. */
  private async fresh(): Promise<string> {
    await mkdir(this.staging, { recursive: true, mode: 0o700 });
    return join(this.staging, randomBytes(8).toString('hex'));
  }

  /** Hands a tree the agent just made in staging (nobody else can reach it) to the workload user. */
  private async giveAway(path: string): Promise<void> {
    if (!this.user) return;
    // one `chown -R -h` (links themselves, never what they name) over a tree only the agent reaches
    const { uid, gid } = this.user;
    await new Promise<void>((resolve, reject) => {
      const child = spawn('/bin/chown', ['-R', '-h', `${uid}:${gid}`, '--', path], {
        env: {},
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (b: Buffer) => {
        if (err.length < 4096) err += b.toString();
      });
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`chown -R exited ${code}: ${err.trim()}`)),
      );
    });
  }

  /**
   * Replaces `name` in the work directory with `tmp`. Whatever is in the way (a file, a link, a
   * directory of the workload's) is first removed as the workload user; a workload that puts
   * something back in between makes the rename fail, and it is tried once more.
   */
  private async moveIn(tmp: string, name: string): Promise<void> {
    const dest = join(this.path, name);
    const dir = (await lstat(tmp)).isDirectory();
    for (let attempt = 0; ; attempt++) {
      try {
        if (dir) await this.remove(name);
        await rename(tmp, dest);
        return;
      } catch (e) {
        if (attempt === 0 && isErrno(e, 'ENOTEMPTY', 'EEXIST', 'ENOTDIR', 'EISDIR')) {
          if (!dir) await this.remove(name);
          continue;
        }
        await rm(tmp, { recursive: true, force: true });
        throw isErrno(e, 'ENOTEMPTY', 'EEXIST', 'ENOTDIR', 'EISDIR')
          ? new ConflictError(`the workload keeps ${name} busy in its work directory`, { cause: e })
          : e;
      }
    }
  }
}
