import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, CpsError, NotFoundError } from '@cps/core';

/** One piece of an archive, as `archive_chunk` carries it (already validated). */
export interface ArchivePiece {
  readonly version: string;
  readonly size: number;
  readonly digest: string;
  readonly offset: number;
  readonly data: Buffer;
}

const sha256File = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });

/**
 * Receives archives from the manager, piece by piece, into a directory of the node that workloads
 * cannot reach. A piece must continue exactly where the held bytes end (`conflict` otherwise; offset
 * 0 starts over); the last piece is checked against the announced size and SHA-256 before the
 * archive becomes visible. Only the newest complete archive is kept.
 */
export class ArchiveReceiver {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string) {}

  receive(p: ArchivePiece): Promise<{ received: number; complete: boolean }> {
    const run = () => this.write(p);
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The path of complete archive `version`, or `not_found`. */
  path(version: string): string {
    const path = join(this.dir, `${version}.archive`);
    if (!existsSync(path)) throw new NotFoundError(`this node has no complete archive ${version}`);
    return path;
  }

  private async write(p: ArchivePiece): Promise<{ received: number; complete: boolean }> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const done = join(this.dir, `${p.version}.archive`);
    if (existsSync(done) && statSync(done).size === p.size) return { received: p.size, complete: true };
    const part = join(this.dir, `${p.version}.part`);
    const held = p.offset === 0 ? 0 : existsSync(part) ? statSync(part).size : 0;
    if (p.offset !== held)
      throw new ConflictError(`archive ${p.version}: piece at ${p.offset}, but ${held} bytes are held`);
    const received = p.offset + p.data.length;
    if (received > p.size)
      throw new CpsError('validation', `archive ${p.version}: more bytes than the announced ${p.size}`, [
        { path: '$.data', code: 'too_large', message: `past the announced size ${p.size}` },
      ]);
    if (p.offset === 0) await writeFile(part, p.data, { mode: 0o600 });
    else await appendFile(part, p.data);
    if (received < p.size) return { received, complete: false };
    const digest = await sha256File(part);
    if (digest !== p.digest) {
      rmSync(part, { force: true });
      throw new CpsError('validation', `archive ${p.version}: SHA-256 differs from the announced one`, [
        { path: '$.digest', code: 'mismatch', message: 'content does not match the digest' },
      ]);
    }
    renameSync(part, done);
    for (const f of readdirSync(this.dir))
      if (f !== `${p.version}.archive`) rmSync(join(this.dir, f), { force: true });
    return { received, complete: true };
  }
}
