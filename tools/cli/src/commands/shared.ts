import type { Command } from 'commander';
import { CpsError } from '@cps/core';
import type { CpsClient } from '@cps/sdk';
import { call, client, waitFor, type ContextFlags } from '../director-client.js';
import { json } from '../output.js';

/** The global flags every command sees. */
export interface GlobalFlags extends ContextFlags {
  readonly json?: boolean;
  readonly home: string;
}

export type Globals = () => GlobalFlags;

/** The director of the current context, and a helper that unwraps answers. */
export const director = (g: Globals) => {
  const { url, cps, context } = client(g());
  const ask = <T>(p: Promise<{ data?: T; error?: unknown; response: Response }>) => call(url, p);
  return { url, cps, context, ask };
};

/** `--app`'s value: commands on a service name its application. */
export const needApp = (o: { app?: string }): string => {
  if (!o.app) throw new CpsError('validation', 'give --app APP');
  return o.app;
};

/** Calls a method of a service's manager through the director (`cps service call`'s route); answers its result. */
export const callMethod = async (
  d: ReturnType<typeof director>,
  app: string,
  svc: string,
  method: string,
  args: Record<string, unknown>,
): Promise<unknown> => {
  const r = await d.ask(
    d.cps.POST('/v1/applications/{app}/services/{svc}/calls/{method}', {
      params: { path: { app, svc, method } },
      body: args,
    }),
  );
  return r.result;
};

/** Waits for an accepted operation with progress, or prints its id with `--no-wait`. */
export const finish = async (
  g: Globals,
  cps: CpsClient,
  url: string,
  accepted: { operationId: string },
  o: { wait?: boolean; what: string },
): Promise<void> => {
  if (o.wait === false) {
    if (g().json) json(accepted);
    else console.log(accepted.operationId);
    return;
  }
  if (!g().json) console.error(`${o.what}: operation ${accepted.operationId}`);
  const op = await waitFor(url, cps, accepted.operationId, { quiet: g().json === true });
  if (g().json) json(op);
  if (op.state !== 'succeeded')
    throw new CpsError('conflict', `${o.what} ${op.state}${op.reason ? `: ${op.reason}` : ''}`);
  if (!g().json) console.error(`${o.what}: done`);
};

/** `--ROLE N` pairs after the service name (`--node 2 --master 1`) as a role count map. */
export const roleCounts = (args: readonly string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const m = /^--([a-z0-9][a-z0-9_-]*)(?:=(\d+))?$/.exec(a);
    if (!m) throw new CpsError('validation', `expected --ROLE N, got ${a}`);
    const n = m[2] ?? args[++i];
    if (!n || !/^\d+$/.test(n)) throw new CpsError('validation', `--${m[1]} needs a count`);
    out[m[1] as string] = Number(n);
  }
  return out;
};

/** Adds `Examples:` to a command's help. */
export const examples = (c: Command, lines: readonly string[]): Command =>
  c.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
