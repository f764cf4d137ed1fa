import { ValidationError } from '@cps/core';

/** Why an archive, or one entry of it, was refused: the `code` of the issue in the error. */
export const ArchiveIssueCodes = {
  unknown_format: 'unknown_format',
  corrupt: 'corrupt',
  absolute_path: 'absolute_path',
  parent_segment: 'parent_segment',
  invalid_name: 'invalid_name',
  name_too_long: 'name_too_long',
  duplicate: 'duplicate',
  path_conflict: 'path_conflict',
  link_outside: 'link_outside',
  link_target: 'link_target',
  unsupported_type: 'unsupported_type',
  too_many_entries: 'too_many_entries',
  entry_too_large: 'entry_too_large',
  too_large: 'too_large',
} as const;
export type ArchiveIssueCode = (typeof ArchiveIssueCodes)[keyof typeof ArchiveIssueCodes];

const MAX_SHOWN = 1024;

/** Control characters are escaped so the path stays printable; very long names are cut. */
const printable = (name: string): string => {
  // eslint-disable-next-line no-control-regex
  const s = name.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}…` : s;
};

export const archivePath = (entry?: string): string =>
  entry === undefined ? '$.archive' : `$.archive.${printable(entry)}`;

/** The one error every refusal throws: code `validation`, one issue naming the entry. */
export const refuse = (entry: string | undefined, code: ArchiveIssueCode, message: string): ValidationError =>
  new ValidationError(
    entry === undefined
      ? `archive refused: ${message}`
      : `archive entry "${printable(entry)}" refused: ${message}`,
    [{ path: archivePath(entry), code, message }],
  );
