import { spawn } from 'node:child_process';
import { constants, createReadStream } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { detectFormat, extractArchive } from '@cps/archives';
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

/** The first bytes of a file, by which an archive's format is told. */
const headOf = async (path: string): Promise<Buffer> => {
  const fh = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(512), 0, 512, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
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

  /**
   * A tar or tar.gz is unpacked by GNU tar running as the workload user, in a directory of
   * staging given to it first (tar starts there: it never goes through staging, which it cannot
   * enter): the agent parses nothing a tenant wrote, and what a hostile archive could do is what
   * the workload can do anyway. The director read the same bytes through `inspectArchive` at
   * upload and the agent checked their digest. A zip is unpacked by `extractArchive` as before.
   */
  async unpack(version: string, name: string): Promise<{ readonly entries: readonly string[] }> {
    checkName(name);
    const archive = this.archivePath(version);
    const tmp = await this.fresh();
    let theirs = false;
    try {
      const format = detectFormat(await headOf(archive));
      if (format === 'zip' || format === undefined) {
        await extractArchive(archive, tmp);
        theirs = true;
        await this.giveAway(tmp);
      } else {
        await mkdir(tmp, { mode: 0o755 });
        theirs = true;
        if (this.user) await lchown(tmp, this.user.uid, this.user.gid);
        await this.untar(archive, format === 'tar.gz', tmp);
      }
      const entries = (await readdir(tmp)).sort();
      await this.moveIn(tmp, name);
      return { entries };
    } catch (e) {
      if (theirs) await this.clear(tmp);
      else await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  private untar(archive: string, gzip: boolean, dir: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const child = spawn(
        'tar',
        ['-x', ...(gzip ? ['-z'] : []), '-f', '-', '--no-same-owner', '--no-same-permissions'],
        {
          cwd: dir,
          env: { PATH: '/usr/bin:/bin' },
          stdio: ['pipe', 'ignore', 'pipe'],
          ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
        },
      );
      let err = '';
      child.stderr.on('data', (b: Buffer) => {
        if (err.length < 4096) err += b.toString();
      });
      const input = createReadStream(archive);
      input.on('error', (e) => {
        child.kill();
        reject(e);
      });
      child.stdin.on('error', () => undefined); // tar stopped reading: its exit says why
      input.pipe(child.stdin);
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0
          ? resolve()
          : reject(
              new ValidationError(`the archive cannot be unpacked: ${err.trim().slice(0, 500)}`, [
                { path: '$.version', code: 'invalid_archive', message: err.trim().slice(0, 200) },
              ]),
            ),
      );
    });
  }

  /**
   * Removes a tree of staging the workload user owns: its content by `find -delete` as that user,
   * then the emptied directory; never a recursive delete as root through what the user could
   * have rearranged (what it left behind stays in staging, where nothing reads it).
   */
  private async clear(tmp: string): Promise<void> {
    if (this.user)
      await new Promise<void>((resolve) => {
        const child = spawn('find', ['.', '-mindepth', '1', '-delete'], {
          cwd: tmp,
          env: { PATH: '/usr/bin:/bin' },
          stdio: 'ignore',
          uid: this.user!.uid,
          gid: this.user!.gid,
        });
        child.once('error', () => resolve());
        child.once('close', () => resolve());
      });
    await (this.user ? rmdir(tmp) : rm(tmp, { recursive: true, force: true })).catch(() => undefined);
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
