import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError } from '@cps/core';
import { Spool } from './spool.js';

/** One piece of an archive, as `archive_chunk` carries it (already validated). */
export interface ArchivePiece {
  readonly version: string;
  readonly size: number;
  readonly digest: string;
  readonly offset: number;
  readonly data: Buffer;
}

/**
 * Receives archives from the manager, piece by piece, into a directory of the node that workloads
 * cannot reach: a spool of its own (see {@link Spool}: in order, checked against the announced size
 * and SHA-256 before it appears). Only the newest complete archive is kept.
 */
export class ArchiveReceiver {
  private readonly spool: Spool;

  constructor(private readonly dir: string) {
    this.spool = new Spool(dir);
  }

  async receive(p: ArchivePiece): Promise<{ received: number; complete: boolean }> {
    const name = `${p.version}.archive`;
    const done = join(this.dir, name);
    if (existsSync(done) && statSync(done).size === p.size) return { received: p.size, complete: true };
    const r = await this.spool.receive({ ...p, name });
    if (r.complete)
      for (const f of readdirSync(this.dir)) if (f !== name) rmSync(join(this.dir, f), { force: true });
    return r;
  }

  /** The path of complete archive `version`, or `not_found`. */
  path(version: string): string {
    const path = join(this.dir, `${version}.archive`);
    if (!existsSync(path)) throw new NotFoundError(`this node has no complete archive ${version}`);
    return path;
  }
}
