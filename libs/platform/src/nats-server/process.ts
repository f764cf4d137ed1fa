import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, fstatSync, openSync, readSync, type WriteStream } from 'node:fs';
import { CpsError } from '@cps/core';

export interface NatsServerStartOptions {
  readonly binary: string;
  readonly configFile: string;
  /** The address clients reach it at (the one it listens on); 127.0.0.1 by default. */
  readonly host?: string;
  readonly port: number;
  /** The server's HTTP monitoring port, if it has one: readiness then waits for its `/healthz`. */
  readonly monitorPort?: number;
  /** Server output is appended here (it is also scanned for readiness). */
  readonly logFile?: string;
  readonly readyTimeoutMs?: number;
  /**
   * Leave the process running when the parent exits (the platform launcher): it writes its output
   * straight into `logFile`. An attached server writes through a pipe to this process, so that one
   * left behind by a crash dies at its next line.
   */
  readonly detached?: boolean;
}

/** Raised when the chosen port was taken between the check and the bind: pick another. */
export class AddressInUseError extends Error {
  override readonly name = 'AddressInUseError';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What a file holds from byte `from` on (at most 64 kB). */
const readFrom = (file: string, from: number): string => {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(64_000);
    return b.subarray(0, readSync(fd, b, 0, b.length, from)).toString();
  } finally {
    closeSync(fd);
  }
};

/** Servers this process started attached: killed when it exits, so no test or crash leaves one behind. */
const attached = new Set<ChildProcess>();
let exitHookInstalled = false;
const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of attached) c.kill('SIGKILL');
  });
};

/** One running nats-server child process. */
export class NatsServerProcess {
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly options: NatsServerStartOptions,
    private readonly log: WriteStream | undefined,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.exitCode = code;
        this.log?.end();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get url(): string {
    return `tls://${this.options.host ?? '127.0.0.1'}:${this.options.port}`;
  }

  get monitorUrl(): string | undefined {
    return this.options.monitorPort === undefined
      ? undefined
      : `http://127.0.0.1:${this.options.monitorPort}`;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  static async start(o: NatsServerStartOptions): Promise<NatsServerProcess> {
    const direct = o.detached === true && o.logFile !== undefined;
    const logFd = direct ? openSync(o.logFile, 'a', 0o600) : undefined;
    const from = logFd === undefined ? 0 : fstatSync(logFd).size;
    let child: ChildProcess;
    try {
      child = spawn(o.binary, ['-c', o.configFile], {
        stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
        detached: o.detached ?? false,
      });
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    if (!o.detached) {
      installExitHook();
      attached.add(child);
      child.once('exit', () => attached.delete(child));
    }
    const log = !direct && o.logFile ? createWriteStream(o.logFile, { flags: 'a', mode: 0o600 }) : undefined;
    const p = new NatsServerProcess(child, o, log);
    let piped = '';
    const onData = (b: Buffer): void => {
      // the server's last words may arrive after stop() has ended the log
      if (log && !log.writableEnded) log.write(b);
      if (piped.length < 64_000) piped += b.toString();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const output = (): string => (direct ? readFrom(o.logFile, from) : piped);
    const deadline = Date.now() + (o.readyTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      const out = output();
      if (!p.running) {
        const last = output();
        if (/address already in use/i.test(last)) throw new AddressInUseError(last.slice(-500));
        throw new CpsError(
          'unavailable',
          `nats-server exited with ${String(p.exitCode)}: ${last.slice(-1500)}`,
        );
      }
      if (out.includes('Server is ready') && (await p.healthy())) return p;
      await sleep(20);
    }
    await p.kill();
    throw new CpsError('timeout', `nats-server not ready in time: ${output().slice(-1500)}`);
  }

  /**
   * `/healthz` of the monitoring port: the server is up and JetStream is current. A server without
   * one is taken as healthy (a single server says it is ready once JetStream is enabled).
   */
  async healthy(): Promise<boolean> {
    if (this.monitorUrl === undefined) return this.running;
    try {
      const r = await fetch(`${this.monitorUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
      return r.ok;
    } catch {
      return false;
    }
  }

  /** Asks the server to re-read its configuration (no client is dropped). */
  reload(): void {
    this.child.kill('SIGHUP');
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) this.child.kill(signal);
    await this.exited;
  }

  async stop(timeoutMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!done) await this.kill();
  }

  whenExited(): Promise<number | null> {
    return this.exited;
  }

  /** Drops the parent's handles so a detached server outlives this process. */
  unref(): void {
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.child.unref();
  }
}
