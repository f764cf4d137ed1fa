import { readFileSync } from 'node:fs';
import { CpsError, isCpsError } from '@cps/core';

/** Prints rows as an aligned table with a header. */
export const table = (rows: readonly Record<string, unknown>[], columns: readonly string[]): void => {
  const cells = rows.map((r) => columns.map((c) => format(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  console.log(line(columns.map((c) => c.toUpperCase())));
  for (const r of cells) console.log(line(r));
};

const scalar = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);

const format = (v: unknown): string => {
  if (v === undefined || v === null) return '-';
  if (Array.isArray(v)) return v.map(scalar).join(',');
  if (typeof v === 'object')
    return Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}=${scalar(x)}`)
      .join(',');
  return scalar(v);
};

export const json = (v: unknown): void => console.log(JSON.stringify(v, null, 2));

/** Prints a failure for a person: code, message, one line per offending field; no stack trace. */
export const printError = (e: unknown): void => {
  if (isCpsError(e)) {
    console.error(`error [${e.code}]: ${e.message}`);
    for (const i of e.issues) console.error(`  ${i.path}: ${i.message} (${i.code})`);
    return;
  }
  console.error(`error: ${(e as Error).message ?? String(e)}`);
};

export const usage = (message: string): CpsError =>
  new CpsError('validation', message, [{ path: '$', code: 'usage', message }]);

/** What a file the user named is wrong with, by Node's error code. */
const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'a part of the path is not a directory',
};

/** Reads a file the user named: a failure says which file and why, plainly. */
export const readUserFile = (file: string): Buffer => {
  try {
    return readFileSync(file);
  } catch (e) {
    const why = FILE_ERRORS[(e as NodeJS.ErrnoException).code ?? ''];
    if (!why) throw e;
    throw new CpsError('validation', `${file}: ${why}`);
  }
};

interface JsonSchema {
  readonly type?: string | readonly string[];
  readonly items?: JsonSchema;
  readonly enum?: readonly unknown[];
  readonly anyOf?: readonly JsonSchema[];
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
}

const typeOf = (v: JsonSchema): string => {
  if (v.enum) return v.enum.map((x) => JSON.stringify(x)).join('|');
  if (v.anyOf) return v.anyOf.map(typeOf).join('|');
  if (v.type === 'array') return `${typeOf(v.items ?? {})}[]`;
  if (Array.isArray(v.type)) return v.type.join('|');
  return typeof v.type === 'string' ? v.type : 'any';
};

/** A method's arguments from their JSON Schema, for a table: `name: type`, `?` when optional. */
export const argsSummary = (schema: unknown): string => {
  const s = (schema ?? {}) as JsonSchema;
  return Object.entries(s.properties ?? {})
    .map(([k, v]) => `${k}${s.required?.includes(k) ? '' : '?'}: ${typeOf(v)}`)
    .join(', ');
};
