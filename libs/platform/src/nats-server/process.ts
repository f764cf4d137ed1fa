import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { CpsError } from '@cps/core';

export interface NatsServerStartOptions {
  readonly binary: string;
  readonly configFile: string;
  readonly port: number;
  readonly monitorPort: number;
  /** Server output is appended here (it is also scanned for readiness). */
  readonly logFile?: string;
  readonly readyTimeoutMs?: number;
  /** Leave the process running when the parent exits (the platform launcher). */
  readonly detached?: boolean;
}

/** Raised when the chosen port was taken between the check and the bind: pick another. */
export class AddressInUseError extends Error {
  override readonly name = 'AddressInUseError';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
    return `tls://127.0.0.1:${this.options.port}`;
  }

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.options.monitorPort}`;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  static async start(o: NatsServerStartOptions): Promise<NatsServerProcess> {
    const child = spawn(o.binary, ['-c', o.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: o.detached ?? false,
    });
    if (!o.detached) {
      installExitHook();
      attached.add(child);
      child.once('exit', () => attached.delete(child));
    }
    const log = o.logFile ? createWriteStream(o.logFile, { flags: 'a', mode: 0o600 }) : undefined;
    const p = new NatsServerProcess(child, o, log);
    let output = '';
    const onData = (b: Buffer): void => {
      log?.write(b);
      if (output.length < 64_000) output += b.toString();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const deadline = Date.now() + (o.readyTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      if (!p.running) {
        if (/address already in use/i.test(output)) throw new AddressInUseError(output.slice(-500));
        throw new CpsError(
          'unavailable',
          `nats-server exited with ${String(p.exitCode)}: ${output.slice(-1500)}`,
        );
      }
      if (output.includes('Server is ready') && (await p.healthy())) return p;
      await sleep(20);
    }
    await p.kill();
    throw new CpsError('timeout', `nats-server not ready in time: ${output.slice(-1500)}`);
  }

  /** `/healthz` of the monitoring port: the server is up and JetStream is current. */
  async healthy(): Promise<boolean> {
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
