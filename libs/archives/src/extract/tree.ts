import { refuse } from './refusal.js';

export const MAX_NAME_BYTES = 1024;
const MAX_LINK_HOPS = 40;

export type Kind = 'dir' | 'file' | 'symlink';

/**
 * The entry's name as a relative path inside the destination, `''` for the root itself. Refuses NUL,
 * names over 1024 bytes, absolute names and any `..` segment; drops `.` and empty segments.
 */
export const entryPath = (name: string): string => {
  if (name.includes('\0')) throw refuse(name, 'invalid_name', 'the name contains a NUL byte');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES)
    throw refuse(name, 'name_too_long', `the name is longer than ${MAX_NAME_BYTES} bytes`);
  if (name.startsWith('/')) throw refuse(name, 'absolute_path', 'absolute paths are not allowed');
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw refuse(name, 'parent_segment', '".." segments are not allowed');
  return segments.join('/');
};

const parentsOf = (path: string): string[] => {
  const segments = path.split('/');
  return segments.slice(1).map((_, i) => segments.slice(0, i + 1).join('/'));
};

/**
 * What the archive has put where so far. No entry may be reached through a symlink or a file, no
 * path may be written twice (directories excepted), and every symlink must resolve inside the root.
 */
export class Tree {
  private readonly kinds = new Map<string, Kind>();
  private readonly targets = new Map<string, string>();

  kindOf(path: string): Kind | undefined {
    return this.kinds.get(path);
  }

  /** Records `path` (and its parent directories) as `kind`, or refuses a conflict. */
  add(name: string, path: string, kind: Kind, target?: string): void {
    for (const p of parentsOf(path)) {
      const k = this.kinds.get(p);
      if (k !== undefined && k !== 'dir')
        throw refuse(name, 'path_conflict', `"${p}" is a ${k}, not a directory`);
      this.kinds.set(p, 'dir');
    }
    const existing = this.kinds.get(path);
    if (existing !== undefined && !(existing === 'dir' && kind === 'dir'))
      throw refuse(name, 'duplicate', `"${path}" appears twice in the archive`);
    this.kinds.set(path, kind);
    if (target !== undefined) this.targets.set(path, target);
  }

  directories(): string[] {
    return [...this.kinds].filter(([, k]) => k === 'dir').map(([p]) => p);
  }

  /**
   * Resolves the symlink at `path` through every symlink of the archive, the way the kernel would,
   * and refuses it if resolution ever climbs above the root or loops. Targets that do not exist are
   * allowed (resolution goes on lexically).
   */
  checkSymlink(name: string, path: string): void {
    const stack = path.split('/').slice(0, -1);
    const queue = this.linkTarget(path);
    let hops = 0;
    for (let segment = queue.shift(); segment !== undefined; segment = queue.shift()) {
      if (segment === '..') {
        if (stack.length === 0) throw refuse(name, 'link_outside', 'the link points outside the archive');
        stack.pop();
        continue;
      }
      stack.push(segment);
      if (this.kinds.get(stack.join('/')) === 'symlink') {
        if (++hops > MAX_LINK_HOPS) throw refuse(name, 'link_target', 'too many levels of symbolic links');
        queue.unshift(...this.linkTarget(stack.join('/')));
        stack.pop();
      }
    }
  }

  private linkTarget(path: string): string[] {
    return (this.targets.get(path) ?? '').split('/').filter((s) => s !== '' && s !== '.');
  }
}

/** Checks a symlink's target text before it is recorded: relative, no NUL, at most 1024 bytes. */
export const symlinkTarget = (name: string, target: string): string => {
  if (target === '' || target.includes('\0') || Buffer.byteLength(target) > MAX_NAME_BYTES)
    throw refuse(name, 'link_target', 'the link target is empty, too long or contains a NUL byte');
  if (target.startsWith('/')) throw refuse(name, 'link_outside', 'the link target is absolute');
  return target;
};
