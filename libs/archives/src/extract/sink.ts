import { chmod, link, mkdir, open, symlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { refuse } from './refusal.js';
import { entryPath, symlinkTarget, Tree } from './tree.js';

/** Limits on what one archive may unpack to. */
export interface ExtractLimits {
  /** Total bytes of all files, enforced while decompressing. Default 256 MiB. */
  readonly maxBytes?: number;
  /** Entries of any kind (directories and links included). Default 10,000. */
  readonly maxEntries?: number;
  /** Bytes of one file. Default: `maxBytes`. */
  readonly maxEntryBytes?: number;
}

export type Limits = Required<ExtractLimits>;

export const resolveLimits = (l: ExtractLimits = {}): Limits => {
  const maxBytes = l.maxBytes ?? 256 * 1024 * 1024;
  return { maxBytes, maxEntries: l.maxEntries ?? 10_000, maxEntryBytes: l.maxEntryBytes ?? maxBytes };
};

const WRITE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Only the executable bit of the archive's mode survives. */
export const fileMode = (mode: number | undefined): number => ((mode ?? 0) & 0o111 ? 0o755 : 0o644);

/**
 * Writes the entries of one archive under `root` (a fresh directory nobody else writes to), after the
 * checks of {@link Tree}. Symlinks are created last, once every entry is known and each link has been
 * resolved inside the root, so nothing is ever written through a link.
 */
export class Sink {
  files = 0;
  bytes = 0;
  private entries = 0;
  private readonly tree = new Tree();
  private readonly symlinks: { name: string; path: string; target: string }[] = [];

  constructor(
    private readonly root: string,
    private readonly limits: Limits,
  ) {}

  /** Counts one entry and returns its checked path relative to the root. */
  entry(name: string): string {
    if (++this.entries > this.limits.maxEntries)
      throw refuse(name, 'too_many_entries', `the archive has more than ${this.limits.maxEntries} entries`);
    return entryPath(name);
  }

  async directory(name: string, path: string): Promise<void> {
    if (path === '') return;
    this.tree.add(name, path, 'dir');
    await mkdir(join(this.root, path), { recursive: true });
  }

  /** Refuses a file whose declared size alone breaks a limit, before any byte is read. */
  reserve(name: string, declared: number): void {
    this.check(name, declared, declared);
  }

  async file(
    name: string,
    path: string,
    mode: number | undefined,
    data: AsyncIterable<Buffer>,
  ): Promise<number> {
    this.regular(name, path);
    await this.parent(path);
    const fh = await open(join(this.root, path), WRITE_NEW, 0o600);
    let size = 0;
    try {
      for await (const chunk of data) {
        size += chunk.length;
        this.bytes += chunk.length;
        this.check(name, size);
        await fh.write(chunk);
      }
      await fh.chmod(fileMode(mode));
    } finally {
      await fh.close();
    }
    this.files++;
    return size;
  }

  /** A hard link is allowed only to a regular file this archive wrote earlier. */
  async hardLink(name: string, path: string, target: string): Promise<void> {
    let targetPath: string;
    try {
      targetPath = entryPath(target);
    } catch {
      throw refuse(name, 'link_outside', 'the hard link target is outside the archive');
    }
    if (this.tree.kindOf(targetPath) !== 'file')
      throw refuse(name, 'link_target', 'a hard link must name a regular file earlier in the archive');
    this.regular(name, path);
    await this.parent(path);
    await link(join(this.root, targetPath), join(this.root, path));
    this.files++;
  }

  symlink(name: string, path: string, target: string): void {
    if (path === '') throw refuse(name, 'invalid_name', 'a link cannot replace the root');
    this.tree.add(name, path, 'symlink', symlinkTarget(name, target));
    this.symlinks.push({ name, path, target });
  }

  async finish(): Promise<{ files: number; bytes: number }> {
    for (const l of this.symlinks) this.tree.checkSymlink(l.name, l.path);
    for (const l of this.symlinks) {
      await this.parent(l.path);
      await symlink(l.target, join(this.root, l.path));
    }
    for (const d of ['', ...this.tree.directories()]) await chmod(join(this.root, d), 0o755);
    return { files: this.files, bytes: this.bytes };
  }

  private check(name: string, entryBytes: number, more = 0): void {
    if (entryBytes > this.limits.maxEntryBytes)
      throw refuse(name, 'entry_too_large', `the entry is larger than ${this.limits.maxEntryBytes} bytes`);
    if (this.bytes + more > this.limits.maxBytes)
      throw refuse(name, 'too_large', `the archive unpacks to more than ${this.limits.maxBytes} bytes`);
  }

  private regular(name: string, path: string): void {
    if (path === '') throw refuse(name, 'invalid_name', 'a file cannot replace the root');
    this.tree.add(name, path, 'file');
  }

  private async parent(path: string): Promise<void> {
    const p = dirname(path);
    if (p !== '.') await mkdir(join(this.root, p), { recursive: true });
  }
}
