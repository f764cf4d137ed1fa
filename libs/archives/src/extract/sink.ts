import { chmod, link, mkdir, open, symlink, type FileHandle } from 'node:fs/promises';
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

/**
 * Where the entries a {@link Sink} accepted go. Paths are relative to the destination and already
 * checked; `file` must consume `data` to its end (the checks run as it streams) unless it throws.
 */
export interface Output {
  directory(path: string): Promise<void>;
  file(path: string, mode: number, data: AsyncIterable<Buffer>): Promise<void>;
  hardLink(target: string, path: string): Promise<void>;
  /** Called only once every entry has been accepted and every link resolved inside the root. */
  symlink(target: string, path: string): Promise<void>;
  /** The end of an accepted archive, with every directory it made (`''` is the root). */
  finish(directories: readonly string[]): Promise<void>;
}

/** Files below this are written in the background, at most `PARALLEL_WRITES` at once. */
const SMALL_FILE = 1 << 20;
const PARALLEL_WRITES = 8;
const WRITE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Only the executable bit of the archive's mode survives. */
export const fileMode = (mode: number | undefined): number => ((mode ?? 0) & 0o111 ? 0o755 : 0o644);

/** Writes under `root`, a fresh directory nobody else writes to; directories end 0755. */
export class DiskOutput implements Output {
  /** Directories made so far (an archive names the same parents again and again). */
  private readonly made = new Set<string>();

  constructor(private readonly root: string) {}

  async directory(path: string): Promise<void> {
    if (this.made.has(path)) return;
    await mkdir(join(this.root, path), { recursive: true });
    this.made.add(path);
  }

  /**
   * Small files are read whole and written in the background, a few at a time (creating a file
   * costs the kernel more than its bytes, and two cores do it faster than one); `finish` waits for
   * them and throws the first failure. Large files are written as they are read.
   */
  async file(path: string, mode: number, data: AsyncIterable<Buffer>): Promise<void> {
    this.failed();
    await this.parent(path);
    const chunks: Buffer[] = [];
    let size = 0;
    let fh: FileHandle | undefined;
    try {
      for await (const chunk of data) {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= SMALL_FILE) {
          fh ??= await open(join(this.root, path), WRITE_NEW, 0o600);
          await fh.writev(chunks.splice(0));
          size = 0;
        }
      }
      if (fh) {
        if (chunks.length > 0) await fh.writev(chunks);
        await fh.chmod(mode);
        return;
      }
    } finally {
      await fh?.close();
    }
    while (this.pending.size >= PARALLEL_WRITES) await Promise.race(this.pending);
    const write = (async () => {
      const h = await open(join(this.root, path), WRITE_NEW, 0o600);
      try {
        if (chunks.length > 0) await h.writev(chunks);
        await h.chmod(mode);
      } finally {
        await h.close();
      }
    })().then(
      () => undefined,
      (e: unknown) => {
        this.error ??= e instanceof Error ? e : new Error(String(e));
      },
    );
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  private readonly pending = new Set<Promise<void>>();
  private error: Error | undefined;

  /** Waits for the background writes, failed or not (before what was written is deleted). */
  async settle(): Promise<void> {
    await Promise.all(this.pending);
  }

  /** Throws the first failure of a background write. */
  private failed(): void {
    if (this.error !== undefined) throw this.error;
  }

  async hardLink(target: string, path: string): Promise<void> {
    // its target must be whole first
    await Promise.all(this.pending);
    this.failed();
    await this.parent(path);
    await link(join(this.root, target), join(this.root, path));
  }

  async symlink(target: string, path: string): Promise<void> {
    await this.parent(path);
    await symlink(target, join(this.root, path));
  }

  async finish(directories: readonly string[]): Promise<void> {
    await Promise.all(this.pending);
    this.failed();
    for (const d of directories) await chmod(join(this.root, d), 0o755);
  }

  private async parent(path: string): Promise<void> {
    const p = dirname(path);
    if (p !== '.') await this.directory(p);
  }
}

/** Writes nothing: the content is read through (and so checked) and dropped. */
export const NO_OUTPUT: Output = {
  directory: async () => undefined,
  file: async (_path, _mode, data) => {
    for await (const chunk of data) void chunk;
  },
  hardLink: async () => undefined,
  symlink: async () => undefined,
  finish: async () => undefined,
};

/**
 * The rules every entry of one archive must pass, the same whether it is unpacked or only
 * inspected: names (see {@link entryPath}), the shape of the tree (see {@link Tree}), link targets,
 * counts and sizes. What passes goes to `out`; symlinks go last, once every entry is known and each
 * link has been resolved inside the root, so nothing is ever written through a link.
 */
export class Sink {
  files = 0;
  bytes = 0;
  /** Regular files at the root or one directory down (`index.php`, `site/index.php`). */
  readonly nearRoot: string[] = [];
  private entries = 0;
  private declared = 0;
  private readonly tree = new Tree();
  private readonly symlinks: { name: string; path: string; target: string }[] = [];

  constructor(
    private readonly out: Output,
    private readonly limits: Limits,
  ) {}

  /** Refuses an archive whose directory declares, before any entry is read, too many entries. */
  declareEntries(count: number): void {
    if (count > this.limits.maxEntries)
      throw refuse(
        undefined,
        'too_many_entries',
        `the archive declares ${count} entries, more than ${this.limits.maxEntries}`,
      );
  }

  /** Refuses, from a directory read before any entry, a file whose declared size breaks a limit. */
  declareFile(name: string, size: number): void {
    this.declared += size;
    this.check(name, size, this.declared);
  }

  /** Counts one entry, refusing the first one over the limit. */
  count(name: string): void {
    if (++this.entries > this.limits.maxEntries)
      throw refuse(name, 'too_many_entries', `the archive has more than ${this.limits.maxEntries} entries`);
  }

  /** The entry's checked path relative to the root. */
  path(name: string): string {
    return entryPath(name);
  }

  async directory(name: string, path: string): Promise<void> {
    if (path === '') return;
    this.tree.add(name, path, 'dir');
    await this.out.directory(path);
  }

  /** Refuses a file whose declared size alone breaks a limit, before any byte is read. */
  reserve(name: string, declared: number): void {
    this.check(name, declared, this.bytes + declared);
  }

  async file(
    name: string,
    path: string,
    mode: number | undefined,
    data: AsyncIterable<Buffer>,
  ): Promise<number> {
    this.regular(name, path);
    let size = 0;
    const counted = async function* (this: Sink): AsyncGenerator<Buffer> {
      for await (const chunk of data) {
        size += chunk.length;
        this.bytes += chunk.length;
        this.check(name, size, this.bytes);
        yield chunk;
      }
    };
    await this.out.file(path, fileMode(mode), counted.call(this));
    this.counted(path);
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
    await this.out.hardLink(targetPath, path);
    this.counted(path);
  }

  symlink(name: string, path: string, target: string): void {
    if (path === '') throw refuse(name, 'invalid_name', 'a link cannot replace the root');
    this.tree.add(name, path, 'symlink', symlinkTarget(name, target));
    this.symlinks.push({ name, path, target });
  }

  async finish(): Promise<{ files: number; bytes: number; nearRoot: readonly string[] }> {
    for (const l of this.symlinks) this.tree.checkSymlink(l.name, l.path);
    for (const l of this.symlinks) await this.out.symlink(l.target, l.path);
    await this.out.finish(['', ...this.tree.directories()]);
    return { files: this.files, bytes: this.bytes, nearRoot: this.nearRoot };
  }

  private counted(path: string): void {
    this.files++;
    if (path.split('/').length <= 2 && this.nearRoot.length < 10_000) this.nearRoot.push(path);
  }

  private check(name: string, entryBytes: number, totalBytes: number): void {
    if (entryBytes > this.limits.maxEntryBytes)
      throw refuse(name, 'entry_too_large', `the entry is larger than ${this.limits.maxEntryBytes} bytes`);
    if (totalBytes > this.limits.maxBytes)
      throw refuse(name, 'too_large', `the archive unpacks to more than ${this.limits.maxBytes} bytes`);
  }

  private regular(name: string, path: string): void {
    if (path === '') throw refuse(name, 'invalid_name', 'a file cannot replace the root');
    this.tree.add(name, path, 'file');
  }
}
