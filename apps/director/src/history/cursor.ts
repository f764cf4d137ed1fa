import type { RecordedEvent } from '@cps/events';

/**
 * A place in the event stream, between two events: after the event at `index` of commit `commit`,
 * or after the whole commit when `index` is absent (`0`: the very beginning).
 */
export interface Cursor {
  readonly commit: number;
  readonly index?: number;
}

const CURSOR = /^(0|[1-9][0-9]{0,14})(?:\.(0|[1-9][0-9]{0,5}))?$/;

/**
 * The cursor just after `e`, as the opaque string clients send back (`after`, `Last-Event-ID`):
 * the last event of a commit gives the commit's position alone, so the next read starts at the
 * next commit.
 */
export const cursorOf = (e: RecordedEvent): string =>
  e.endOfCommit ? String(e.position.commit) : `${e.position.commit}.${e.position.index}`;

/** The cursor a string names, or undefined when it is not one this API handed out. */
export const parseCursor = (text: string): Cursor | undefined => {
  const m = CURSOR.exec(text);
  if (!m) return undefined;
  const commit = Number(m[1]);
  if (m[2] === undefined) return { commit };
  if (commit === 0) return undefined;
  return { commit, index: Number(m[2]) };
};

/** True when `e` comes after the cursor. */
export const isAfter = (e: RecordedEvent, c: Cursor): boolean =>
  e.position.commit > c.commit ||
  (c.index !== undefined && e.position.commit === c.commit && e.position.index > c.index);

/** The global position to read from (exclusive) so that every event after `c` is seen. */
export const readFrom = (c: Cursor): number => (c.index === undefined ? c.commit : c.commit - 1);
