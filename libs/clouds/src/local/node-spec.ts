import { rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { ID_PATTERN, ValidationError, type Issue } from '@cps/core';
import { NODE_ENVIRONMENT_VARIABLES } from '../node-environment.js';
import type { NodeSpec } from '../types.js';

/** Variables the local cloud sets itself: a spec may not override them. */
const RESERVED_ENV: readonly string[] = ['HOME', ...NODE_ENVIRONMENT_VARIABLES];
/** Names in a node directory that belong to the cloud, not to contextualization files. */
const RESERVED_FILES = new Set(['node.json', 'node.json.tmp', 'node.log', 'work']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KINDS = new Set(['manager', 'agent']);

const issue = (path: string, code: string, message: string): Issue => ({ path, code, message });

/** Why `file` may not be written under a node directory, or undefined when it may. */
const fileProblem = (file: string): string | undefined => {
  if (file === '' || /[\0\\]/.test(file)) return 'must be a non-empty path with / separators';
  if (isAbsolute(file)) return 'must be relative to the node directory';
  const parts = file.split('/');
  if (parts.some((p) => p === '..' || p === '.' || p === ''))
    return 'must not contain "..", "." or empty parts';
  if (RESERVED_FILES.has(parts[0] as string)) return `${parts[0]} is reserved by the cloud`;
  return undefined;
};

const idIssues = (spec: NodeSpec): Issue[] =>
  (['nodeId', 'appId', 'serviceId'] as const)
    .filter((f) => typeof spec[f] !== 'string' || !ID_PATTERN.test(spec[f]))
    .map((f) => issue(`$.${f}`, 'invalid_id', `must match ${ID_PATTERN.source}`));

const contextIssues = (spec: NodeSpec): Issue[] => {
  const out: Issue[] = [];
  for (const file of Object.keys(spec.contextualization.files)) {
    const problem = fileProblem(file);
    if (problem)
      out.push(issue(`$.contextualization.files[${JSON.stringify(file)}]`, 'invalid_path', problem));
  }
  for (const [name, value] of Object.entries(spec.contextualization.env)) {
    const path = `$.contextualization.env[${JSON.stringify(name)}]`;
    if (!ENV_NAME.test(name)) out.push(issue(path, 'invalid_name', `must match ${ENV_NAME.source}`));
    else if (RESERVED_ENV.includes(name)) out.push(issue(path, 'reserved', 'set by the cloud'));
    else if (typeof value !== 'string' || value.includes('\0'))
      out.push(issue(path, 'invalid_value', 'must be a string without NUL'));
  }
  (spec.software ?? []).forEach((p, i) => {
    if (typeof p !== 'string' || !DEBIAN_PACKAGE.test(p))
      out.push(issue(`$.software[${i}]`, 'invalid_package', `must match ${DEBIAN_PACKAGE.source}`));
  });
  return out;
};

/** A Debian package name (policy 5.6.1): nothing a shell would read as more than one word. */
const DEBIAN_PACKAGE = /^[a-z0-9][a-z0-9+.-]{1,62}$/;

/** Throws a ValidationError unless `nodeId` is one id token (no dots, slashes or wildcards). */
export const validateNodeId = (nodeId: string): void => {
  if (typeof nodeId !== 'string' || !ID_PATTERN.test(nodeId))
    throw new ValidationError(`not a valid node id: ${JSON.stringify(nodeId)}`, [
      issue('$.nodeId', 'invalid_id', `must match ${ID_PATTERN.source}`),
    ]);
};

/** Throws a ValidationError naming every offending path of `spec`; touches nothing. */
export const validateNodeSpec = (spec: NodeSpec): void => {
  const issues = [...idIssues(spec), ...contextIssues(spec)];
  if (!KINDS.has(spec.kind)) issues.push(issue('$.kind', 'invalid_kind', 'must be manager or agent'));
  if (issues.length > 0)
    throw new ValidationError(
      `invalid node spec: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues,
    );
};

/** Writes the contextualization files of a validated spec into `nodeDir`: only the node reads them. */
export const writeNodeFiles = (nodeDir: string, files: NodeSpec['contextualization']['files']): void => {
  for (const [file, content] of Object.entries(files)) {
    const target = join(nodeDir, ...file.split('/'));
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    // the node's directory is this process's alone: a file left by the node's last start is replaced
    rmSync(target, { force: true });
    writeFileSync(target, content, { mode: 0o600, flag: 'wx' });
  }
};
