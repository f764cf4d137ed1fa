/**
 * MariaDB GTID positions (`domain-server-sequence`, comma-separated, one per replication domain), as
 * the servers report them, and which of several is the most advanced. Pure.
 */

/** A position: the sequence number reached in each domain. */
export type GtidPosition = ReadonlyMap<number, number>;

export const parseGtid = (text: string): GtidPosition => {
  const out = new Map<number, number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(part);
    if (!m) continue;
    const domain = Number(m[1]);
    out.set(domain, Math.max(out.get(domain) ?? 0, Number(m[3])));
  }
  return out;
};

/** Whether `a` has everything `b` has (in every domain of `b`, at least as far). */
export const covers = (a: GtidPosition, b: GtidPosition): boolean =>
  [...b].every(([domain, seq]) => (a.get(domain) ?? 0) >= seq);

/** The total of a position's sequence numbers: an order for positions none of which covers all. */
const weight = (p: GtidPosition): number => [...p.values()].reduce((s, n) => s + n, 0);

/**
 * The candidate to promote: one whose position covers every other's when there is one (every
 * transaction any candidate received), else the furthest by total; ties go to the first given.
 */
export const mostAdvanced = <T extends { readonly position: string }>(
  candidates: readonly T[],
): T | undefined => {
  const parsed = candidates.map((c) => ({ c, p: parseGtid(c.position) }));
  const all = parsed.find((x) => parsed.every((y) => covers(x.p, y.p)));
  if (all) return all.c;
  return parsed.reduce<(typeof parsed)[number] | undefined>(
    (best, x) => (!best || weight(x.p) > weight(best.p) ? x : best),
    undefined,
  )?.c;
};
