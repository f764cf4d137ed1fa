import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { connect } from 'node:net';
import type { ExecResult, WorkloadRequest } from '@cps/services';

const KEEP = 64 * 1024;

export interface ExecOptions {
  readonly cwd: string;
  /** The complete environment: nothing is inherited. */
  readonly env: Readonly<Record<string, string>>;
  /** Run as this account (the agent must be root); the agent's own account when absent. */
  readonly user: { readonly uid: number; readonly gid: number } | undefined;
  readonly input?: string;
  readonly timeoutMs: number;
  /** How much of the end of each output to keep (default 64 KiB). */
  readonly keepBytes?: number;
  /** A file the agent opens (never following a link) as its stdin, instead of `input`. */
  readonly stdinFile?: string;
  /** A file the agent creates (never following a link, mode 0600) for its stdout, kept whole. */
  readonly stdoutFile?: string;
}

/**
 * Runs one command to its end as the workload user, with `input` on its stdin, keeping the last
 * `keepBytes` (64 KiB) of each output; killed (the whole group) after `timeoutMs`, answered with code null.
 */
export const execAs = (command: string, args: readonly string[], o: ExecOptions): Promise<ExecResult> =>
  new Promise((resolve) => {
    const fds: number[] = [];
    const opened = (path: string, flags: number): number => {
      const fd = openSync(path, flags | constants.O_NOFOLLOW, 0o600);
      fds.push(fd);
      return fd;
    };
    let child;
    try {
      child = spawn(command, [...args], {
        cwd: o.cwd,
        env: { ...o.env },
        detached: true,
        stdio: [
          o.stdinFile === undefined ? 'pipe' : opened(o.stdinFile, constants.O_RDONLY),
          o.stdoutFile === undefined
            ? 'pipe'
            : opened(o.stdoutFile, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC),
          'pipe',
        ],
        ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}),
      });
    } catch (e) {
      resolve({ code: null, stdout: '', stderr: (e as Error).message });
      return;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const size = { stdout: 0, stderr: 0 };
    const limit = o.keepBytes ?? KEEP;
    const keep = (k: 'stdout' | 'stderr') => (b: Buffer) => {
      chunks[k].push(b);
      size[k] += b.length;
      while (chunks[k].length > 1 && size[k] - chunks[k][0]!.length >= limit)
        size[k] -= chunks[k].shift()!.length;
    };
    const text = (k: 'stdout' | 'stderr'): string => {
      const all = Buffer.concat(chunks[k]);
      return all.subarray(Math.max(0, all.length - limit)).toString();
    };
    child.stdout?.on('data', keep('stdout'));
    child.stderr?.on('data', keep('stderr'));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(o.input ?? '');
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }, o.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: text('stdout'), stderr: `${text('stderr')}${e.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: text('stdout'), stderr: text('stderr') });
    });
  });

/** Whether a workload's readiness probe passes now: its TCP port accepts, or its command exits 0 (2 s each). */
export const probe = async (
  ready: NonNullable<WorkloadRequest['ready']>,
  o: Omit<ExecOptions, 'timeoutMs' | 'input'> & { readonly address: string },
): Promise<boolean> => {
  if ('tcp' in ready)
    return new Promise((resolve) => {
      const socket = connect({ host: o.address, port: ready.tcp, timeout: 2_000 });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
      socket.once('timeout', () => done(false));
    });
  return (await execAs(ready.command, ready.args ?? [], { ...o, timeoutMs: 2_000 })).code === 0;
};
