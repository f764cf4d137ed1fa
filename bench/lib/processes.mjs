// Processes and ports the benchmarks share: programs run to their end, servers started by hand and
// stopped by their pid, free ports on 127.0.0.1, and polling until something is ready. Every process
// is ended by its id (or its process group's), never by its name.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { sleep } from './stats.mjs';

/** The PATH a started program gets when the bench's own has none. */
const DEFAULT_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** Whether `tool` is a file in a directory of PATH. */
export const onPath = (tool) =>
  (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, tool)));

/** Sends `signal` to `pid` (a negative pid: its process group); false if there is no such process. */
export const signalPid = (pid, signal) => {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
};

/**
 * Runs a program to its end in its own process group (killed by id at `o.timeoutMs`, default 60 s);
 * answers its exit code and output. Only PATH and `o.env` reach it; `o.user` ({ uid, gid }) runs it
 * as that user; `o.input` is its standard input; `o.onLine(line, stream)` sees each output line as
 * it comes.
 */
export const run = (command, args, o = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH ?? DEFAULT_PATH, ...o.env },
      cwd: o.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    const partial = { stdout: '', stderr: '' };
    const feed = (stream, d) => {
      if (!o.onLine) return;
      const lines = (partial[stream] + d).split('\n');
      partial[stream] = lines.pop();
      for (const l of lines) o.onLine(l, stream);
    };
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      feed('stdout', d);
    });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr = (stderr + d).slice(-50_000);
      feed('stderr', d);
    });
    const timer = setTimeout(() => signalPid(-child.pid, 'SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      for (const s of ['stdout', 'stderr']) if (partial[s]) o.onLine?.(partial[s], s);
      resolve({ code: code ?? (signal ? 128 : 1), signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? '');
  });

/** `run`, answering its standard output; rejects, naming `what` and the output's end, unless it exits 0. */
export const must = async (what, command, args, o) => {
  const r = await run(command, args, o);
  if (r.code !== 0)
    throw new Error(
      `${what}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${(r.stderr || r.stdout).trim().slice(-800)}`,
    );
  return r.stdout;
};

/**
 * A server process started by hand: its output appended to `o.logFile`, only PATH and `o.env` in its
 * environment, run as `o.user` if given; stopped by its pid.
 */
export class Server {
  constructor(name, command, args, o) {
    this.name = name;
    this.logFile = o.logFile;
    const out = openSync(o.logFile, 'a');
    try {
      this.child = spawn(command, args, {
        cwd: o.cwd,
        env: { PATH: process.env.PATH ?? DEFAULT_PATH, ...o.env },
        stdio: ['ignore', out, out],
        ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}),
      });
    } finally {
      closeSync(out);
    }
    this.child.once('error', () => undefined);
    this.exited = new Promise((r) => this.child.once('exit', r));
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The end of its log (`chars` characters). */
  tail(chars = 800) {
    try {
      return readFileSync(this.logFile, 'utf8').trim().slice(-chars);
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM by pid, SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000) {
    if (!this.running) return;
    signalPid(this.child.pid, 'SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      signalPid(this.child.pid, 'SIGKILL');
      await this.exited;
    }
  }
}

const canListen = (port) =>
  new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/**
 * Ports on 127.0.0.1 from `first` to `last`: `take()` answers one that is free and not taken yet,
 * `release(port)` gives it back. Each case has a range of its own, so that two never share a port.
 */
export const portRange = (first, last) => {
  const taken = new Set();
  return {
    async take() {
      for (let port = first; port <= last; port++) {
        if (taken.has(port)) continue;
        if (await canListen(port)) {
          taken.add(port);
          return port;
        }
      }
      throw new Error(`no free port in ${first}-${last} on 127.0.0.1`);
    },
    release: (port) => taken.delete(port),
  };
};

/**
 * Polls `read` every `o.every` ms (default 250) until `ok` holds for what it answers, and answers
 * that; errors of `read` count as not yet. Rejects after `ms`, or once `o.scope.closed` is set.
 */
export const until = async (read, ok, ms, what, o = {}) => {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    if (o.scope?.closed) throw new Error(`stopped while waiting for ${what}`);
    try {
      last = await read();
      if (ok(last)) return last;
    } catch (e) {
      last = String(e?.message ?? e);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 1500)}`);
    await sleep(o.every ?? 250);
  }
};
