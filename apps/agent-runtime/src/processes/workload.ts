import { ValidationError, type Issue } from '@cps/core';

/** When a workload that exited is started again. */
export type RestartPolicy = 'always' | 'on-failure' | 'never';

/** Exponential back-off between restarts: `initialMs`, doubled per consecutive crash, capped at `maxMs`. */
export interface BackoffPolicy {
  /** First delay. Default 250. */
  readonly initialMs?: number;
  /** Upper bound of the delay. Default 10_000. */
  readonly maxMs?: number;
  /** A run that lasted at least this long resets the delay to `initialMs`. Default 30_000. */
  readonly resetAfterMs?: number;
}

/** What to run and how to keep it running. */
export interface WorkloadSpec {
  /** One token (`[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 64 characters): the log file is named after it. */
  readonly name: string;
  /** Executable: an absolute path, or a name looked up in `env.PATH`. */
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** The complete environment of the workload: nothing is inherited from the agent process. */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Written to the workload's stdin at every start, which is then closed (a server that reads its
   * configuration there: a secret in it is in no file and no argument). Without it stdin is empty.
   */
  readonly input?: string;
  /** Run as this unprivileged user (uid and gid > 0, supplementary groups dropped; the agent must be root). */
  readonly user?: { readonly uid: number; readonly gid: number };
  readonly restart: RestartPolicy;
  readonly backoff?: BackoffPolicy;
  /** More restarts than this within `restartWindowMs` and the workload is `failed`. Default: unlimited. */
  readonly maxRestarts?: number;
  /** The sliding window `maxRestarts` counts in. Default 60_000. */
  readonly restartWindowMs?: number;
  /**
   * Where the workload's stdout goes instead of its log: every chunk as it is read (a stream of
   * figures such as an access log, which the agent reads this way without opening any path).
   */
  readonly onStdout?: (chunk: Buffer) => void;
  /** Size of the log ring (`<logDir>/<name>.log` plus one rotated file). Default 1 MiB, at least 1 KiB. */
  readonly logLimitBytes?: number;
}

/**
 * - `starting`: spawned, not yet confirmed by the OS.
 * - `running`: the main process runs.
 * - `backoff`: it exited and waits for its restart.
 * - `stopped`: stopped on request.
 * - `exited`: exited and the policy does not restart it.
 * - `failed`: it crashed more than `maxRestarts` times within the window.
 */
export type WorkloadState = 'starting' | 'running' | 'backoff' | 'stopped' | 'exited' | 'failed';

/** One end of a run: exit code or signal, or `error` when the process could not be spawned at all. */
export interface WorkloadExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly at: Date;
  /** How long the run lasted. */
  readonly ranMs: number;
  readonly error?: string;
}

export interface WorkloadStatus {
  readonly name: string;
  readonly state: WorkloadState;
  /** The main process, which leads the workload's process group (pgid = pid). */
  readonly pid?: number;
  /** Restarts since the last `start()`. */
  readonly restarts: number;
  readonly lastExit?: WorkloadExit;
  /** Start of the current (or last) run. */
  readonly startedAt?: Date;
}

/** What the supervisor reports to its `onEvent` listeners; the agent forwards these to its manager. */
export type WorkloadEvent =
  | {
      readonly type: 'started';
      readonly name: string;
      readonly pid: number;
      readonly restarts: number;
      readonly at: Date;
    }
  | { readonly type: 'exited'; readonly name: string; readonly pid?: number; readonly exit: WorkloadExit }
  | {
      readonly type: 'restarting';
      readonly name: string;
      readonly delayMs: number;
      /** 1 for the first restart after `start()`. */
      readonly attempt: number;
      readonly at: Date;
    }
  | {
      readonly type: 'failed';
      readonly name: string;
      readonly restarts: number;
      readonly reason: string;
      readonly lastExit: WorkloadExit;
      readonly at: Date;
    };

export type WorkloadEventListener = (event: WorkloadEvent) => void;

export const DEFAULT_LOG_LIMIT_BYTES = 1024 * 1024;
const DEFAULT_WINDOW_MS = 60_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The spec with every default filled in. */
export interface ResolvedSpec extends WorkloadSpec {
  readonly backoff: Required<BackoffPolicy>;
  readonly restartWindowMs: number;
  readonly logLimitBytes: number;
}

const positive = (v: number | undefined): boolean => v === undefined || (Number.isFinite(v) && v > 0);

const issuesOf = (s: WorkloadSpec): Issue[] => {
  const issues: Issue[] = [];
  const bad = (path: string, message: string): void => void issues.push({ path, code: 'invalid', message });
  if (!NAME.test(s.name)) bad('name', 'one token: letters, digits, _ . - (at most 64)');
  if (s.command.length === 0) bad('command', 'empty');
  if (!s.args.every((a) => typeof a === 'string')) bad('args', 'strings only');
  if (!Object.values(s.env).every((v) => typeof v === 'string')) bad('env', 'string values only');
  if (
    s.user &&
    !(Number.isInteger(s.user.uid) && s.user.uid > 0 && Number.isInteger(s.user.gid) && s.user.gid > 0)
  )
    bad('user', 'uid and gid of an unprivileged user (> 0)');
  if (!['always', 'on-failure', 'never'].includes(s.restart)) bad('restart', 'always | on-failure | never');
  const b = s.backoff ?? {};
  if (![b.initialMs, b.maxMs, b.resetAfterMs, s.restartWindowMs].every(positive))
    bad('backoff', 'durations must be positive');
  if (s.maxRestarts !== undefined && !(Number.isInteger(s.maxRestarts) && s.maxRestarts >= 0))
    bad('maxRestarts', 'a non-negative integer');
  if (s.logLimitBytes !== undefined && !(Number.isInteger(s.logLimitBytes) && s.logLimitBytes >= 1024))
    bad('logLimitBytes', 'an integer of at least 1024');
  return issues;
};

/** Checks a spec and fills in the defaults; throws a `validation` CpsError listing every problem. */
export const resolveSpec = (spec: WorkloadSpec): ResolvedSpec => {
  const issues = issuesOf(spec);
  if (issues.length > 0) throw new ValidationError(`invalid workload spec '${spec.name}'`, issues);
  return {
    ...spec,
    backoff: {
      initialMs: spec.backoff?.initialMs ?? 250,
      maxMs: spec.backoff?.maxMs ?? 10_000,
      resetAfterMs: spec.backoff?.resetAfterMs ?? 30_000,
    },
    restartWindowMs: spec.restartWindowMs ?? DEFAULT_WINDOW_MS,
    logLimitBytes: spec.logLimitBytes ?? DEFAULT_LOG_LIMIT_BYTES,
  };
};

/** The delay before restart number `crashes + 1` of a run of consecutive crashes. */
export const backoffDelayMs = (crashes: number, backoff: Required<BackoffPolicy>): number =>
  Math.min(backoff.initialMs * 2 ** Math.min(crashes, 30), backoff.maxMs);

/** Whether `policy` restarts a workload that ended with `exit`. */
export const wantsRestart = (
  policy: RestartPolicy,
  exit: Pick<WorkloadExit, 'code' | 'signal' | 'error'>,
): boolean => {
  switch (policy) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'on-failure':
      return exit.code !== 0 || exit.signal !== null || exit.error !== undefined;
    default: {
      const _exhaustive: never = policy;
      return _exhaustive;
    }
  }
};
