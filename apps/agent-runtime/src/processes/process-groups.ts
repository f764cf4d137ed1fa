/**
 * Process groups of workloads this process started and that may still hold processes. When this
 * process exits (`process.exit`, end of the event loop, uncaught exception, or SIGTERM/SIGINT/SIGHUP
 * that nobody else handles) every one of them is sent SIGKILL, so no workload outlives its agent.
 *
 * A SIGKILL of the agent runs no hook at all: the cloud driver destroys the node then, and with
 * it the workloads. Each workload leads its own session and process group, so killing only the
 * agent's process group misses them: a driver of local nodes needs another handle on them (a
 * cgroup per node, or the workload pids the agent reported).
 */
const groups = new Set<number>();

const HOOKED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Sends `signal` to process group `pgid`; false when the group no longer exists. */
export const signalGroup = (pgid: number, signal: NodeJS.Signals): boolean => {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
};

const killAll = (): void => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  groups.clear();
};

const onSignal = (signal: NodeJS.Signals): void => {
  // Another listener means the host handles this signal (and exits through process.exit, which
  // the 'exit' hook covers); alone, we restore the default action and let the signal end us.
  if (process.listenerCount(signal) > 1) return;
  killAll();
  for (const s of HOOKED_SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
};

let installed = false;
const install = (): void => {
  if (installed) return;
  installed = true;
  process.once('exit', killAll);
  for (const s of HOOKED_SIGNALS) process.on(s, onSignal);
};

/** Records a live workload process group (its leader's pid) for the exit hook. */
export const trackGroup = (pgid: number): void => {
  install();
  groups.add(pgid);
};

/** The group is empty or killed: the exit hook leaves it alone (its id may be reused). */
export const untrackGroup = (pgid: number): void => {
  groups.delete(pgid);
};
