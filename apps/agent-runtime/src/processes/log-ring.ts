import { closeSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';

/** Which pipe a log line came from. */
export type LogStream = 'out' | 'err';

const NL = 0x0a;

const sizeOf = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

const readTail = (path: string, bytes: number): Buffer => {
  if (bytes <= 0) return Buffer.alloc(0);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = statSync(path).size;
    const length = Math.min(bytes, size);
    const buf = Buffer.alloc(length);
    const read = readSync(fd, buf, 0, length, size - length);
    return buf.subarray(0, read);
  } finally {
    closeSync(fd);
  }
};

/**
 * The last `limit` bytes of a workload's output on disk: `path` grows up to `limit` bytes, then
 * becomes `path.1` (replacing the previous one), so at most 2 × `limit` bytes are ever on disk.
 */
export class LogRing {
  private size: number;
  private warned = false;

  constructor(
    readonly path: string,
    readonly limit: number,
  ) {
    this.size = sizeOf(path);
  }

  /** Appends whole records (each ending in a newline); one longer than the limit is cut. */
  append(records: readonly Buffer[]): void {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for (const r of records) {
      const record =
        r.length <= this.limit ? r : Buffer.concat([r.subarray(0, this.limit - 1), Buffer.of(NL)]);
      if (this.size + batchBytes + record.length > this.limit) {
        this.write(batch);
        this.rotate();
        batch = [];
        batchBytes = 0;
      }
      batch.push(record);
      batchBytes += record.length;
    }
    this.write(batch);
  }

  /** The newest `bytes` (at most `limit`) of the log, starting at a line boundary when it was cut. */
  tail(bytes = this.limit): string {
    const want = Math.max(0, Math.min(bytes, this.limit));
    const current = readTail(this.path, want + 1);
    const older = readTail(`${this.path}.1`, want + 1 - current.length);
    const buf = Buffer.concat([older, current]);
    if (buf.length <= want) return buf.toString('utf8');
    const rest = buf.subarray(1);
    if (buf[0] === NL) return rest.toString('utf8');
    const nl = rest.indexOf(NL);
    return (nl >= 0 && nl < rest.length - 1 ? rest.subarray(nl + 1) : rest).toString('utf8');
  }

  private write(batch: readonly Buffer[]): void {
    if (batch.length === 0) return;
    const data = Buffer.concat(batch);
    try {
      const fd = openSync(this.path, 'a', 0o600);
      try {
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      if (!this.warned) process.emitWarning(`workload log ${this.path} unwritable: ${(e as Error).message}`);
      this.warned = true;
    }
    this.size += data.length;
  }

  private rotate(): void {
    try {
      renameSync(this.path, `${this.path}.1`);
    } catch {
      // nothing to rotate, or unwritable: write() reports it
    }
    this.size = 0;
  }
}

/** Longest line kept whole; a longer one is split into several records. */
const MAX_LINE = 16 * 1024;

/**
 * Splits one pipe's chunks into lines and appends them to `ring` as
 * `<stream> <ISO time> <line>\n` records; an unterminated last line is written by `end()`.
 */
export class LineWriter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly ring: LogRing,
    private readonly stream: LogStream,
  ) {}

  push(chunk: Buffer): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const prefix = Buffer.from(`${this.stream} ${new Date().toISOString()} `);
    const records: Buffer[] = [];
    for (let nl = data.indexOf(NL); nl >= 0; nl = data.indexOf(NL)) {
      records.push(Buffer.concat([prefix, data.subarray(0, nl + 1)]));
      data = data.subarray(nl + 1);
    }
    while (data.length >= MAX_LINE) {
      records.push(Buffer.concat([prefix, data.subarray(0, MAX_LINE), Buffer.of(NL)]));
      data = data.subarray(MAX_LINE);
    }
    this.pending = Buffer.from(data);
    this.ring.append(records);
  }

  end(): void {
    if (this.pending.length === 0) return;
    const prefix = Buffer.from(`${this.stream} ${new Date().toISOString()} `);
    this.ring.append([Buffer.concat([prefix, this.pending, Buffer.of(NL)])]);
    this.pending = Buffer.alloc(0);
  }
}
