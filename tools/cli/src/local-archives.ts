import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { CpsError } from '@cps/core';

/** A service of a manifest whose `Archive` names a file of this machine. */
export interface LocalArchive {
  /** Its index in `Services`. */
  readonly index: number;
  /** The file (or a directory, packed as tar.gz), resolved against the manifest's directory. */
  readonly file: string;
}

/** The bytes to upload: the archive file, or the directory packed as a gzipped tar. */
export const archiveBytes = async (file: string): Promise<Uint8Array> => {
  if (!statSync(file).isDirectory()) return readFileSync(file);
  const { create } = await import('tar');
  const chunks: Buffer[] = [];
  for await (const c of create({ gzip: true, cwd: file, portable: true }, ['.']) as AsyncIterable<Buffer>)
    chunks.push(c);
  return Buffer.concat(chunks);
};

/** A URL (`https://…`, `s3://…`): the director downloads it. Anything else is a local file. */
const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Splits a manifest into what the director deploys and the local archives the CLI uploads: each
 * `Archive` that names a file or a directory (relative to the manifest's directory) becomes
 * `upload:<name>`, which the director's deploy waits for before it starts anything.
 * A named file that does not exist is refused with its path, before anything is deployed.
 */
export const splitLocalArchives = (
  manifest: unknown,
  manifestFile: string,
): { manifest: unknown; archives: LocalArchive[] } => {
  const services = (manifest as { Services?: unknown } | null)?.Services;
  if (!Array.isArray(services)) return { manifest, archives: [] };
  const archives: LocalArchive[] = [];
  const issues: { path: string; code: string; message: string }[] = [];
  const kept = services.map((s: unknown, index) => {
    const archive = (s as { Archive?: unknown } | null)?.Archive;
    if (typeof archive !== 'string' || URL_LIKE.test(archive)) return s;
    const file = isAbsolute(archive) ? archive : resolve(dirname(manifestFile), archive);
    if (!existsSync(file))
      issues.push({
        path: `$.Services[${index}].Archive`,
        code: 'not_found',
        message: `no file or directory ${file}`,
      });
    archives.push({ index, file });
    // the director waits for this upload before it starts anything
    return { ...(s as Record<string, unknown>), Archive: `upload:${basename(file)}` };
  });
  if (issues.length > 0) throw new CpsError('validation', 'an archive of the manifest is missing', issues);
  return { manifest: { ...(manifest as object), Services: kept }, archives };
};
