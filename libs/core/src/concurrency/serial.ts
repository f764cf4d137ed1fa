/** A function that runs the work it is given one at a time, in the order given. */
export type Serial = <T>(work: () => Promise<T>) => Promise<T>;

/**
 * Work run one at a time, in the order given: each run starts when the one before has settled,
 * whatever its outcome, and a failure is its own caller's only.
 */
export const serial = (): Serial => {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
};

/** {@link serial} per key: work for one key runs one at a time; keys do not wait for each other. */
export const serialByKey = (): (<T>(key: string, work: () => Promise<T>) => Promise<T>) => {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const run = (tails.get(key) ?? Promise.resolve()).then(work, work);
    const settled = run.catch(() => undefined);
    tails.set(key, settled);
    // the last run of a key forgets it
    void settled.then(() => {
      if (tails.get(key) === settled) tails.delete(key);
    });
    return run;
  };
};
