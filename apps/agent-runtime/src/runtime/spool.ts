import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { appendFile, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, CpsError, NotFoundError, serial, ValidationError } from '@cps/core';
import { SPOOL_NAME_PATTERN } from '@cps/bus';

/** How long a piece waits for the pieces before it (sent together, arriving out of order). */
const ORDER_WAIT_MS = 2_000;

const sha256File = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });

/**
 * The node's spool: files in transit between the agent and its manager (a backup on its way to the
 * object store, one on its way back), in a directory of the node that workloads cannot reach. Names
 * are single tokens (no path); a file arriving is invisible until its last piece matched the
 * announced size and SHA-256.
 */
export class Spool {
  private readonly serially = serial();

  constructor(private readonly dir: string) {}

  /** Where spool file `name` lies (it may not exist yet: `exec` writes there). */
  path(name: string): string {
    if (!SPOOL_NAME_PATTERN.test(name))
      throw new ValidationError(`invalid spool name ${JSON.stringify(name.slice(0, 100))}`, [
        { path: '$.name', code: 'invalid_name', message: 'one token: [a-z0-9][a-z0-9._-]*, no ..' },
      ]);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return join(this.dir, name);
  }

  /** Size and SHA-256 of a complete file (`not_found` if none). */
  async info(name: string): Promise<{ size: number; digest: string }> {
    const p = this.path(name);
    if (!existsSync(p)) throw new NotFoundError(`no spool file ${name} on this node`);
    return { size: statSync(p).size, digest: await sha256File(p) };
  }

  /** Up to `length` bytes of `name` from `offset`. */
  async read(name: string, offset: number, length: number): Promise<Buffer> {
    const p = this.path(name);
    if (!existsSync(p)) throw new NotFoundError(`no spool file ${name} on this node`);
    const f = await open(p, 'r');
    try {
      const b = Buffer.alloc(length);
      const { bytesRead } = await f.read(b, 0, length, offset);
      return b.subarray(0, bytesRead);
    } finally {
      await f.close();
    }
  }

  remove(name: string): void {
    rmSync(this.path(name), { force: true });
    rmSync(`${this.path(name)}.part`, { force: true });
  }

  /**
   * One piece of `name`: `offset` 0 starts the file over; any other piece continues the held bytes.
   * A piece that arrives before those it follows (they were sent together) waits for them up to
   * {@link ORDER_WAIT_MS}, then is refused (`conflict`). The last piece is checked against `size` and
   * `digest` before the file appears.
   */
  async receive(p: {
    readonly name: string;
    readonly size: number;
    readonly digest: string;
    readonly offset: number;
    readonly data: Buffer;
  }): Promise<{ received: number; complete: boolean }> {
    const deadline = Date.now() + ORDER_WAIT_MS;
    for (;;) {
      const r = await this.serially(() => this.write(p));
      if (r !== 'later') return r;
      if (Date.now() > deadline)
        throw new ConflictError(`spool ${p.name}: piece at ${p.offset}, but the bytes before it never came`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private async write(
    p: Parameters<Spool['receive']>[0],
  ): Promise<{ received: number; complete: boolean } | 'later'> {
    const done = this.path(p.name);
    const part = `${done}.part`;
    const held = p.offset === 0 ? 0 : existsSync(part) ? statSync(part).size : 0;
    if (p.offset > held) return 'later';
    if (p.offset !== held)
      throw new ConflictError(`spool ${p.name}: piece at ${p.offset}, but ${held} bytes are held`);
    const received = p.offset + p.data.length;
    if (received > p.size)
      throw new CpsError('validation', `spool ${p.name}: more bytes than the announced ${p.size}`, [
        { path: '$.data', code: 'too_large', message: `past the announced size ${p.size}` },
      ]);
    if (p.offset === 0) await writeFile(part, p.data, { mode: 0o600 });
    else await appendFile(part, p.data);
    if (received < p.size) return { received, complete: false };
    if ((await sha256File(part)) !== p.digest) {
      rmSync(part, { force: true });
      throw new CpsError('validation', `spool ${p.name}: SHA-256 differs from the announced one`, [
        { path: '$.digest', code: 'mismatch', message: 'content does not match the digest' },
      ]);
    }
    renameSync(part, done);
    return { received, complete: true };
  }
}
