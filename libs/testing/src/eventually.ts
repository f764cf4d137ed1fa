/**
 * Polls `read` until `accept` holds (or `ms` pass, then returns the last value for the test to
 * assert on). For reads from replicas, which converge but may lag a write by milliseconds.
 */
export const eventually = async <T>(
  read: () => Promise<T>,
  accept: (v: T) => boolean,
  ms = 3_000,
): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (accept(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
};
